//! Identity access tokens: HS256 JWTs signed with a per-server key, plus the token rows
//! (creation, last renewal, TTL, max TTL) the server keeps and deletes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::util::{new_uuid, random_bytes, to_json, unix_secs};

/// A stored access token (the server's `identity_access_tokens` row).
#[derive(Clone, Debug)]
pub(crate) struct TokenRow {
    pub identity_id: String,
    pub created: SystemTime,
    pub last_renewed: Option<SystemTime>,
    pub ttl: u64,
    pub max_ttl: u64,
    /// Authenticated calls made with this token.
    pub uses: u32,
}

impl TokenRow {
    /// Whether the TTL, counted from creation or the last renewal, has run out.
    pub fn ttl_expired(&self, now: SystemTime) -> bool {
        self.ttl > 0
            && now > self.last_renewed.unwrap_or(self.created) + Duration::from_secs(self.ttl)
    }

    /// Whether the max TTL, counted from creation, has run out.
    pub fn max_ttl_expired(&self, now: SystemTime) -> bool {
        self.max_ttl > 0 && now > self.created + Duration::from_secs(self.max_ttl)
    }
}

/// Why a JWT was refused (all answered 403 `TokenError` by the real server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JwtError {
    Malformed,
    Expired,
    InvalidAlgorithm,
    /// Any other jsonwebtoken message, e.g. `invalid signature`.
    Other(&'static str),
}

impl JwtError {
    /// The message the server's error handler sends for it.
    pub fn message(&self) -> &'static str {
        match self {
            JwtError::Malformed => "The provided access token is malformed. Please use a valid token or generate a new one and try again.",
            JwtError::Expired => "Your token has expired. Please re-authenticate.",
            JwtError::InvalidAlgorithm => "The access token is signed with an invalid algorithm. Please provide a valid token and try again.",
            JwtError::Other(m) => m,
        }
    }
}

/// The claims the fake puts in (and reads from) an access token.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    identity_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    client_secret_id: Option<String>,
    identity_access_token_id: String,
    auth_token_type: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    exp: Option<u64>,
}

#[derive(Serialize)]
struct Header {
    alg: &'static str,
    typ: &'static str,
}

/// A verified token: who it belongs to and which row it refers to.
pub(crate) struct Verified {
    pub token_id: String,
    /// The identity named in the claims.
    #[allow(dead_code)]
    pub identity_id: String,
}

/// Token issuing, verification and storage.
pub(crate) struct Tokens {
    key: ring::hmac::Key,
    pub rows: HashMap<String, TokenRow>,
    /// Exact expiry of every JWT issued (kept after its row is deleted) so a short max TTL
    /// expires on time rather than on a whole-second boundary.
    exact_exp: HashMap<String, SystemTime>,
}

impl Tokens {
    pub fn new() -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &random_bytes::<32>()),
            rows: HashMap::new(),
            exact_exp: HashMap::new(),
        }
    }

    /// Creates a token row and returns the JWT for it.
    pub fn issue(
        &mut self,
        identity_id: &str,
        client_secret_id: Option<&str>,
        ttl: u64,
        max_ttl: u64,
    ) -> String {
        let now = SystemTime::now();
        let token_id = new_uuid();
        let iat = unix_secs(now);
        let claims = Claims {
            identity_id: identity_id.into(),
            client_secret_id: client_secret_id.map(String::from),
            identity_access_token_id: token_id.clone(),
            auth_token_type: "identityAccessToken".into(),
            iat,
            exp: (max_ttl > 0).then(|| iat + max_ttl),
        };
        if max_ttl > 0 {
            self.exact_exp
                .insert(token_id.clone(), now + Duration::from_secs(max_ttl));
        }
        self.rows.insert(
            token_id,
            TokenRow {
                identity_id: identity_id.into(),
                created: now,
                last_renewed: None,
                ttl,
                max_ttl,
                uses: 0,
            },
        );
        let header = URL_SAFE_NO_PAD.encode(to_json(&Header {
            alg: "HS256",
            typ: "JWT",
        }));
        let payload = URL_SAFE_NO_PAD.encode(to_json(&claims));
        let signing_input = format!("{header}.{payload}");
        let sig = ring::hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// Verifies a JWT like `jsonwebtoken.verify` does: structure, algorithm, signature, `exp`.
    pub fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        if token.is_empty() {
            return Err(JwtError::Other("jwt must be provided"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(JwtError::Malformed);
        }
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(parts[0].trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Other("invalid token"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(parts[1].trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Other("invalid token"))?;
        if parts[2].is_empty() {
            return Err(JwtError::Other("jwt signature is required"));
        }
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(JwtError::InvalidAlgorithm);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(parts[2].trim_end_matches('='))
            .map_err(|_| JwtError::Other("invalid signature"))?;
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        ring::hmac::verify(&self.key, signing_input.as_bytes(), &sig)
            .map_err(|_| JwtError::Other("invalid signature"))?;
        let now = SystemTime::now();
        let expired = match self.exact_exp.get(&claims.identity_access_token_id) {
            Some(exact) => now >= *exact,
            None => claims.exp.is_some_and(|exp| unix_secs(now) >= exp),
        };
        if expired {
            return Err(JwtError::Expired);
        }
        if claims.auth_token_type != "identityAccessToken" {
            return Err(JwtError::Other("invalid token"));
        }
        Ok(Verified {
            token_id: claims.identity_access_token_id,
            identity_id: claims.identity_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_verify() {
        let mut t = Tokens::new();
        let jwt = t.issue("id-1", None, 10, 20);
        let v = t.verify(&jwt).expect("valid");
        assert_eq!(t.rows[&v.token_id].identity_id, "id-1");
        assert_eq!(t.verify("not-a-jwt").err(), Some(JwtError::Malformed));
        let mut tampered = jwt.clone();
        tampered.pop();
        tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            t.verify(&tampered).err(),
            Some(JwtError::Other("invalid signature"))
        );
        let other = Tokens::new();
        assert_eq!(
            other.verify(&jwt).err(),
            Some(JwtError::Other("invalid signature"))
        );
    }

    #[test]
    fn payload_shape() {
        let mut t = Tokens::new();
        let jwt = t.issue("id-1", Some("cs-1"), 10, 0);
        let payload = jwt.split('.').nth(1).expect("payload");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 5, "no exp when max TTL is 0: {json}");
        assert_eq!(json["authTokenType"], "identityAccessToken");
        assert_eq!(json["clientSecretId"], "cs-1");
    }
}
