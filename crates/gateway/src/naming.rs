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

/// The prefix of each server: its name, or `name-toolbox` when several servers the agent
/// sees share the name (servers are named uniquely only within a toolbox).
pub fn prefixes<'a>(
    servers: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> std::collections::HashMap<(String, String), String> {
    let mut count = std::collections::HashMap::<&str, usize>::new();
    for (name, _) in servers.clone() {
        *count.entry(name).or_default() += 1;
    }
    servers
        .map(|(name, toolbox)| {
            let prefix = if count[name] > 1 {
                clean(&format!("{name}-{toolbox}"))
            } else {
                name.to_string()
            };
            ((name.to_string(), toolbox.to_string()), prefix)
        })
        .collect()
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
    fn same_named_servers_get_toolbox_prefixes() {
        let servers = [("tools", "alpha"), ("tools", "beta"), ("git", "alpha")];
        let p = prefixes(servers.iter().copied());
        assert_eq!(p[&("tools".into(), "alpha".into())], "tools-alpha");
        assert_eq!(p[&("tools".into(), "beta".into())], "tools-beta");
        assert_eq!(p[&("git".into(), "alpha".into())], "git");
    }
}
