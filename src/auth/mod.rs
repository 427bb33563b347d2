//! Authentication and the access token's lifecycle: log in, renew at about 2/3 of the TTL, log
//! in again when renewal would be refused, and keep the last good credential when a rotating
//! credential file is caught half-written.

mod credential;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::api::{ApiError, Infisical, Login, TokenGrant};
use crate::backoff::Transient;
use crate::secrets::SecretValue;

pub use credential::{read_credential_file, AuthConfig, Credential, CredentialError};

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A credential could not be read (and no earlier good one exists).
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The server refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Token auth: the token was refused and there is no way to get another.
    #[error("the access token was rejected ({reason}) and token auth cannot log in again")]
    TokenRejected {
        /// What the server said.
        reason: String,
    },
}

/// Holds the access token in memory only and keeps it valid.
pub struct Authenticator {
    client: Arc<dyn Infisical>,
    config: AuthConfig,
    grant: Option<TokenGrant>,
    /// When the current token was first issued (its max-TTL budget counts from here).
    issued_at: Option<Instant>,
    expires_at: Option<SystemTime>,
    renew_token_auth: bool,
    last_good: HashMap<&'static str, SecretValue>,
}

impl Authenticator {
    /// An authenticator that logs in lazily, on first use. `renew_token_auth` allows renewing a
    /// token-auth token (off by default: servers refuse and delete tokens whose TTL equals their
    /// max TTL).
    pub fn new(client: Arc<dyn Infisical>, config: AuthConfig, renew_token_auth: bool) -> Self {
        Self {
            client,
            config,
            grant: None,
            issued_at: None,
            expires_at: None,
            renew_token_auth,
            last_good: HashMap::new(),
        }
    }

    /// Whether a refused token can be replaced by logging in again.
    pub fn can_log_in(&self) -> bool {
        !matches!(self.config, AuthConfig::Token { .. })
    }

    /// The current access token, logging in first if there is none.
    pub async fn token(&mut self) -> Result<SecretValue, AuthError> {
        if self.grant.is_none() {
            self.log_in().await?;
        }
        match &self.grant {
            Some(grant) => Ok(grant.token.clone()),
            None => unreachable!("log_in either sets a grant or fails"),
        }
    }

    /// Logs in (or, for token auth, reads the token) and replaces the current token.
    pub async fn log_in(&mut self) -> Result<(), AuthError> {
        let grant = match self.config.clone() {
            AuthConfig::UniversalAuth {
                client_id,
                client_secret,
            } => {
                let id = self.read(&client_id, "client id")?;
                let secret = self.read(&client_secret, "client secret")?;
                self.client
                    .login(Login::UniversalAuth {
                        client_id: &id,
                        client_secret: &secret,
                    })
                    .await?
            }
            AuthConfig::Kubernetes {
                identity_id,
                token_file,
            } => {
                let jwt = self.read(&Credential::File(token_file), "service-account token")?;
                self.client
                    .login(Login::Kubernetes {
                        identity_id: &identity_id,
                        jwt: &jwt,
                    })
                    .await?
            }
            AuthConfig::Token { token } => TokenGrant {
                token: self.read(&token, "access token")?,
                obtained_at: Instant::now(),
                ttl: None,
                max_ttl: None,
            },
        };
        if self.can_log_in() {
            tracing::info!(
                method = self.config.method_name(),
                ttl_s = grant.ttl.map(|t| t.as_secs()),
                "logged in to Infisical"
            );
        }
        self.issued_at = Some(grant.obtained_at);
        self.set_grant(grant);
        Ok(())
    }

    /// Called when the server refused the token: obtains a fresh one (a login, or a token file
    /// that has changed), or fails with [`AuthError::TokenRejected`] when nothing else can be
    /// tried.
    pub async fn replace_rejected_token(&mut self, reason: &str) -> Result<(), AuthError> {
        let previous = self.grant.take();
        if self.can_log_in() {
            tracing::info!("access token rejected ({reason}); logging in again");
            return self.log_in().await;
        }
        // Token auth: the only hope is that a new token was mounted.
        self.log_in().await?;
        let unchanged = match (&previous, &self.grant) {
            (Some(old), Some(new)) => old.token == new.token,
            _ => false,
        };
        if unchanged {
            self.grant = previous;
            return Err(AuthError::TokenRejected {
                reason: reason.to_owned(),
            });
        }
        tracing::info!("access token rejected ({reason}); using the new token from the file");
        Ok(())
    }

    /// When the token should next be renewed (or replaced), if ever.
    pub fn next_refresh(&self) -> Option<Instant> {
        let grant = self.grant.as_ref()?;
        if !self.can_log_in() && !self.renew_token_auth {
            return None;
        }
        let ttl = grant.ttl?;
        Some(grant.obtained_at + ttl.mul_f64(2.0 / 3.0))
    }

    /// Renews the token when due; logs in again instead when the renewal would cross the max
    /// TTL (the server would refuse it and delete the token) or is refused.
    pub async fn refresh_if_due(&mut self) -> Result<(), AuthError> {
        let Some(due) = self.next_refresh() else {
            return Ok(());
        };
        if Instant::now() < due {
            return Ok(());
        }
        let Some(grant) = self.grant.clone() else {
            return Ok(());
        };
        let ttl = grant.ttl.unwrap_or_default();
        let budget_left = match (grant.max_ttl, self.issued_at) {
            (Some(max_ttl), Some(issued)) => {
                (issued + max_ttl).checked_duration_since(Instant::now())
            }
            _ => Some(Duration::MAX),
        };
        let renewable = budget_left.is_some_and(|left| left > ttl);
        if !renewable {
            if self.can_log_in() {
                tracing::debug!("token near its max TTL; logging in again instead of renewing");
                return self.log_in().await;
            }
            return Ok(());
        }
        match self.client.renew(&grant.token).await {
            Ok(renewed) => {
                tracing::debug!(
                    ttl_s = renewed.ttl.map(|t| t.as_secs()),
                    "access token renewed"
                );
                self.set_grant(renewed);
                Ok(())
            }
            Err(error) if error.is_transient() => Err(error.into()),
            Err(error) if self.can_log_in() => {
                tracing::info!("token renewal refused ({error}); logging in again");
                self.log_in().await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Re-reads every credential file after a change on disk. A good read becomes the credential
    /// for the next login; a failed one (a file caught half-written) keeps the last good value.
    pub fn reload_credentials(&mut self) {
        let credentials: Vec<(Credential, &'static str)> = match &self.config {
            AuthConfig::UniversalAuth {
                client_id,
                client_secret,
            } => vec![
                (client_id.clone(), "client id"),
                (client_secret.clone(), "client secret"),
            ],
            AuthConfig::Kubernetes { token_file, .. } => {
                vec![(
                    Credential::File(token_file.clone()),
                    "service-account token",
                )]
            }
            AuthConfig::Token { token } => vec![(token.clone(), "access token")],
        };
        for (credential, what) in credentials {
            if credential.path().is_some() && self.read(&credential, what).is_ok() {
                tracing::info!("{what} file changed; the new one will be used at the next login");
            }
        }
    }

    /// When the current token expires (wall clock), for `/metrics`.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    fn set_grant(&mut self, grant: TokenGrant) {
        self.expires_at = grant.ttl.map(|ttl| SystemTime::now() + ttl);
        self.grant = Some(grant);
    }

    /// Reads a credential; if the file cannot be read now but was read before, keeps the last
    /// good value (kubelet swaps projected files with a rename, but other writers may not).
    fn read(
        &mut self,
        credential: &Credential,
        what: &'static str,
    ) -> Result<SecretValue, AuthError> {
        match credential.read(what) {
            Ok(value) => {
                self.last_good.insert(what, value.clone());
                Ok(value)
            }
            Err(error) => match self.last_good.get(what) {
                Some(value) => {
                    tracing::warn!("{error}; using the last good {what}");
                    Ok(value.clone())
                }
                None => Err(error.into()),
            },
        }
    }
}
