//! Where the credentials of each login method come from, and how they are read: files are
//! re-read at every login (kubelet rotates projected tokens), values are trimmed.

use std::path::{Path, PathBuf};

use super::cloud::aws::AwsSettings;
use super::cloud::azure::AzureSettings;
use crate::api::TokenLogin;
use crate::secrets::SecretValue;

/// A credential that cannot be read. Exits 64: the configuration points at the wrong place.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A credential file that cannot be read.
    #[error("cannot read the {what} file {}: {source}; check the volume mount and the path", path.display())]
    Unreadable {
        /// Which credential.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A credential file or variable that is empty.
    #[error("the {what} in {origin} is empty")]
    Empty {
        /// Which credential.
        what: &'static str,
        /// The file or variable it came from.
        origin: String,
    },
}

/// Where a credential comes from. Files are re-read at every login (kubelet rotates them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A file whose trimmed content is the credential.
    File(PathBuf),
    /// A value given through an environment variable.
    Value {
        /// The variable's name, for messages.
        origin: &'static str,
        /// The trimmed value.
        value: SecretValue,
    },
}

impl Credential {
    /// Reads the credential, trimmed; `what` names it in errors ("client secret").
    pub fn read(&self, what: &'static str) -> Result<SecretValue, CredentialError> {
        match self {
            Credential::File(path) => read_credential_file(path, what),
            Credential::Value { value, .. } => Ok(value.clone()),
        }
    }

    /// The file to watch for changes, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Credential::File(path) => Some(path),
            Credential::Value { .. } => None,
        }
    }
}

/// Reads and trims a credential file; an empty one is an error too.
pub fn read_credential_file(
    path: &Path,
    what: &'static str,
) -> Result<SecretValue, CredentialError> {
    let raw = std::fs::read_to_string(path).map_err(|source| CredentialError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })?;
    let raw = SecretValue::new(raw);
    let trimmed = raw.expose().trim();
    if trimmed.is_empty() {
        return Err(CredentialError::Empty {
            what,
            origin: path.display().to_string(),
        });
    }
    Ok(SecretValue::from(trimmed))
}

/// How to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthConfig {
    /// Universal auth: client id and client secret.
    UniversalAuth {
        /// The client id (a value or a file).
        client_id: Credential,
        /// The client secret (a file or INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET).
        client_secret: Credential,
    },
    /// Kubernetes auth: identity id and the pod's projected service-account token.
    Kubernetes {
        /// The machine identity id.
        identity_id: String,
        /// The projected token file.
        token_file: PathBuf,
    },
    /// Token auth: an access token used directly.
    Token {
        /// The token (a file or INFISICAL_TOKEN).
        token: Credential,
    },
    /// OIDC or JWT auth: a JWT, by default the pod's projected service-account token.
    Jwt {
        /// [`TokenLogin::Oidc`] or [`TokenLogin::Jwt`].
        method: TokenLogin,
        /// The machine identity id.
        identity_id: String,
        /// The token (a file re-read at every login, or INFISICAL_JWT).
        jwt: Credential,
    },
    /// AWS IAM auth: a signed STS request made with the pod's AWS credentials.
    AwsIam {
        /// The machine identity id.
        identity_id: String,
        /// Where the AWS credentials come from.
        aws: AwsSettings,
    },
    /// GCP auth with an ID token from the metadata server (GCE, GKE Workload Identity).
    GcpIdToken {
        /// The machine identity id.
        identity_id: String,
        /// The metadata server's `host[:port]`.
        metadata_host: String,
    },
    /// GCP auth with a JWT signed locally by a service-account key file.
    GcpIam {
        /// The machine identity id.
        identity_id: String,
        /// The key file (JSON), re-read at every login.
        key_file: PathBuf,
    },
    /// Azure auth with an Azure AD access token.
    Azure {
        /// The machine identity id.
        identity_id: String,
        /// Where the token comes from.
        azure: AzureSettings,
    },
}

impl AuthConfig {
    /// The machine identity id, for the methods that take one.
    pub fn identity_id(&self) -> Option<&str> {
        match self {
            AuthConfig::UniversalAuth { .. } | AuthConfig::Token { .. } => None,
            AuthConfig::Kubernetes { identity_id, .. }
            | AuthConfig::Jwt { identity_id, .. }
            | AuthConfig::AwsIam { identity_id, .. }
            | AuthConfig::GcpIdToken { identity_id, .. }
            | AuthConfig::GcpIam { identity_id, .. }
            | AuthConfig::Azure { identity_id, .. } => Some(identity_id),
        }
    }

    /// The method's name as the CLI spells it.
    pub fn method_name(&self) -> &'static str {
        match self {
            AuthConfig::UniversalAuth { .. } => "universal-auth",
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Token { .. } => "token",
            AuthConfig::Jwt {
                method: TokenLogin::Jwt,
                ..
            } => "jwt",
            AuthConfig::Jwt { .. } => "oidc",
            AuthConfig::AwsIam { .. } => "aws-iam",
            AuthConfig::GcpIdToken { .. } => "gcp-id-token",
            AuthConfig::GcpIam { .. } => "gcp-iam",
            AuthConfig::Azure { .. } => "azure",
        }
    }

    /// Files holding credentials, which a sidecar watches.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        match self {
            AuthConfig::UniversalAuth {
                client_id,
                client_secret,
            } => [client_id.path(), client_secret.path()]
                .into_iter()
                .flatten()
                .map(Path::to_owned)
                .collect(),
            AuthConfig::Kubernetes { token_file, .. } => vec![token_file.clone()],
            AuthConfig::Token { token } | AuthConfig::Jwt { jwt: token, .. } => {
                token.path().map(Path::to_owned).into_iter().collect()
            }
            AuthConfig::AwsIam { aws, .. } => aws.watched_files(),
            AuthConfig::GcpIdToken { .. } => Vec::new(),
            AuthConfig::GcpIam { key_file, .. } => vec![key_file.clone()],
            AuthConfig::Azure { azure, .. } => azure.watched_files(),
        }
    }
}
