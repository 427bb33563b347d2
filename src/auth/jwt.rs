//! Reading the public claims of a JWT we are about to send, without verifying it: a refused
//! login is explained with the token's `aud`, `iss` and `sub` (never its signature), and a
//! list-valued `aud` tells an old server's 500 apart from an outage.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

/// The claims a login's bound settings are checked against. None of them is secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtClaims {
    /// `aud`, as a list.
    pub audiences: Vec<String>,
    /// Whether `aud` was a JSON list (kubelet always sends one) rather than a string.
    pub audience_is_list: bool,
    /// `iss`.
    pub issuer: Option<String>,
    /// `sub`.
    pub subject: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    aud: Option<Audience>,
    iss: Option<String>,
    sub: Option<String>,
}

impl JwtClaims {
    /// The claims of a compact JWT (`header.payload.signature`), or `None` when it is not one.
    pub fn peek(token: &str) -> Option<Self> {
        let mut parts = token.trim().split('.');
        let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
        let json =
            zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
        let raw: RawClaims = serde_json::from_slice(&json).ok()?;
        let (audiences, audience_is_list) = match raw.aud {
            None => (Vec::new(), false),
            Some(Audience::One(one)) => (vec![one], false),
            Some(Audience::Many(many)) => (many, true),
        };
        Some(Self {
            audiences,
            audience_is_list,
            issuer: raw.iss,
            subject: raw.sub,
        })
    }
}

impl fmt::Display for JwtClaims {
    /// `aud=["a","b"] iss="…" sub="…"`: what the identity's bound settings must allow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.audience_is_list {
            write!(f, "aud={:?}", self.audiences)?;
        } else {
            write!(
                f,
                "aud={:?}",
                self.audiences.first().map_or("", String::as_str)
            )?;
        }
        write!(
            f,
            " iss={:?} sub={:?}",
            self.issuer.as_deref().unwrap_or(""),
            self.subject.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_string_and_list_audiences() {
        let kubelet = JwtClaims::peek(&token(
            r#"{"aud":["https://kubernetes.default.svc","infisical"],"iss":"https://oidc.example","sub":"system:serviceaccount:ns:app","exp":1}"#,
        ))
        .expect("a JWT");
        assert!(kubelet.audience_is_list);
        assert_eq!(kubelet.audiences.len(), 2);
        assert_eq!(
            kubelet.to_string(),
            r#"aud=["https://kubernetes.default.svc", "infisical"] iss="https://oidc.example" sub="system:serviceaccount:ns:app""#
        );
        let single = JwtClaims::peek(&token(r#"{"aud":"infisical","sub":"x"}"#)).expect("a JWT");
        assert!(!single.audience_is_list);
        assert_eq!(single.to_string(), r#"aud="infisical" iss="" sub="x""#);
    }

    #[test]
    fn the_signature_is_never_shown_and_non_jwts_are_none() {
        let claims = JwtClaims::peek(&token(r#"{"aud":"a"}"#)).expect("a JWT");
        assert!(!claims.to_string().contains("c2lnbmF0dXJl"));
        assert_eq!(JwtClaims::peek("not-a-jwt"), None);
        assert_eq!(JwtClaims::peek("a.%%%.c"), None);
    }
}
