//! GCP logins. `gcp-id-token` asks the metadata server (GCE, or GKE Workload Identity) for an
//! ID token whose audience is the identity id. `gcp-iam` signs a JWT with a service-account key
//! file, locally: Infisical checks it against the account's published certificates, which list
//! user-managed keys too, so nothing needs to go to Google.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{form_encode, one_line, CloudError, CloudHttp, CloudRequest};
use crate::secrets::SecretValue;

/// The metadata server's host, unless `GCE_METADATA_HOST` says otherwise.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// How long a self-signed IAM token is valid (as the official SDK signs it).
const IAM_TOKEN_LIFETIME_SECS: u64 = 15 * 60;

/// Asks the metadata server for an ID token for `audience` (the identity id). `format=full`
/// adds the claims Infisical reads (the email, the instance).
pub async fn id_token(
    http: &CloudHttp,
    metadata_host: &str,
    audience: &str,
) -> Result<SecretValue, CloudError> {
    let url = format!(
        "http://{metadata_host}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
        form_encode(audience).as_str()
    );
    let (status, body) = http
        .send(CloudRequest {
            service: "the GCE metadata server",
            method: Method::GET,
            url: url.clone(),
            headers: vec![("Metadata-Flavor", "Google")],
            form: None,
            unreachable_hint: "; not running on GCE or GKE? use another --auth-method (on GKE, \
                               enable Workload Identity on the node pool)",
        })
        .await?;
    if !status.is_success() {
        return Err(CloudError::Refused {
            service: "the GCE metadata server",
            url,
            status: status.as_u16(),
            detail: one_line(&body),
            hint: "; on GKE, bind this Kubernetes service account to a Google service account \
                   (Workload Identity), or attach a service account to the instance"
                .to_owned(),
        });
    }
    let token = String::from_utf8_lossy(&body).trim().to_owned();
    if token.split('.').count() != 3 {
        return Err(CloudError::Malformed {
            service: "the GCE metadata server",
            url,
            detail: "the answer is not a JWT".to_owned(),
        });
    }
    Ok(SecretValue::new(token))
}

/// The fields of a service-account key file that signing needs.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    private_key_id: String,
    private_key: SecretValue,
    client_email: String,
}

/// A loaded service-account key.
pub struct ServiceAccountKey {
    email: String,
    key_id: String,
    key: RsaKeyPair,
}

impl ServiceAccountKey {
    /// Reads and checks a key file (JSON, as the console downloads it).
    pub fn read(path: &Path) -> Result<Self, CloudError> {
        let invalid = |why: &str| {
            CloudError::Local(format!(
                "the GCP service-account key file {} is not usable: {why}; download a JSON key \
                 for the service account (IAM > Service accounts > Keys)",
                path.display()
            ))
        };
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
            CloudError::Local(format!(
                "cannot read the GCP service-account key file {}: {e}; check the volume mount and \
                 the path",
                path.display()
            ))
        })?);
        let file: KeyFile =
            serde_json::from_slice(&text).map_err(|_| invalid("not a service-account key JSON"))?;
        if file.kind != "service_account" {
            return Err(invalid(&format!(
                "its type is {:?}, not \"service_account\"",
                file.kind
            )));
        }
        let der = pem_body(file.private_key.expose())
            .ok_or_else(|| invalid("private_key is not a PEM private key"))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| invalid("private_key is not an RSA PKCS#8 key"))?;
        Ok(Self {
            email: file.client_email,
            key_id: file.private_key_id,
            key,
        })
    }

    /// The service account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// A JWT `{sub: email, aud: audience, iat, exp}`, RS256, `kid` = the key's id.
    pub fn sign_jwt(&self, audience: &str, now: SystemTime) -> Result<SecretValue, CloudError> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = serde_json::json!({
            "iss": self.email,
            "sub": self.email,
            "aud": audience,
            "iat": iat,
            "exp": iat + IAM_TOKEN_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| CloudError::Local("RSA signing failed".to_owned()))?;
        Ok(SecretValue::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &str) -> Option<Zeroizing<Vec<u8>>> {
    let start = pem.find("-----BEGIN ")?;
    let after_header = pem[start..].find('\n')? + start + 1;
    let end = pem[after_header..].find("-----END ")? + after_header;
    let base64: Zeroizing<String> = Zeroizing::new(
        pem[after_header..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    STANDARD.decode(base64.as_bytes()).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_decoded() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            pem_body(pem).as_deref().map(Vec::as_slice),
            Some(&[0, 1, 2, 3][..])
        );
        assert!(pem_body("no pem here").is_none());
    }

    #[test]
    fn unusable_key_files_say_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.json");
        std::fs::write(&path, r#"{"type":"authorized_user","private_key_id":"1","private_key":"x","client_email":"a@b"}"#)
            .expect("write");
        let error = ServiceAccountKey::read(&path).err().expect("refused");
        assert!(
            error.to_string().contains("not \"service_account\""),
            "{error}"
        );
        std::fs::write(&path, r#"{"type":"service_account","private_key_id":"1","private_key":"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n","client_email":"a@b"}"#)
            .expect("write");
        let error = ServiceAccountKey::read(&path).err().expect("refused");
        assert!(
            error.to_string().contains("not an RSA PKCS#8 key"),
            "{error}"
        );
        assert!(!error.to_string().contains("AAEC"));
        let missing = ServiceAccountKey::read(&dir.path().join("none.json"))
            .err()
            .expect("refused");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}
