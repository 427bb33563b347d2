//! One source of secrets (a project, environment and folder): fetch, merge imports, select keys.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiError, Infisical, ListOutcome};
use crate::auth::{AuthError, Authenticator};
use crate::backoff::Transient;
use crate::config::SourceConfig;
use crate::secrets::{self, FolderSecret, SecretSet};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No token could be had.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Listing failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The identity may list but not read some values.
    #[error("the identity may not read the values of {}", .keys.join(", "))]
    HiddenValues {
        /// Keys whose values came back masked.
        keys: Vec<String>,
    },
    /// Nothing matched (and `--allow-empty` was not given).
    #[error("no secrets found")]
    Empty,
    /// A `--key` names a secret that does not exist.
    #[error("--key names secrets that do not exist: {}", .keys.join(", "))]
    MissingKeys {
        /// The remote keys not found.
        keys: Vec<String>,
    },
}

impl FetchError {
    /// The underlying API error, if the server was involved.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            FetchError::Api(error) | FetchError::Auth(AuthError::Api(error)) => Some(error),
            _ => None,
        }
    }
}

impl Transient for FetchError {
    fn is_transient(&self) -> bool {
        self.api_error().is_some_and(ApiError::is_transient)
    }

    fn retry_after(&self) -> Option<Duration> {
        self.api_error().and_then(ApiError::retry_after)
    }
}

/// The result of a fetch.
pub enum Fetched {
    /// The server said nothing changed since the ETag we sent.
    NotModified,
    /// The secrets as they should be materialized.
    Secrets {
        /// Merged, selected and renamed secrets.
        secrets: SecretSet,
        /// The ETag to send next time.
        etag: Option<String>,
    },
}

/// A configured source with its client and token.
pub struct Source {
    config: SourceConfig,
    client: Arc<dyn Infisical>,
    auth: Authenticator,
}

impl Source {
    /// A source using `client`; nothing is sent until the first fetch.
    pub fn new(config: SourceConfig, client: Arc<dyn Infisical>, renew_token_auth: bool) -> Self {
        let auth = Authenticator::new(Arc::clone(&client), config.auth.clone(), renew_token_auth);
        Self {
            config,
            client,
            auth,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The token keeper (for renewal scheduling and metrics).
    pub fn auth(&mut self) -> &mut Authenticator {
        &mut self.auth
    }

    /// Read-only view of the token keeper.
    pub fn auth_ref(&self) -> &Authenticator {
        &self.auth
    }

    /// One list request (two if the token was refused and a fresh one had to be obtained).
    pub async fn fetch(&mut self, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let token = self.auth.token().await?;
        let outcome = match self
            .client
            .list_secrets(&token, &self.config.query, etag)
            .await
        {
            Err(error) if error.is_token_rejected() => {
                let reason = error
                    .server_error()
                    .map(|(_, m)| m.to_owned())
                    .unwrap_or_default();
                self.auth.replace_rejected_token(&reason).await?;
                let token = self.auth.token().await?;
                self.client
                    .list_secrets(&token, &self.config.query, etag)
                    .await?
            }
            other => other?,
        };
        match outcome {
            ListOutcome::NotModified => Ok(Fetched::NotModified),
            ListOutcome::Fresh { response, etag } => {
                let hidden: Vec<String> = response
                    .secrets
                    .iter()
                    .chain(
                        response
                            .imports
                            .iter()
                            .flatten()
                            .flat_map(|i| i.secrets.iter()),
                    )
                    .filter(|s| s.secret_value_hidden)
                    .map(|s| s.secret_key.clone())
                    .collect();
                if !hidden.is_empty() {
                    return Err(FetchError::HiddenValues { keys: hidden });
                }
                let local = response
                    .secrets
                    .into_iter()
                    .filter(|s| s.kind.as_deref() != Some("personal"))
                    .map(|s| FolderSecret {
                        key: s.secret_key,
                        path: s
                            .secret_path
                            .unwrap_or_else(|| self.config.query.path.clone()),
                        value: s.secret_value,
                    })
                    .collect();
                let imports = response
                    .imports
                    .unwrap_or_default()
                    .into_iter()
                    .map(|import| {
                        import
                            .secrets
                            .into_iter()
                            .map(|s| (s.secret_key, s.secret_value))
                            .collect()
                    })
                    .collect();
                let (merged, shadowed) = secrets::merge(local, imports);
                for duplicate in shadowed {
                    tracing::warn!(
                        key = duplicate.key,
                        used = duplicate.kept,
                        ignored = duplicate.ignored,
                        "secret key exists in several folders; using the shallowest"
                    );
                }
                let secrets = if self.config.keys.is_empty() {
                    merged
                } else {
                    let mappings: Vec<(String, String)> = self
                        .config
                        .keys
                        .iter()
                        .map(|m| (m.remote.clone(), m.local.clone()))
                        .collect();
                    secrets::select_keys(&merged, &mappings)
                        .map_err(|keys| FetchError::MissingKeys { keys })?
                };
                if secrets.is_empty() && !self.config.allow_empty {
                    return Err(FetchError::Empty);
                }
                Ok(Fetched::Secrets { secrets, etag })
            }
        }
    }
}
