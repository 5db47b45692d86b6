//! Built-in provider definitions: an admin gives only a client id and secret.
//!
//! Providers that do not implement RFC 7009 revocation (GitHub, Microsoft, Slack's
//! `auth.revoke` is not RFC 7009) have none here: revoking such a connection deletes it
//! locally, and the note says the user should also remove the app at the provider.

use toolbelt_model::oauth::ProviderKind;

#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub kind: ProviderKind,
    pub issuer: Option<&'static str>,
    pub authorization_endpoint: &'static str,
    pub token_endpoint: &'static str,
    pub revocation_endpoint: Option<&'static str>,
    pub default_scopes: &'static [&'static str],
    /// Extra authorization parameters the provider needs to issue a refresh token.
    pub extra_params: &'static [(&'static str, &'static str)],
}

pub const GITHUB: Builtin = Builtin {
    kind: ProviderKind::Github,
    issuer: None,
    authorization_endpoint: "https://github.com/login/oauth/authorize",
    token_endpoint: "https://github.com/login/oauth/access_token",
    revocation_endpoint: None,
    default_scopes: &["read:user"],
    extra_params: &[],
};

pub const GOOGLE: Builtin = Builtin {
    kind: ProviderKind::Google,
    issuer: Some("https://accounts.google.com"),
    authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint: "https://oauth2.googleapis.com/token",
    revocation_endpoint: Some("https://oauth2.googleapis.com/revoke"),
    default_scopes: &["openid", "email", "profile"],
    // Without these Google issues no refresh token.
    extra_params: &[("access_type", "offline"), ("prompt", "consent")],
};

pub const MICROSOFT: Builtin = Builtin {
    kind: ProviderKind::Microsoft,
    issuer: None,
    authorization_endpoint: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_endpoint: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    revocation_endpoint: None,
    // `offline_access` is what makes Microsoft issue a refresh token.
    default_scopes: &["openid", "offline_access", "User.Read"],
    extra_params: &[],
};

pub const SLACK: Builtin = Builtin {
    kind: ProviderKind::Slack,
    issuer: None,
    authorization_endpoint: "https://slack.com/oauth/v2/authorize",
    token_endpoint: "https://slack.com/api/oauth.v2.access",
    revocation_endpoint: None,
    default_scopes: &["channels:read", "chat:write"],
    extra_params: &[],
};

pub const ALL: &[Builtin] = &[GITHUB, GOOGLE, MICROSOFT, SLACK];

/// The built-in definition of a kind (None for `custom`).
pub fn of(kind: ProviderKind) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_kind_has_https_endpoints_and_custom_has_none() {
        for b in ALL {
            assert!(b.authorization_endpoint.starts_with("https://"));
            assert!(b.token_endpoint.starts_with("https://"));
            assert_eq!(of(b.kind).unwrap().token_endpoint, b.token_endpoint);
        }
        assert!(of(ProviderKind::Custom).is_none());
    }
}
