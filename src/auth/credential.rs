//! Where the credentials of each login method come from, and how they are read: files are
//! re-read at every login (kubelet rotates projected tokens), values are trimmed.

use std::path::{Path, PathBuf};

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
}

impl AuthConfig {
    /// The method's name as the CLI spells it.
    pub fn method_name(&self) -> &'static str {
        match self {
            AuthConfig::UniversalAuth { .. } => "universal-auth",
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Token { .. } => "token",
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
            AuthConfig::Token { token } => token.path().map(Path::to_owned).into_iter().collect(),
        }
    }
}
