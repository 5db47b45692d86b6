//! Names of toolboxes, servers, agents and catalog entries: lowercase slugs.
//!
//! Server names end up in gateway tool names (`<server>__<tool>`, charset `[A-Za-z0-9_-]`,
//! at most 64 characters), so slugs never contain `_`: the `__` separator stays unambiguous.

use crate::error::Invalid;
use serde::{Deserialize, Serialize};

/// A validated slug: `[a-z][a-z0-9-]*`, not ending in `-`, no `--`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

/// Longest server and toolbox name: leaves room for `__<tool>` within 64 characters.
pub const SHORT_NAME_MAX: usize = 32;
/// Longest agent name and catalog slug.
pub const LONG_NAME_MAX: usize = 64;

impl Name {
    /// Validates `s` as a slug of at most `max` characters; errors name `field`.
    pub fn parse(field: &str, s: &str, max: usize) -> Result<Name, Invalid> {
        let err = |m: String| Err(Invalid::field(field, m));
        if s.is_empty() {
            return err("must not be empty".into());
        }
        if s.chars().count() > max {
            return err(format!("must be at most {max} characters"));
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return err("must start with a lowercase letter a-z".into());
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return err(format!(
                "may contain only lowercase letters, digits and '-' (found {c:?})"
            ));
        }
        if s.ends_with('-') {
            return err("must not end with '-'".into());
        }
        if s.contains("--") {
            return err("must not contain '--'".into());
        }
        Ok(Name(s.to_string()))
    }

    pub fn from_db(s: String) -> Self {
        Name(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// MCP tool names as servers declare them (the spec allows `[A-Za-z0-9_.-]`, 1–128).
pub fn validate_tool_name(field: &str, s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > 128 {
        return Err(Invalid::field(field, "must be 1-128 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Invalid::field(
            field,
            format!("may contain only A-Z, a-z, 0-9, '_', '-' and '.' (found {c:?})"),
        ));
    }
    Ok(())
}

/// Longest single path component a DTMA makes from a name or id.
pub const PATH_COMPONENT_MAX: usize = 128;

/// A value that becomes one file or directory name on a toolbox (a secret name, a server
/// id or name): one component, never a path. No `/`, no NUL, no leading `.` (so neither
/// `.` nor `..`, nor hidden files), not empty, at most [`PATH_COMPONENT_MAX`] bytes. The
/// control plane checks it before sending and the DTMA again before touching the disk.
pub fn validate_path_component(field: &str, s: &str) -> Result<(), Invalid> {
    let why = if s.is_empty() {
        "must not be empty"
    } else if s.len() > PATH_COMPONENT_MAX {
        "must be at most 128 bytes"
    } else if s.contains('/') || s.contains('\\') {
        "must be a single path component (no '/' or '\\')"
    } else if s.contains('\0') {
        "must not contain NUL"
    } else if s.starts_with('.') {
        "must not start with '.'"
    } else if s.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(Invalid::field(field, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_are_single_and_plain() {
        for ok in ["API_KEY", "srv_01abc", "fx", "a.b"] {
            assert!(validate_path_component("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "..", ".", "../x", "x/..", "a/b", "/abs", ".hidden", "a\0b", "a\\b", "a\nb",
        ] {
            assert!(validate_path_component("f", bad).is_err(), "{bad:?}");
        }
        assert!(validate_path_component("f", &"x".repeat(129)).is_err());
    }

    fn msg(s: &str) -> String {
        Name::parse("name", s, SHORT_NAME_MAX).unwrap_err().0[0]
            .message
            .clone()
    }

    #[test]
    fn accepts_slugs() {
        for ok in ["a", "time", "git-2", "a1-b2-c3", &"x".repeat(32)] {
            assert!(Name::parse("name", ok, SHORT_NAME_MAX).is_ok(), "{ok}");
        }
    }

    #[test]
    fn each_rule_has_its_own_message() {
        assert_eq!(msg(""), "must not be empty");
        assert_eq!(msg(&"x".repeat(33)), "must be at most 32 characters");
        assert_eq!(msg("1abc"), "must start with a lowercase letter a-z");
        assert_eq!(msg("-abc"), "must start with a lowercase letter a-z");
        assert!(msg("a_b").contains("'_'"));
        assert!(msg("a/b").contains("'/'"));
        assert!(msg("a;rm -rf").contains("';'"));
        assert!(msg("Abc").starts_with("must start"));
        assert!(msg("aBc").contains("'B'"));
        assert_eq!(msg("abc-"), "must not end with '-'");
        assert_eq!(msg("a--b"), "must not contain '--'");
        assert!(msg("a\u{202e}b").contains("only lowercase"));
    }

    #[test]
    fn tool_names_follow_the_mcp_charset() {
        assert!(validate_tool_name("tool", "get_current_time").is_ok());
        assert!(validate_tool_name("tool", "a.b-c_D").is_ok());
        assert!(validate_tool_name("tool", "").is_err());
        assert!(validate_tool_name("tool", "a b").is_err());
        assert!(validate_tool_name("tool", &"t".repeat(129)).is_err());
    }
}
