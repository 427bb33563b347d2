//! RS256 JSON Web Tokens: signing with the committed test keys, JWKs, and verification that
//! fails with the messages of the `jsonwebtoken` library Infisical uses.

use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{json, Map, Value};

use crate::util::unix_secs;

/// The committed test keys (PKCS#8 PEM); see `keys/README.md`.
pub(crate) mod keys {
    /// Signs the Kubernetes service-account issuer's tokens.
    pub const ISSUER: &str = include_str!("../keys/issuer.pem");
    /// Its public key as SPKI PEM (for JWT Auth with static keys).
    pub const ISSUER_PUBLIC: &str = include_str!("../keys/issuer.pub.pem");
    /// A key no JWKS publishes.
    pub const FOREIGN: &str = include_str!("../keys/foreign.pem");
    /// Signs the Google ID tokens of the fake metadata server.
    pub const GOOGLE: &str = include_str!("../keys/google.pem");
    /// Signs the fake Azure AD access tokens.
    pub const AZURE: &str = include_str!("../keys/azure.pem");
    /// The private key in every GCP service-account key file the fake hands out.
    pub const GCP_SERVICE_ACCOUNT: &str = include_str!("../keys/gcp-service-account.pem");
}

/// The DER bytes inside the first PEM block of `pem`.
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).ok()
}

/// An RSA private key with the key id its JWTs carry.
pub(crate) struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM key.
    ///
    /// # Panics
    /// When the PEM is not an RSA PKCS#8 key (only the committed keys are loaded).
    pub fn load(kid: &str, pem: &str) -> SigningKey {
        let pair = pem_der(pem)
            .and_then(|der| RsaKeyPair::from_pkcs8(&der).ok())
            .unwrap_or_else(|| panic!("fake-infisical: test key {kid} is not an RSA PKCS#8 PEM"));
        SigningKey {
            kid: kid.into(),
            pair,
        }
    }

    /// A compact RS256 JWT with header `{alg, typ, kid}` and these claims.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("fake-infisical: RSA signing with a loaded key cannot fail");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The public key as a JWK (`kty`, `alg`, `use`, `kid`, `n`, `e`).
    pub fn jwk(&self) -> Value {
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&c.n),
            "e": URL_SAFE_NO_PAD.encode(&c.e),
        })
    }
}

/// A public key to verify with.
pub(crate) enum PublicKey {
    /// Modulus and exponent, big-endian (from a JWK).
    Components { n: Vec<u8>, e: Vec<u8> },
    /// A PKCS#1 `RSAPublicKey` (from an SPKI PEM).
    Pkcs1(Vec<u8>),
}

impl PublicKey {
    /// From a JWK's `n` and `e`; `None` for other key types or bad encodings.
    pub fn from_jwk(jwk: &Value) -> Option<PublicKey> {
        if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
            return None;
        }
        let part = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        };
        Some(PublicKey::Components {
            n: part("n")?,
            e: part("e")?,
        })
    }

    /// From a `-----BEGIN PUBLIC KEY-----` (SPKI) PEM holding an RSA key.
    pub fn from_spki_pem(pem: &str) -> Option<PublicKey> {
        let der = pem_der(pem)?;
        // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE, subjectPublicKey BIT STRING }
        let (tag, spki, _) = der_item(&der)?;
        if tag != 0x30 {
            return None;
        }
        let (tag, _, rest) = der_item(spki)?;
        if tag != 0x30 {
            return None;
        }
        let (tag, bits, _) = der_item(rest)?;
        if tag != 0x03 || bits.first() != Some(&0) {
            return None;
        }
        Some(PublicKey::Pkcs1(bits[1..].to_vec()))
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg = &signature::RSA_PKCS1_2048_8192_SHA256;
        match self {
            PublicKey::Components { n, e } => RsaPublicKeyComponents { n, e }
                .verify(alg, message, sig)
                .is_ok(),
            PublicKey::Pkcs1(der) => signature::UnparsedPublicKey::new(alg, der)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// One DER item: (tag, contents, what follows). Short and long definite lengths only.
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let count = first & 0x7f;
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        (
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            2 + count,
        )
    };
    let contents = input.get(start..start + len)?;
    Some((tag, contents, &input[start + len..]))
}

/// A decoded (not yet verified) compact JWT, like `jsonwebtoken.decode(token, {complete: true})`.
pub(crate) struct Decoded {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: String,
}

impl Decoded {
    /// `None` where `jsonwebtoken.decode` returns null (not three parts, not JSON objects).
    pub fn parse(token: &str) -> Option<Decoded> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return None;
        }
        let object = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        Some(Decoded {
            header: object(parts[0])?,
            claims: object(parts[1])?,
            signing_input: format!("{}.{}", parts[0], parts[1]),
            signature: parts[2].to_string(),
        })
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// What `jsonwebtoken.verify` is asked to check besides signature and times.
#[derive(Default)]
pub(crate) struct Expect<'a> {
    pub audience: Option<&'a str>,
    pub issuer: Option<&'a str>,
}

/// Verifies like `jsonwebtoken.verify(token, key, {audience, issuer})`: structure, algorithm,
/// signature, `nbf`, `exp`, audience, issuer, in that order. The error is the library's message.
pub(crate) fn verify(
    token: &str,
    key: Option<&PublicKey>,
    expect: &Expect<'_>,
) -> Result<Decoded, String> {
    let decoded = Decoded::parse(token).ok_or("jwt malformed")?;
    if decoded.signature.is_empty() {
        return Err("jwt signature is required".into());
    }
    let Some(key) = key else {
        return Err("secret or public key must be provided".into());
    };
    let alg = decoded.header.get("alg").and_then(Value::as_str);
    if alg != Some("RS256") {
        return Err("invalid algorithm".into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(decoded.signature.trim_end_matches('='))
        .map_err(|_| "invalid signature")?;
    if !key.verifies(decoded.signing_input.as_bytes(), &sig) {
        return Err("invalid signature".into());
    }
    let now = unix_secs(SystemTime::now()) as f64;
    let number = |name: &str| decoded.claims.get(name).map(|v| v.as_f64());
    match number("nbf") {
        Some(None) => return Err("invalid nbf value".into()),
        Some(Some(nbf)) if nbf > now => return Err("jwt not active".into()),
        _ => {}
    }
    match number("exp") {
        Some(None) => return Err("invalid exp value".into()),
        Some(Some(exp)) if now >= exp => return Err("jwt expired".into()),
        _ => {}
    }
    if let Some(audience) = expect.audience {
        let matches = match decoded.claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !matches {
            return Err(format!("jwt audience invalid. expected: {audience}"));
        }
    }
    if let Some(issuer) = expect.issuer {
        if decoded.claim_str("iss") != Some(issuer) {
            return Err(format!("jwt issuer invalid. expected: {issuer}"));
        }
    }
    Ok(decoded)
}

/// The message Infisical's error handler sends for a `jsonwebtoken` error (403 `TokenError`).
pub(crate) fn token_error_message(message: &str) -> &str {
    match message {
        "jwt expired" => "Your token has expired. Please re-authenticate.",
        "jwt malformed" => "The provided access token is malformed. Please use a valid token or generate a new one and try again.",
        "invalid algorithm" => "The access token is signed with an invalid algorithm. Please provide a valid token and try again.",
        other => other,
    }
}

/// `picomatch.isMatch(value, pattern)` for the patterns Infisical's bound fields take: `*`
/// matches any run of characters, `?` one character, everything else itself.
pub(crate) fn glob_match(value: &str, pattern: &str) -> bool {
    fn go(v: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| go(&v[i..], rest)),
            Some(('?', rest)) => !v.is_empty() && go(&v[1..], rest),
            Some((c, rest)) => v.first() == Some(c) && go(&v[1..], rest),
        }
    }
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    value == pattern || go(&v, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_errors() {
        let key = SigningKey::load("k1", keys::ISSUER);
        let public = PublicKey::from_jwk(&key.jwk()).expect("jwk");
        let now = unix_secs(SystemTime::now());
        let token = key.sign(&json!({"iss": "i", "aud": ["a", "b"], "exp": now + 60}));
        let ok = verify(
            &token,
            Some(&public),
            &Expect {
                audience: Some("b"),
                issuer: Some("i"),
            },
        )
        .expect("valid");
        assert_eq!(ok.kid(), Some("k1"));
        let wrong_aud = Expect {
            audience: Some("c"),
            issuer: None,
        };
        assert_eq!(
            verify(&token, Some(&public), &wrong_aud).err().as_deref(),
            Some("jwt audience invalid. expected: c")
        );
        let foreign = SigningKey::load("k1", keys::FOREIGN).sign(&json!({"exp": now + 60}));
        assert_eq!(
            verify(&foreign, Some(&public), &Expect::default())
                .err()
                .as_deref(),
            Some("invalid signature")
        );
        let expired = key.sign(&json!({"exp": now - 1}));
        assert_eq!(
            verify(&expired, Some(&public), &Expect::default())
                .err()
                .as_deref(),
            Some("jwt expired")
        );
        let spki = PublicKey::from_spki_pem(keys::ISSUER_PUBLIC).expect("spki");
        assert!(verify(&token, Some(&spki), &Expect::default()).is_ok());
        assert_eq!(
            verify("x.y", Some(&spki), &Expect::default())
                .err()
                .as_deref(),
            Some("jwt malformed")
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "system:serviceaccount:ns:app",
            "system:serviceaccount:ns:*"
        ));
        assert!(glob_match("abc", "a?c"));
        assert!(!glob_match("abd", "abc"));
        assert!(glob_match("a*b", "a*b"));
    }
}
