//! Who is calling, and what they may do.
//!
//! Bearer tokens are configured only as SHA-256 digests, so a leaked config file leaks no token.
//! The presented token is hashed and compared with every configured digest in constant time,
//! without stopping at the first match, so response timing tells nothing about which digest
//! came close. Region limits are code prefixes: `32` is a province, `3208` a city, `320831` a
//! county.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::config::AuthSettings;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A partner hotline system pushing tickets (自动/一键转接).
    Partner,
    /// A call-centre operator at a console (人工转接).
    Operator,
    /// A lawyer or mediator working a queue.
    Agent,
    /// A supervisor watching queues.
    Supervisor,
    /// Runs the gateway.
    Admin,
}

impl Role {
    /// The config and log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Partner => "partner",
            Role::Operator => "operator",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's configured name; safe to log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Region code prefixes it is limited to; empty means everywhere.
    pub regions: Vec<String>,
    /// For agents: the agent it acts as.
    pub agent_id: Option<String>,
}

impl Principal {
    /// True when the principal may act on tickets of this region code.
    pub fn covers(&self, region_code: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|p| region_code.starts_with(p))
    }

    /// Refuses roles not in `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), AuthError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "role `{}` may not do this; allowed: {}",
                self.role.as_str(),
                allowed
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (401).
    #[error("missing bearer token")]
    Missing,
    /// A token that matches no configured digest (401).
    #[error("unknown or malformed bearer token")]
    Invalid,
    /// Known caller, wrong role or region (403).
    #[error("{0}")]
    Forbidden(String),
}

/// The configured tokens, ready to check.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: Vec<([u8; 32], Principal)>,
}

impl Authenticator {
    /// Builds from `[[auth.tokens]]`; digests were validated with the config.
    pub fn new(settings: &AuthSettings) -> Authenticator {
        let tokens = settings
            .tokens
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let digest: [u8; 32] = bytes.try_into().ok()?;
                Some((
                    digest,
                    Principal {
                        name: t.name.clone(),
                        role: t.role,
                        regions: t.regions.clone(),
                        agent_id: t.agent_id.clone(),
                    },
                ))
            })
            .collect();
        Authenticator { tokens }
    }

    /// How many tokens are configured; zero means nobody can call the API.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.split_once(' ').ok_or(AuthError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Invalid);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&Principal> = None;
        for (candidate, principal) in &self.tokens {
            // Visit every entry whatever matched, so timing does not depend on position.
            if bool::from(candidate.ct_eq(&digest)) && found.is_none() {
                found = Some(principal);
            }
        }
        found.cloned().ok_or(AuthError::Invalid)
    }
}

/// Hex SHA-256 of a token, as `[[auth.tokens]] sha256` expects.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenSettings;

    fn auth() -> Authenticator {
        Authenticator::new(&AuthSettings {
            tokens: vec![
                TokenSettings {
                    name: "partner-12345".into(),
                    role: Role::Partner,
                    sha256: digest_hex("s3cret-partner"),
                    regions: vec![],
                    agent_id: None,
                },
                TokenSettings {
                    name: "operator-suining".into(),
                    role: Role::Operator,
                    sha256: digest_hex("s3cret-operator"),
                    regions: vec!["320831".into()],
                    agent_id: None,
                },
            ],
        })
    }

    #[test]
    fn a_configured_token_is_recognised_with_its_role_and_regions() {
        let p = auth()
            .authenticate(Some("Bearer s3cret-operator"))
            .expect("known");
        assert_eq!(p.role, Role::Operator);
        assert!(p.covers("320831"));
        assert!(!p.covers("320832"));
        let p = auth()
            .authenticate(Some("bearer s3cret-partner"))
            .expect("scheme is case-insensitive");
        assert!(p.covers("110101"));
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_refused() {
        let a = auth();
        assert_eq!(a.authenticate(None), Err(AuthError::Missing));
        assert_eq!(a.authenticate(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(a.authenticate(Some("Bearer")), Err(AuthError::Invalid));
        assert_eq!(a.authenticate(Some("Bearer  ")), Err(AuthError::Invalid));
        assert_eq!(a.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
    }

    #[test]
    fn the_wrong_role_is_forbidden_and_names_the_roles_allowed() {
        let p = auth()
            .authenticate(Some("Bearer s3cret-partner"))
            .expect("known");
        let err = p
            .require(&[Role::Supervisor, Role::Admin])
            .expect_err("403");
        assert!(err.to_string().contains("supervisor, admin"), "{err}");
        assert!(p.require(&[Role::Partner]).is_ok());
    }
}
