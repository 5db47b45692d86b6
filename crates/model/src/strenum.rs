//! `str_enum!`: an enum with one stable spelling per variant, used in JSON, SQL, the CLI and
//! the audit log. Serde uses exactly the `as_str` spelling, so the two cannot drift.

#[macro_export]
macro_rules! str_enum {
    // `$s` is a `tt`, not a `literal`: a `literal` fragment reaches the derives wrapped in an
    // invisible group, and utoipa's derive then ignores `#[serde(rename = ...)]` — the
    // OpenAPI document listed variant names (`Stdio`) instead of the wire's (`stdio`).
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:tt),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $var),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$var),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    str_enum!(
        Sample {
            Plain = "plain",
            Dotted = "a.dotted_name",
        }
    );

    #[test]
    fn serde_speaks_exactly_the_as_str_spelling() {
        for v in Sample::ALL {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::json!(v.as_str()));
            assert_eq!(serde_json::from_value::<Sample>(json).unwrap(), *v);
            assert_eq!(Sample::parse(v.as_str()), Some(*v));
        }
        assert!(Sample::parse("dotted").is_none());
    }
}
