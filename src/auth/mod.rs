//! Authentication and the access token's lifecycle: log in, renew at about 2/3 of the TTL, log
//! in again when renewal would be refused, and keep the last good credential when a rotating
//! credential file is caught half-written.

pub mod cloud;
mod credential;
pub mod jwt;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::api::{ApiError, Infisical, Login, TokenGrant, TokenLogin};
use crate::backoff::Transient;
use crate::secrets::SecretValue;
use cloud::gcp::ServiceAccountKey;
use cloud::{CloudError, CloudHttp};
use jwt::JwtClaims;

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
    /// The cloud credential a login sends could not be had.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// A login that sent a JWT was refused; its public claims say what the identity must allow.
    #[error("{error} (the token sent has {claims})")]
    JwtRefused {
        /// The refusal.
        error: ApiError,
        /// The claims of the token sent.
        claims: Box<JwtClaims>,
    },
    /// A server that answers 500 to a JWT whose `aud` is a list (Infisical releases before
    /// 2025); retrying cannot help.
    #[error("{error} (the token sent has {claims})")]
    ListAudienceUnsupported {
        /// The 500.
        error: ApiError,
        /// The claims of the token sent.
        claims: Box<JwtClaims>,
    },
    /// An AWS login failed on the server, and STS, asked directly, refused the signature.
    #[error("{verdict}")]
    AwsSignatureRefused {
        /// Infisical's answer.
        error: Box<ApiError>,
        /// What STS said, with what to do.
        verdict: String,
    },
}

impl AuthError {
    /// Infisical's answer behind this failure, if the server was involved.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            AuthError::Api(error)
            | AuthError::JwtRefused { error, .. }
            | AuthError::ListAudienceUnsupported { error, .. } => Some(error),
            AuthError::AwsSignatureRefused { error, .. } => Some(error),
            AuthError::Credential(_) | AuthError::TokenRejected { .. } | AuthError::Cloud(_) => {
                None
            }
        }
    }
}

impl Transient for AuthError {
    /// Network trouble and server failures, at Infisical or at a cloud endpoint.
    fn is_transient(&self) -> bool {
        match self {
            AuthError::Api(error) => error.is_transient(),
            AuthError::Cloud(error) => error.is_transient(),
            AuthError::Credential(_)
            | AuthError::TokenRejected { .. }
            | AuthError::JwtRefused { .. }
            | AuthError::ListAudienceUnsupported { .. }
            | AuthError::AwsSignatureRefused { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Api(error) => error.retry_after(),
            _ => None,
        }
    }
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
    /// The client for cloud credential endpoints, made at the first cloud login.
    cloud: Option<CloudHttp>,
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
            cloud: None,
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
            AuthConfig::Jwt {
                method,
                identity_id,
                jwt,
            } => {
                let jwt = self.read(&jwt, "JWT")?;
                self.token_login(method, &identity_id, &jwt).await?
            }
            AuthConfig::AwsIam { identity_id, aws } => {
                let http = self.cloud_http()?;
                let signed = cloud::aws::sign_identity_request(&http, &aws).await?;
                let login = Login::AwsIam {
                    identity_id: &identity_id,
                    request_headers: &signed.headers,
                    request_body: &signed.body,
                };
                match self.client.login(login).await {
                    Ok(grant) => grant,
                    // A real server turns every STS refusal into a 500: ask STS why.
                    Err(error) if error.status().is_some_and(|s| s >= 500) => {
                        match cloud::aws::ask_sts_why(&http, &aws, &signed).await {
                            Ok(Some(verdict)) => {
                                return Err(AuthError::AwsSignatureRefused {
                                    error: Box::new(error),
                                    verdict,
                                })
                            }
                            Ok(None) => return Err(error.into()),
                            Err(probe) => {
                                tracing::debug!(
                                    "could not ask STS about the failed login: {probe}"
                                );
                                return Err(error.into());
                            }
                        }
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            AuthConfig::GcpIdToken {
                identity_id,
                metadata_host,
            } => {
                let http = self.cloud_http()?;
                let jwt = cloud::gcp::id_token(&http, &metadata_host, &identity_id).await?;
                self.token_login(TokenLogin::Gcp, &identity_id, &jwt)
                    .await?
            }
            AuthConfig::GcpIam {
                identity_id,
                key_file,
            } => {
                let key = ServiceAccountKey::read(&key_file)?;
                let jwt = key.sign_jwt(&identity_id, SystemTime::now())?;
                self.token_login(TokenLogin::Gcp, &identity_id, &jwt)
                    .await?
            }
            AuthConfig::Azure { identity_id, azure } => {
                let http = self.cloud_http()?;
                let jwt = cloud::azure::access_token(&http, &azure).await?;
                self.token_login(TokenLogin::Azure, &identity_id, &jwt)
                    .await?
            }
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

    /// A login sending `{identityId, jwt}`. A refusal is explained with the token's claims; a
    /// 500 for a list-valued `aud` is an old server, not an outage.
    async fn token_login(
        &self,
        method: TokenLogin,
        identity_id: &str,
        jwt: &SecretValue,
    ) -> Result<TokenGrant, AuthError> {
        let login = Login::IdentityToken {
            method,
            identity_id,
            jwt,
        };
        let error = match self.client.login(login).await {
            Ok(grant) => return Ok(grant),
            Err(error) => error,
        };
        let Some(claims) = JwtClaims::peek(jwt.expose()).map(Box::new) else {
            return Err(error.into());
        };
        let reads_jwt_claims = matches!(method, TokenLogin::Oidc | TokenLogin::Jwt);
        match error.status() {
            Some(500) if reads_jwt_claims && claims.audience_is_list => {
                Err(AuthError::ListAudienceUnsupported { error, claims })
            }
            Some(status) if !error.is_transient() && (400..500).contains(&status) => {
                Err(AuthError::JwtRefused { error, claims })
            }
            _ => Err(error.into()),
        }
    }

    fn cloud_http(&mut self) -> Result<CloudHttp, AuthError> {
        if let Some(http) = &self.cloud {
            return Ok(http.clone());
        }
        let http = CloudHttp::new()?;
        self.cloud = Some(http.clone());
        Ok(http)
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
            AuthConfig::Jwt { jwt, .. } => vec![(jwt.clone(), "JWT")],
            // Cloud credentials are fetched afresh at every login; nothing to keep.
            AuthConfig::AwsIam { .. }
            | AuthConfig::GcpIdToken { .. }
            | AuthConfig::GcpIam { .. }
            | AuthConfig::Azure { .. } => Vec::new(),
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
