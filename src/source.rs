//! The sources of secrets (each a project, environment and folder) fetched in one pass with one
//! identity: one conditional list request per source, imports merged, keys selected, renamed and
//! prefixed, then the sources merged (a later source wins a key, with a warning or an error).

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiError, Infisical, ListOutcome, ListQuery};
use crate::auth::{AuthError, Authenticator};
use crate::backoff::Transient;
use crate::config::{FetchConfig, SourceConfig};
use crate::secrets::{self, FolderSecret, OnConflict, SecretSet};

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
    /// Two sources produce the same final key and `on-conflict: fail` was given.
    #[error("secret {key:?} comes from two sources: {earlier} and {later}")]
    Conflict {
        /// The final key.
        key: String,
        /// The earlier source, described.
        earlier: String,
        /// The later source, described.
        later: String,
    },
}

impl FetchError {
    /// The underlying API error, if the server was involved.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            FetchError::Api(error) => Some(error),
            FetchError::Auth(error) => error.api_error(),
            _ => None,
        }
    }

    /// A login that was refused (not a transient failure, not an unreadable file): trying
    /// again soon with the same credentials will not help.
    pub fn is_login_refused(&self) -> bool {
        matches!(self, FetchError::Auth(error)
            if !error.is_transient() && !matches!(error, AuthError::Credential(_)))
    }
}

impl Transient for FetchError {
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Api(error) => error.is_transient(),
            FetchError::Auth(error) => error.is_transient(),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Api(error) => error.retry_after(),
            FetchError::Auth(error) => error.retry_after(),
            _ => None,
        }
    }
}

/// A failed fetch and the source it concerns (`None`: the login, or all sources together).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct FetchFailure {
    /// Index of the source, as configured.
    pub source: Option<usize>,
    /// What went wrong.
    #[source]
    pub error: FetchError,
}

impl FetchFailure {
    fn of(source: usize) -> impl Fn(FetchError) -> Self + Copy {
        move |error| Self {
            source: Some(source),
            error,
        }
    }
}

impl From<FetchError> for FetchFailure {
    fn from(error: FetchError) -> Self {
        Self {
            source: None,
            error,
        }
    }
}

impl From<AuthError> for FetchFailure {
    fn from(error: AuthError) -> Self {
        FetchError::from(error).into()
    }
}

impl Transient for FetchFailure {
    fn is_transient(&self) -> bool {
        self.error.is_transient()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after()
    }
}

/// The result of a fetch.
pub enum Fetched {
    /// Every source said nothing changed since the ETags we sent.
    NotModified,
    /// The secrets as they should be materialized, every source merged.
    Secrets(SecretSet),
}

/// One source and what its last answer was.
struct SourceState {
    config: SourceConfig,
    /// The ETag of the last full answer, sent as `If-None-Match`.
    etag: Option<String>,
    /// The last full answer, processed: reused when the server answers 304.
    last: Option<SecretSet>,
}

/// The configured sources with their client and token.
pub struct Sources {
    config: FetchConfig,
    client: Arc<dyn Infisical>,
    auth: Authenticator,
    states: Vec<SourceState>,
    /// A source kept a new answer that no returned merge has included yet (a later source
    /// failed in that pass): the next pass reports a change even if every source answers 304.
    unreported: bool,
}

impl Sources {
    /// The sources of `config`, fetched with `client`; nothing is sent until the first fetch.
    pub fn new(config: FetchConfig, client: Arc<dyn Infisical>, renew_token_auth: bool) -> Self {
        let auth = Authenticator::new(Arc::clone(&client), config.auth.clone(), renew_token_auth);
        let states = config
            .sources
            .iter()
            .map(|source| SourceState {
                config: source.clone(),
                etag: None,
                last: None,
            })
            .collect();
        Self {
            config,
            client,
            auth,
            states,
            unreported: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
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

    /// Forgets every ETag, so the next fetch gets full answers.
    pub fn forget(&mut self) {
        for state in &mut self.states {
            state.etag = None;
        }
    }

    /// Fetches every source: one list request each (two if the token was refused and a fresh
    /// one had to be obtained), conditional on the last ETag when `conditional`.
    pub async fn fetch(&mut self, conditional: bool) -> Result<Fetched, FetchFailure> {
        for index in 0..self.states.len() {
            let state = &self.states[index];
            let etag = if conditional && state.last.is_some() {
                state.etag.clone()
            } else {
                None
            };
            let has_last = state.last.is_some();
            let outcome = self
                .list(index, etag.as_deref())
                .await
                .map_err(FetchFailure::of(index))?;
            match outcome {
                ListOutcome::NotModified if has_last => {}
                // Without a kept answer a 304 cannot be used: ask again without an ETag.
                ListOutcome::NotModified => {
                    let fresh = self
                        .list(index, None)
                        .await
                        .map_err(FetchFailure::of(index))?;
                    self.keep(index, fresh)?;
                }
                fresh => self.keep(index, fresh)?,
            }
        }
        if !self.unreported {
            return Ok(Fetched::NotModified);
        }
        let merged = self.merged()?;
        self.unreported = false;
        Ok(Fetched::Secrets(merged))
    }

    /// One list request for source `index`, logging in again once if the token is refused.
    async fn list(&mut self, index: usize, etag: Option<&str>) -> Result<ListOutcome, FetchError> {
        let query: &ListQuery = &self.states[index].config.query;
        let token = self.auth.token().await?;
        match self.client.list_secrets(&token, query, etag).await {
            Err(error) if error.is_token_rejected() => {
                let reason = error
                    .server_error()
                    .map(|(_, m)| m.to_owned())
                    .unwrap_or_default();
                self.auth.replace_rejected_token(&reason).await?;
                let token = self.auth.token().await?;
                Ok(self.client.list_secrets(&token, query, etag).await?)
            }
            other => Ok(other?),
        }
    }

    /// Processes a full answer of source `index` and keeps it (and its ETag).
    fn keep(&mut self, index: usize, outcome: ListOutcome) -> Result<(), FetchFailure> {
        let ListOutcome::Fresh { response, etag } = outcome else {
            return Ok(());
        };
        let state = &mut self.states[index];
        let fail = FetchFailure::of(index);
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
            .filter(|s| s.is_hidden())
            .map(|s| s.secret_key.clone())
            .collect();
        if !hidden.is_empty() {
            return Err(fail(FetchError::HiddenValues { keys: hidden }));
        }
        let folder = &state.config.query.path;
        let local = response
            .secrets
            .into_iter()
            .filter(|s| s.kind.as_deref() != Some("personal"))
            .map(|s| FolderSecret {
                path: s.secret_path.clone().unwrap_or_else(|| folder.clone()),
                key: s.secret_key.clone(),
                value: s.into_value(),
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
                    .map(|s| (s.secret_key.clone(), s.into_value()))
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
        let selected = state
            .config
            .keys
            .apply(&merged)
            .map_err(|keys| fail(FetchError::MissingKeys { keys }))?;
        if selected.is_empty() && !self.config.allow_empty {
            return Err(fail(FetchError::Empty));
        }
        state.etag = etag;
        state.last = Some(selected);
        self.unreported = true;
        Ok(())
    }

    /// Every source's last answer, merged in order.
    fn merged(&self) -> Result<SecretSet, FetchFailure> {
        let sets = self.states.iter().filter_map(|state| state.last.as_ref());
        let (merged, conflicts) = secrets::merge_sources(sets);
        for conflict in conflicts {
            let earlier = self.states[conflict.earlier].config.describe();
            let later = self.states[conflict.later].config.describe();
            if self.config.on_conflict == OnConflict::Fail {
                return Err(FetchError::Conflict {
                    key: conflict.key,
                    earlier,
                    later,
                }
                .into());
            }
            tracing::warn!(
                key = conflict.key,
                "secret {:?} comes from two sources; using {later} over {earlier}",
                conflict.key
            );
        }
        Ok(merged)
    }
}
