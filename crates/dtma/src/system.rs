//! Host metrics for heartbeats, read from /proc (Linux toolboxes).

use std::path::Path;
use std::sync::Mutex;
use toolbelt_model::dtma::SystemMetrics;

/// CPU counters of the previous sample, for a percentage over the interval.
static LAST_CPU: Mutex<Option<(u64, u64)>> = Mutex::new(None);

fn cpu_counters() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((fields.iter().sum(), idle))
}

fn meminfo(key: &str, text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resident memory of this process.
pub fn self_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| meminfo("VmRSS:", &s))
        .unwrap_or(0)
}

pub fn sample(disk_path: &Path) -> SystemMetrics {
    let mut m = SystemMetrics::default();
    if let Some((total, idle)) = cpu_counters() {
        let mut last = LAST_CPU.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t0, i0)) = *last
            && total > t0
        {
            m.cpu_percent = 100.0 * (1.0 - (idle.saturating_sub(i0)) as f64 / (total - t0) as f64);
        }
        *last = Some((total, idle));
    }
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        m.load1 = l
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
    }
    if let Ok(mi) = std::fs::read_to_string("/proc/meminfo") {
        let total = meminfo("MemTotal:", &mi).unwrap_or(0);
        let avail = meminfo("MemAvailable:", &mi).unwrap_or(0);
        m.mem_total_bytes = total;
        m.mem_used_bytes = total.saturating_sub(avail);
    }
    if let Ok(c) = std::ffi::CString::new(disk_path.as_os_str().as_encoded_bytes()) {
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0 {
            let frsize = s.f_frsize as u64;
            m.disk_total_bytes = s.f_blocks as u64 * frsize;
            m.disk_used_bytes = (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * frsize;
        }
    }
    m.dtma_rss_bytes = self_rss();
    m
}
