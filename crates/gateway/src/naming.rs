//! Names agents see: `<server>__<tool>`, within `[A-Za-z0-9_-]` and 64 characters, so
//! every LLM function-calling API accepts them. Deterministic: the same servers and
//! tools always give the same names, whatever order they were discovered in.

use sha2::{Digest, Sha256};

pub const MAX_LEN: usize = 64;

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..3])
}

/// Characters outside the allowed set become `-` (tool names may contain `.`).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One name: prefix and tool, cleaned, truncated with a hash of the full original when
/// too long or when cleaning changed it (so `a.b` and `a-b` never collide).
pub fn exposed(prefix: &str, tool: &str) -> String {
    let cleaned = clean(tool);
    let mut name = format!("{prefix}__{cleaned}");
    let changed = cleaned != tool;
    if name.len() > MAX_LEN || changed {
        let h = short_hash(&format!("{prefix}\u{0}{tool}"));
        let room = MAX_LEN.saturating_sub(h.len() + 1);
        if name.len() > room {
            name.truncate(room);
        }
        name = format!("{name}-{h}");
    }
    name
}

/// How an agent names a server's resource URI (and template): `toolbelt://<prefix>/<uri>`,
/// the server's prefix as in its tools' names, the server's own URI after it unchanged.
/// Still a URI (the original's `:` and `/` are allowed in a path), so clients accept it.
pub const URI_SCHEME: &str = "toolbelt://";

pub fn qualified_uri(prefix: &str, uri: &str) -> String {
    format!("{URI_SCHEME}{prefix}/{uri}")
}

/// The prefix and the server's own URI of a qualified URI; None for any other URI.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix(URI_SCHEME)?.split_once('/')
}

/// The prefix of each server, unique among the servers given: its name, or
/// `name-toolbox` when several servers the agent sees share the name (servers are named
/// uniquely only within a toolbox). A prefix made so can still be another server's:
/// `mine` on `alpha` beside a server named `mine-alpha`, or `mine` on `a-b` beside
/// `mine-a` on `b`. Then every made prefix in the clash gets `-<hash of its server's name
/// and toolbox>`, again until none is shared; a server's own name is never changed for
/// another's. Since prefixes hold no `_`, distinct prefixes give distinct `prefix__tool`
/// names (the view still refuses any name two tools would share: see `view::build`).
pub fn prefixes<'a>(
    servers: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> std::collections::HashMap<(String, String), String> {
    let mut count = std::collections::HashMap::<&str, usize>::new();
    for (name, _) in servers.clone() {
        *count.entry(name).or_default() += 1;
    }
    // (server, prefix, whether the prefix was made rather than the server's own name)
    let mut out: Vec<((String, String), String, bool)> = servers
        .map(|(name, toolbox)| {
            let made = count[name] > 1;
            let prefix = if made {
                clean(&format!("{name}-{toolbox}"))
            } else {
                name.to_string()
            };
            ((name.to_string(), toolbox.to_string()), prefix, made)
        })
        .collect();
    // A few rounds: one settles any clash that is not contrived (a server named after
    // another's made prefix and its hash); what is left, the view hides.
    for round in 0..4u8 {
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        for (_, p, _) in &out {
            *seen.entry(p.as_str()).or_default() += 1;
        }
        let clashing: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, (_, p, made))| *made && seen[p.as_str()] > 1)
            .map(|(i, _)| i)
            .collect();
        if clashing.is_empty() {
            break;
        }
        for i in clashing {
            let ((name, toolbox), p, _) = &mut out[i];
            let h = short_hash(&format!("{name}\u{0}{toolbox}\u{0}{round}"));
            *p = format!("{p}-{h}");
        }
    }
    out.into_iter().map(|(k, p, _)| (k, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(n: &str) -> bool {
        n.len() <= MAX_LEN
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn simple_names_stay_readable() {
        assert_eq!(
            exposed("time", "get_current_time"),
            "time__get_current_time"
        );
    }

    #[test]
    fn odd_and_long_names_are_cleaned_bounded_and_distinct() {
        let a = exposed("git", "repo.status");
        let b = exposed("git", "repo-status");
        assert!(ok(&a) && ok(&b) && a != b, "{a} {b}");
        assert_eq!(b, "git__repo-status");
        let long = exposed(&"s".repeat(32), &"t".repeat(128));
        let long2 = exposed(&"s".repeat(32), &format!("{}x", "t".repeat(127)));
        assert!(ok(&long) && ok(&long2) && long != long2, "{long} {long2}");
        assert_eq!(
            long,
            exposed(&"s".repeat(32), &"t".repeat(128)),
            "deterministic"
        );
    }

    #[test]
    fn qualified_uris_split_back_into_prefix_and_the_servers_own_uri() {
        let q = qualified_uri("tools-alpha", "file:///etc/x?y=1#z");
        assert_eq!(q, "toolbelt://tools-alpha/file:///etc/x?y=1#z");
        assert_eq!(split_uri(&q), Some(("tools-alpha", "file:///etc/x?y=1#z")));
        assert_eq!(split_uri("file:///etc/x"), None);
    }

    #[test]
    fn same_named_servers_get_toolbox_prefixes() {
        let servers = [("tools", "alpha"), ("tools", "beta"), ("git", "alpha")];
        let p = prefixes(servers.iter().copied());
        assert_eq!(p[&("tools".into(), "alpha".into())], "tools-alpha");
        assert_eq!(p[&("tools".into(), "beta".into())], "tools-beta");
        assert_eq!(p[&("git".into(), "alpha".into())], "git");
    }

    /// `mine` on two toolboxes beside a server named `mine-alpha`: the made prefix of
    /// `mine` on `alpha` would be `mine-alpha`, the other server's own name.
    #[test]
    fn a_made_prefix_never_takes_another_servers_name() {
        let servers = [("mine", "alpha"), ("mine", "beta"), ("mine-alpha", "beta")];
        let p = prefixes(servers.iter().copied());
        let k = |n: &str, t: &str| (n.to_string(), t.to_string());
        assert_eq!(
            p[&k("mine-alpha", "beta")],
            "mine-alpha",
            "its own name stays"
        );
        assert_eq!(p[&k("mine", "beta")], "mine-beta");
        let made = &p[&k("mine", "alpha")];
        assert!(made.starts_with("mine-alpha-") && ok(made), "{made}");
        // Two made prefixes clashing (`mine` on `a-b`, `mine-a` on `b`), and a server
        // named after what the first round would make: all distinct in the end.
        let first_round = format!("mine-a-b-{}", short_hash("mine\u{0}a-b\u{0}0"));
        let servers = [
            ("mine", "a-b"),
            ("mine", "c"),
            ("mine-a", "b"),
            ("mine-a", "d"),
            (first_round.as_str(), "e"),
        ];
        let p = prefixes(servers.iter().copied());
        let mut all: Vec<&String> = p.values().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "{p:?}");
        assert_eq!(p[&k(&first_round, "e")], first_round);
        for v in p.values() {
            assert!(!v.contains('_'), "{v}");
        }
    }
}
