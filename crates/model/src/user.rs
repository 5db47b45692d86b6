//! Users, roles and the scope a store query runs in.

use crate::{UserId, error::Invalid};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum!(
    Role {
        /// Manages toolboxes, the catalog, shared servers and approvals.
        Admin = "admin",
        /// Owns agents, connections and private toolboxes.
        Member = "member",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Who a store query runs for. Every query over owned things filters by it, so tenancy is
/// enforced where the rows are read, not only in handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user_id: UserId,
    pub role: Role,
}

impl Scope {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 1 for admins, 0 otherwise: bound into SQL as `($n = 1 OR owner_id = $m)`.
    pub fn admin_flag(&self) -> i64 {
        i64::from(self.is_admin())
    }
}

/// Normalises and checks an email address (lowercased; one `@`; a dotted or local domain).
pub fn validate_email(field: &str, s: &str) -> Result<String, Invalid> {
    let e = s.trim().to_ascii_lowercase();
    let bad = |m: &str| Err(Invalid::field(field, m));
    if e.len() > 254 {
        return bad("must be at most 254 characters");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return bad("must be an email address like name@example.com");
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return bad("must be an email address like name@example.com");
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    Ok(e)
}

/// Minimum password policy: long enough to resist guessing; argon2id does the rest.
pub fn validate_password(field: &str, s: &str) -> Result<(), Invalid> {
    if s.chars().count() < 12 {
        return Err(Invalid::field(field, "must be at least 12 characters"));
    }
    if s.len() > 1024 {
        return Err(Invalid::field(field, "must be at most 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            validate_email("email", " Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        assert!(validate_email("email", "no-at-sign").is_err());
        assert!(validate_email("email", "@x").is_err());
        assert!(validate_email("email", "a@b@c").is_err());
        assert!(validate_email("email", "a b@c").is_err());
    }

    #[test]
    fn passwords_need_length() {
        assert!(validate_password("password", "short").is_err());
        assert!(validate_password("password", "correct horse battery").is_ok());
    }
}
