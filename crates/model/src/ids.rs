//! Typed, prefixed, time-ordered ids (`agt_01j…`). Ordering by id is ordering by creation,
//! which keyset pagination relies on.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// One generator per process, so ids made in the same millisecond still sort in order.
static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

fn next_ulid() -> ulid::Ulid {
    let mut g = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain (unordered) one.
    g.generate().unwrap_or_else(|_| ulid::Ulid::generate())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, example = json!(concat!($prefix, "_01jd2x3y4z5a6b7c8d9e0f1g2h")))]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, $crate::ids::next_ulid().to_string().to_ascii_lowercase()))
            }

            /// Accepts only well-formed ids of this kind; anything else is a name, not an id.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?.strip_prefix('_')?;
                let ok = rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
                ok.then(|| Self(s.to_string()))
            }

            /// For values read back from the store, which only ever holds generated ids.
            pub fn from_db(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(/// A user (admin or member).
    UserId, "usr");
id_type!(/// An issued token of any kind.
    TokenId, "tok");
id_type!(/// A toolbox: a host running a DTMA, or a record holding remote servers.
    ToolboxId, "tbx");
id_type!(/// A catalog entry.
    CatalogId, "cat");
id_type!(/// A deployed server instance.
    ServerId, "srv");
id_type!(/// An agent identity.
    AgentId, "agt");
id_type!(/// A grant.
    GrantId, "grt");
id_type!(/// An OAuth provider configured by an admin.
    ProviderId, "opr");
id_type!(/// One user's OAuth connection to a provider.
    ConnectionId, "con");
id_type!(/// An authorization-code flow in progress.
    FlowId, "ofl");
id_type!(/// A secret in the vault. The vault chooses it before the row exists, because the
    /// ciphertext's associated data binds it.
    SecretId, "sec");
id_type!(/// A tool call held by an `ask` rule.
    ApprovalId, "apr");
id_type!(/// An LLM endpoint chat talks to.
    LlmId, "llm");
id_type!(/// One user's conversation with one agent.
    ChatId, "cht");
id_type!(/// A changed tool definition waiting for an admin's decision.
    ToolChangeId, "chg");
id_type!(/// An MCP client registered with Toolbelt's authorization server (its `client_id`).
    McpClientId, "mcl");
// The rest of the authorization server's rows: a code, a token family (one consent),
// and an access or refresh token in it.
id_type!(McpCodeId, "mcc");
id_type!(McpFamilyId, "mcf");
id_type!(McpTokenId, "mct");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_creation() {
        let a = AgentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = AgentId::generate();
        assert!(AgentId::parse(a.as_str()).is_some());
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.as_str().len(), 4 + 26);
    }

    #[test]
    fn names_and_foreign_ids_are_not_ids() {
        assert!(AgentId::parse("my-agent").is_none());
        assert!(AgentId::parse(UserId::generate().as_str()).is_none());
        assert!(AgentId::parse("agt_short").is_none());
        assert!(
            AgentId::parse("agt_01JD2X3Y4Z5A6B7C8D9E0F1G2H").is_none(),
            "upper case"
        );
    }
}
