//! A second host for network-fault tests: a network namespace joined to this one by a veth
//! pair, on a /30 of 10.231.0.0/16 the test picks (nothing outside the machine). Faults are
//! iptables rules inside the namespace, so they touch only the pair's traffic: a
//! partition drops every packet both ways, a lossy link drops a share of them at random.
//! (This machine's kernel has no `sch_netem`, so `tc` cannot add latency here.) Dropping the
//! handle deletes the namespace, and the veth pair with it. Needs root.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Netns {
    pub name: String,
    /// This side's address (the control plane listens here).
    pub host_ip: String,
    /// The namespace's address.
    pub ns_ip: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// A fresh namespace and its link, named after this process (parallel test binaries
    /// never collide) and a counter (nor do tests in one binary).
    pub fn create() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let slot = (pid % 4000) * 4 + n % 4;
        let (third, fourth) = (slot / 64 % 256, slot % 64 * 4);
        let name = format!("tbf{pid}-{n}");
        let (host_if, ns_if) = (format!("tbh{pid}{n}"), format!("tbn{pid}{n}"));
        let net = Netns {
            host_ip: format!("10.231.{third}.{}", fourth + 1),
            ns_ip: format!("10.231.{third}.{}", fourth + 2),
            name,
        };
        run(&["ip", "netns", "add", &net.name]);
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        run(&["ip", "link", "set", &ns_if, "netns", &net.name]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", net.host_ip),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        net.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", net.ns_ip),
            "dev",
            &ns_if,
        ]);
        net.exec(&["ip", "link", "set", &ns_if, "up"]);
        net.exec(&["ip", "link", "set", "lo", "up"]);
        net
    }

    /// The /30 both ends are on.
    pub fn cidr(&self) -> String {
        format!("{}/30", self.host_ip)
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all);
    }

    /// Every packet in or out of the namespace dropped.
    pub fn partition(&self) {
        self.heal();
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            self.exec(&["iptables", "-A", chain, "!", dir, "lo", "-j", "DROP"]);
        }
    }

    /// A share `p` of the packets each way dropped at random.
    pub fn lossy(&self, p: f64) {
        self.heal();
        let p = p.to_string();
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            self.exec(&[
                "iptables",
                "-A",
                chain,
                "!",
                dir,
                "lo",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]);
        }
    }

    /// Packets the fault rules have dropped so far (the proof a fault was real).
    pub fn dropped(&self) -> u64 {
        let mut total = 0;
        for chain in ["INPUT", "OUTPUT"] {
            let out = Command::new("ip")
                .args([
                    "netns", "exec", &self.name, "iptables", "-L", chain, "-v", "-n", "-x",
                ])
                .output()
                .unwrap();
            // Rule lines start with their packet count; the two header lines do not.
            total += String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }

    /// No faults.
    pub fn heal(&self) {
        for chain in ["INPUT", "OUTPUT"] {
            self.exec(&["iptables", "-F", chain]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
