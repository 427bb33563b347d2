//! The cheap refresh shared by `sidecar` and `exec --watch`: one list request with
//! `If-None-Match` per interval, a content hash to ignore answers that change nothing, token
//! renewal in between, and backoff (never faster than the server asks) while things fail.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::{Backoff, Transient};
use crate::secrets::SecretSet;
use crate::source::{FetchError, Fetched, Source};

/// Login refusals are retried no faster than this: universal auth locks an identity after three
/// wrong secrets within 30 seconds.
const LOGIN_REFUSED_FLOOR: Duration = Duration::from_secs(30);

/// What a refresh found.
pub enum Refresh {
    /// Same secrets as before (a 304, or a 200 whose content hashes the same).
    Unchanged,
    /// Different secrets.
    Changed(SecretSet),
}

/// Polls one source and says when something changed.
pub struct Refresher {
    source: Source,
    interval: Duration,
    jitter: f64,
    etag: Option<String>,
    current: Option<[u8; 32]>,
    backoff: Backoff,
}

impl Refresher {
    /// A refresher for `source`, polling every `interval` plus up to `jitter` × interval.
    pub fn new(source: Source, interval: Duration, jitter: f64) -> Self {
        Self {
            source,
            interval,
            jitter: jitter.clamp(0.0, 1.0),
            etag: None,
            current: None,
            backoff: Backoff::new(interval.min(Duration::from_secs(1)), interval),
        }
    }

    /// The source (configuration, token keeper, client).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The source, mutably (to reload credentials).
    pub fn source_mut(&mut self) -> &mut Source {
        &mut self.source
    }

    /// Fetches once. The first successful call always reports `Changed`.
    pub async fn refresh(&mut self) -> Result<Refresh, FetchError> {
        // A failed renewal is not a failed refresh: the current token may still be good, and
        // if it is not, the list call logs in again.
        if let Err(error) = self.source.auth().refresh_if_due().await {
            tracing::warn!("token renewal failed: {error}");
        }
        match self.source.fetch(self.etag.as_deref()).await? {
            Fetched::NotModified => Ok(Refresh::Unchanged),
            Fetched::Secrets { secrets, etag } => {
                self.etag = etag;
                let hash = secrets.content_hash();
                if self.current == Some(hash) {
                    return Ok(Refresh::Unchanged);
                }
                self.current = Some(hash);
                Ok(Refresh::Changed(secrets))
            }
        }
    }

    /// Forgets the last content (e.g. when writing it failed), so the next answer is reported
    /// as a change even if a 304 would say otherwise.
    pub fn forget(&mut self) {
        self.current = None;
        self.etag = None;
    }

    /// Renews the access token if it is due (between refreshes).
    pub async fn maintain_token(&mut self) -> Result<(), FetchError> {
        Ok(self.source.auth().refresh_if_due().await?)
    }

    /// When the token next needs renewing, if ever.
    pub fn token_due(&self) -> Option<Instant> {
        self.source.auth_ref().next_refresh()
    }

    /// The delay after a successful refresh: the interval plus jitter.
    pub fn delay_after_success(&mut self) -> Duration {
        self.backoff.reset();
        self.interval + self.interval.mul_f64(self.jitter * fastrand::f64())
    }

    /// The delay after a failure that was not the server's (e.g. a write error).
    pub fn delay_after_failure_plain(&mut self) -> Duration {
        self.backoff.next_delay(None)
    }

    /// The delay after a failure: exponential backoff capped at the interval, but never shorter
    /// than the server's `Retry-After`, and at least 30 s after a refused login.
    pub fn delay_after_failure(&mut self, error: &FetchError) -> Duration {
        let delay = self.backoff.next_delay(error.retry_after());
        let login_refused =
            matches!(error.api_error(), Some(e) if e.endpoint.is_login() && !e.is_transient());
        if login_refused {
            delay.max(LOGIN_REFUSED_FLOOR)
        } else {
            delay
        }
    }
}
