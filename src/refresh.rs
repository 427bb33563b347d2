//! The refresh engine shared by `sidecar` and `exec --watch`: a task that owns the token's
//! lifecycle, polls with one conditional list request per interval, backs off while things
//! fail (never faster than the server asks, never parked for longer than a cap), and emits each
//! changed secret set on a channel, waiting for the mode to say whether applying it worked.
//!
//! The modes stay thin: each is a `select!` over [`Running::next`], signals and health.
//! Every wait uses tokio's clock, so the schedule is tested in-process with paused time.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::backoff::{Backoff, Transient};
use crate::config::RefreshTiming;
use crate::diagnose;
use crate::secrets::SecretSet;
use crate::source::{FetchFailure, Fetched, Sources};
use crate::watch::{self, FileWatch};

/// Login refusals are retried no faster than this: universal auth locks an identity after three
/// wrong secrets within 30 seconds.
const LOGIN_REFUSED_FLOOR: Duration = Duration::from_secs(30);

/// However long a server asks us to wait, we try again after at most the larger of the
/// interval and this, so an answer like `Retry-After: 86400` cannot park a pod for a day.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// The wait after a success: the interval plus up to `jitter` of it.
fn success_delay(timing: &RefreshTiming) -> Duration {
    timing.interval
        + timing
            .interval
            .mul_f64(timing.jitter.clamp(0.0, 1.0) * fastrand::f64())
}

/// The wait after the first success: a uniformly random point of the interval, so that pods
/// started together (a rollout, a node reboot) do not keep refreshing together.
fn first_phase(timing: &RefreshTiming) -> Duration {
    timing.interval.mul_f64(fastrand::f64())
}

/// The longest wait after a failure, whatever `Retry-After` says.
fn retry_cap(timing: &RefreshTiming) -> Duration {
    timing.interval.max(RETRY_AFTER_CAP)
}

/// How the outage lines say what the mode keeps doing while Infisical fails.
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// Said once a secret set has been applied, e.g. "keeping the last good files".
    pub keeping: &'static str,
    /// Said before any secret set was applied, e.g. "not ready yet: nothing written".
    pub nothing_yet: &'static str,
}

/// What the engine tells the mode.
#[derive(Debug)]
pub enum Event {
    /// A refresh found different secrets: apply them, then answer with [`Ack::applied`].
    Changed(SecretSet, Ack),
    /// A refresh found the same secrets (a 304, or a 200 that hashes the same).
    Unchanged,
    /// A refresh failed (already logged, with when it is tried again).
    Failed,
    /// The access token's expiry changed (for `/metrics`).
    TokenExpiry(Option<SystemTime>),
}

/// The way to tell the engine whether a changed set was applied.
#[derive(Debug)]
pub struct Ack(oneshot::Sender<bool>);

impl Ack {
    /// Reports whether the secrets were applied (written, or the command restarted with them).
    /// After a failure the engine forgets them, so the next answer counts as a change even if
    /// the server says nothing changed.
    pub fn applied(self, ok: bool) {
        // The engine waits for this answer; if it is gone, the mode is shutting down.
        let _ = self.0.send(ok);
    }
}

/// The engine, before it runs.
pub struct Engine {
    sources: Sources,
    timing: RefreshTiming,
    wording: Wording,
    backoff: Backoff,
    current: Option<[u8; 32]>,
    applied_once: bool,
    first_refresh: Instant,
    /// The random phase after the first success has been taken.
    phased: bool,
    credentials: Option<FileWatch>,
    token_expiry: Option<SystemTime>,
    /// The last failure was a refused login.
    login_refused: bool,
}

impl Engine {
    /// An engine polling `sources` on `timing`; the first refresh happens at once, the second
    /// at a random point of the interval after it, the rest an interval (plus jitter) apart.
    pub fn new(sources: Sources, timing: RefreshTiming, wording: Wording) -> Self {
        let interval = timing.interval;
        Self {
            sources,
            timing,
            wording,
            backoff: Backoff::new(interval.min(Duration::from_secs(1)), interval),
            current: None,
            applied_once: false,
            first_refresh: Instant::now(),
            phased: false,
            credentials: None,
            token_expiry: None,
            login_refused: false,
        }
    }

    /// Starts from a set the mode already applied (fetched through the same sources, which
    /// kept their ETags): the first refresh waits one interval and only a different set is
    /// reported.
    pub fn after_first_fetch(mut self, applied: &SecretSet) -> Self {
        self.current = Some(applied.content_hash());
        self.applied_once = true;
        self.phased = true;
        self.first_refresh = Instant::now() + first_phase(&self.timing);
        self
    }

    /// Re-reads credential files when this watch reports a change, so a rotated credential is
    /// checked and kept before the next login.
    pub fn watching(mut self, credentials: Option<FileWatch>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Runs the engine as a task. Dropping the returned handle stops it (a request in flight is
    /// abandoned).
    pub fn spawn(self) -> Running {
        let (sender, events) = mpsc::channel(4);
        let task = tokio::spawn(self.run(sender));
        Running { events, task }
    }

    async fn run(mut self, events: mpsc::Sender<Event>) {
        let mut next_refresh = self.first_refresh;
        // After a failed renewal, the token waits for the backoff instead of waking us at once.
        let mut token_hold = Instant::now();
        loop {
            let wake = match self.sources.auth_ref().next_refresh() {
                Some(due) if due.max(token_hold) < next_refresh => due.max(token_hold),
                _ => next_refresh,
            };
            tokio::select! {
                () = events.closed() => return,
                Some(()) = watch::changed(&mut self.credentials) => {
                    self.sources.auth().reload_credentials();
                    // A rotated credential is tried at once after a refused login, rather than
                    // after the 30 s that a refused login otherwise waits.
                    if std::mem::take(&mut self.login_refused) {
                        next_refresh = Instant::now();
                    }
                    continue;
                }
                () = sleep_until(wake) => {}
            }
            if Instant::now() < next_refresh {
                // Woken for the token only.
                if let Err(error) = self.sources.auth().refresh_if_due().await {
                    let error = FetchFailure::from(error);
                    let delay = self.failure_delay(&error);
                    tracing::warn!(
                        "token renewal failed: {}; the current token is used meanwhile; \
                         retrying in {}",
                        self.advice(&error),
                        humantime::format_duration(rounded(delay))
                    );
                    token_hold = Instant::now() + delay;
                }
            } else {
                let Some(delay) = self.refresh(&events).await else {
                    return;
                };
                next_refresh = Instant::now() + delay;
            }
            if !self.report_token_expiry(&events).await {
                return;
            }
        }
    }

    /// One refresh; returns the delay until the next one, or `None` once the mode is gone.
    async fn refresh(&mut self, events: &mpsc::Sender<Event>) -> Option<Duration> {
        // A failed renewal is not a failed refresh: the current token may still be good, and
        // if it is not, the list call logs in again.
        if let Err(error) = self.sources.auth().refresh_if_due().await {
            let error = FetchFailure::from(error);
            tracing::warn!("token renewal failed: {}", self.advice(&error));
        }
        let (event, delay) = match self.sources.fetch(true).await {
            Ok(Fetched::NotModified) => (Event::Unchanged, self.success_delay()),
            Ok(Fetched::Secrets(secrets)) => {
                let hash = secrets.content_hash();
                if self.current == Some(hash) {
                    (Event::Unchanged, self.success_delay())
                } else {
                    let (reply, answer) = oneshot::channel();
                    events
                        .send(Event::Changed(secrets, Ack(reply)))
                        .await
                        .ok()?;
                    if answer.await.ok()? {
                        self.current = Some(hash);
                        self.applied_once = true;
                        return Some(self.success_delay());
                    }
                    // Forget what we have, so the next answer is applied even after a 304.
                    self.current = None;
                    self.sources.forget();
                    let delay = self.backoff.next_delay(None);
                    tracing::debug!(retry_in = %humantime::format_duration(rounded(delay)), "applying failed");
                    return Some(delay);
                }
            }
            Err(error) => {
                let delay = self.failure_delay(&error);
                let doing = if self.applied_once {
                    self.wording.keeping
                } else {
                    self.wording.nothing_yet
                };
                tracing::warn!(
                    "{}; {doing}; retrying in {}",
                    self.advice(&error),
                    humantime::format_duration(rounded(delay))
                );
                (Event::Failed, delay)
            }
        };
        events.send(event).await.ok()?;
        Some(delay)
    }

    fn success_delay(&mut self) -> Duration {
        self.backoff.reset();
        if std::mem::replace(&mut self.phased, true) {
            success_delay(&self.timing)
        } else {
            first_phase(&self.timing)
        }
    }

    /// Exponential backoff capped at the interval; a server's `Retry-After` is a floor, itself
    /// capped at the larger of the interval and five minutes; at least 30 s after a refused login.
    fn failure_delay(&mut self, error: &FetchFailure) -> Duration {
        let cap = retry_cap(&self.timing);
        let delay = self
            .backoff
            .next_delay(error.retry_after().map(|wait| wait.min(cap)))
            .min(cap);
        let login_refused = error.error.is_login_refused();
        self.login_refused = login_refused;
        if login_refused {
            delay.max(LOGIN_REFUSED_FLOOR)
        } else {
            delay
        }
    }

    fn advice(&self, error: &FetchFailure) -> String {
        diagnose::fetch_failure(error, self.sources.config()).message
    }

    /// Sends the token's expiry when it changed; false once the mode is gone.
    async fn report_token_expiry(&mut self, events: &mpsc::Sender<Event>) -> bool {
        let expiry = self.sources.auth_ref().expires_at();
        if expiry == self.token_expiry {
            return true;
        }
        self.token_expiry = expiry;
        events.send(Event::TokenExpiry(expiry)).await.is_ok()
    }
}

/// Whole milliseconds are noise in a log line a person reads.
fn rounded(delay: Duration) -> Duration {
    if delay >= Duration::from_secs(1) {
        Duration::from_secs(delay.as_secs())
    } else {
        Duration::from_millis(delay.as_millis() as u64)
    }
}

/// A running engine. Dropping it stops the task.
pub struct Running {
    events: mpsc::Receiver<Event>,
    task: JoinHandle<()>,
}

impl Running {
    /// The next event. Pending forever if the engine has stopped (it only stops when this
    /// handle is dropped, or if it panicked).
    pub async fn next(&mut self) -> Event {
        match self.events.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The schedule, driven in-process against a scripted server with tokio's paused clock:
    //! every wait is exact, and no test sleeps for real.

    use std::collections::{BTreeMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::model::{ListResponse, WireSecret};
    use crate::api::{
        ApiError, ApiErrorKind, ApiFuture, ApiSettings, Infisical, ListOutcome, ListQuery, Login,
        ProjectRef, TokenGrant,
    };
    use crate::auth::{AuthConfig, Credential};
    use crate::config::{FetchConfig, SourceConfig};
    use crate::secrets::SecretValue;
    use crate::secrets::{KeySelection, OnConflict};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Call {
        Login,
        Renew,
        List,
    }

    /// A server that answers logins with a token of `ttl`, and lists `value` under an ETag
    /// derived from it (304 when the client already has it), after any scripted failures.
    struct Scripted {
        ttl: Duration,
        value: Mutex<String>,
        /// Values of particular folders (others have `value`).
        folders: Mutex<BTreeMap<String, String>>,
        /// One failure for the next list request of a folder.
        folder_failures: Mutex<BTreeMap<String, ApiErrorKind>>,
        failures: Mutex<VecDeque<ApiErrorKind>>,
        login_failures: Mutex<VecDeque<ApiErrorKind>>,
        calls: Mutex<Vec<(Instant, Call)>>,
    }

    impl Scripted {
        fn new(ttl: Duration) -> Arc<Self> {
            Arc::new(Self {
                ttl,
                value: Mutex::new("v1".into()),
                folders: Mutex::default(),
                folder_failures: Mutex::default(),
                failures: Mutex::default(),
                login_failures: Mutex::default(),
                calls: Mutex::default(),
            })
        }

        fn fail_next(&self, kind: ApiErrorKind) {
            self.failures.lock().unwrap().push_back(kind);
        }

        fn set_value(&self, value: &str) {
            *self.value.lock().unwrap() = value.into();
        }

        fn record(&self, call: Call) {
            self.calls.lock().unwrap().push((Instant::now(), call));
        }

        fn times(&self, call: Call) -> Vec<Instant> {
            let calls = self.calls.lock().unwrap();
            calls
                .iter()
                .filter(|(_, c)| *c == call)
                .map(|(at, _)| *at)
                .collect()
        }

        fn count(&self, call: Call) -> usize {
            self.times(call).len()
        }

        fn grant(&self) -> TokenGrant {
            TokenGrant {
                token: SecretValue::from("token"),
                obtained_at: Instant::now(),
                ttl: Some(self.ttl),
                max_ttl: None,
            }
        }
    }

    fn status(status: u16, error: &str, retry_after: Option<Duration>) -> ApiErrorKind {
        ApiErrorKind::Status {
            status,
            error: error.into(),
            message: "scripted".into(),
            retry_after,
        }
    }

    impl Infisical for Scripted {
        fn login<'a>(&'a self, _login: Login<'a>) -> ApiFuture<'a, TokenGrant> {
            self.record(Call::Login);
            Box::pin(async move {
                match self.login_failures.lock().unwrap().pop_front() {
                    Some(kind) => Err(ApiError::new(
                        crate::api::Endpoint::UniversalAuthLogin,
                        kind,
                    )),
                    None => Ok(self.grant()),
                }
            })
        }

        fn renew<'a>(&'a self, _token: &'a SecretValue) -> ApiFuture<'a, TokenGrant> {
            self.record(Call::Renew);
            Box::pin(async move { Ok(self.grant()) })
        }

        fn list_secrets<'a>(
            &'a self,
            _token: &'a SecretValue,
            query: &'a ListQuery,
            etag: Option<&'a str>,
        ) -> ApiFuture<'a, ListOutcome> {
            self.record(Call::List);
            Box::pin(async move {
                let folder_failure = self.folder_failures.lock().unwrap().remove(&query.path);
                if let Some(kind) =
                    folder_failure.or_else(|| self.failures.lock().unwrap().pop_front())
                {
                    return Err(ApiError::new(crate::api::Endpoint::ListSecrets, kind));
                }
                let folder_value = self.folders.lock().unwrap().get(&query.path).cloned();
                let value = folder_value.unwrap_or_else(|| self.value.lock().unwrap().clone());
                let current = format!("\"{value}\"");
                if etag == Some(current.as_str()) {
                    return Ok(ListOutcome::NotModified);
                }
                Ok(ListOutcome::Fresh {
                    response: ListResponse {
                        secrets: vec![WireSecret {
                            secret_key: "KEY".into(),
                            secret_value: Some(SecretValue::new(value)),
                            secret_path: Some("/".into()),
                            secret_value_hidden: false,
                            kind: None,
                        }],
                        imports: None,
                    },
                    etag: Some(current),
                })
            })
        }
    }

    fn source(server: &Arc<Scripted>) -> Sources {
        sources(server, &[("/", "")])
    }

    /// Sources for these (folder, prefix) pairs, all served by `server`.
    fn sources(server: &Arc<Scripted>, folders: &[(&str, &str)]) -> Sources {
        let config = FetchConfig {
            api: ApiSettings {
                base_url: "http://infisical.test/api".into(),
                ca_cert: None,
                request_timeout: Duration::from_secs(10),
                max_response_size: 16 << 20,
            },
            auth: AuthConfig::UniversalAuth {
                client_id: Credential::Value {
                    origin: "test",
                    value: SecretValue::from("id"),
                },
                client_secret: Credential::Value {
                    origin: "test",
                    value: SecretValue::from("secret"),
                },
            },
            sources: folders
                .iter()
                .map(|(path, prefix)| SourceConfig {
                    query: ListQuery {
                        project: ProjectRef::Id("project".into()),
                        environment: "dev".into(),
                        path: (*path).into(),
                        recursive: false,
                        include_imports: true,
                        expand_references: true,
                        tags: Vec::new(),
                    },
                    keys: KeySelection {
                        prefix: (*prefix).into(),
                        ..KeySelection::default()
                    },
                })
                .collect(),
            allow_empty: false,
            on_conflict: OnConflict::Warn,
            mlock: false,
        };
        Sources::new(config, Arc::clone(server) as Arc<dyn Infisical>, false)
    }

    const WORDING: Wording = Wording {
        keeping: "keeping the last good files",
        nothing_yet: "not ready yet",
    };

    fn engine(server: &Arc<Scripted>, interval: Duration, jitter: f64) -> Running {
        Engine::new(source(server), RefreshTiming { interval, jitter }, WORDING).spawn()
    }

    /// The next event that is not a token-expiry report.
    async fn next(running: &mut Running) -> Event {
        loop {
            match running.next().await {
                Event::TokenExpiry(_) => continue,
                event => return event,
            }
        }
    }

    async fn expect_changed(running: &mut Running, applied: bool) -> SecretSet {
        match next(running).await {
            Event::Changed(secrets, ack) => {
                ack.applied(applied);
                secrets
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }

    async fn expect(running: &mut Running, wanted: &str) {
        let event = next(running).await;
        assert_eq!(format!("{event:?}"), wanted);
    }

    fn gaps(times: &[Instant]) -> Vec<Duration> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_with_jitter_stay_inside_their_bounds() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let interval = Duration::from_secs(10);
        let mut running = engine(&server, interval, 0.5);
        let secrets = expect_changed(&mut running, true).await;
        assert_eq!(secrets.get("KEY").unwrap().expose(), "v1");
        for _ in 0..30 {
            expect(&mut running, "Unchanged").await;
        }
        let all = gaps(&server.times(Call::List));
        assert_eq!(all.len(), 30);
        assert!(
            all[0] <= interval,
            "the first gap is a phase within the interval"
        );
        let gaps = &all[1..];
        for gap in gaps {
            assert!(
                *gap >= interval && *gap <= interval.mul_f64(1.5),
                "gap {gap:?} outside [10s, 15s]"
            );
        }
        assert!(
            gaps.iter().any(|gap| *gap != gaps[0]),
            "jitter spreads the gaps: {gaps:?}"
        );
        assert_eq!(
            server.count(Call::Login),
            1,
            "no login while the token is valid"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_second_refresh_falls_at_a_random_point_of_the_interval() {
        let interval = Duration::from_secs(10);
        let mut phases = Vec::new();
        for _ in 0..20 {
            let server = Scripted::new(Duration::from_secs(86_400));
            let mut running = engine(&server, interval, 0.0);
            expect_changed(&mut running, true).await;
            expect(&mut running, "Unchanged").await;
            expect(&mut running, "Unchanged").await;
            let gaps = gaps(&server.times(Call::List));
            assert!(
                gaps[0] <= interval,
                "phase {:?} beyond the interval",
                gaps[0]
            );
            assert_eq!(gaps[1], interval, "then one interval apart (no jitter)");
            phases.push(gaps[0]);
        }
        phases.sort();
        let spread = phases[phases.len() - 1] - phases[0];
        assert!(
            spread >= interval / 2,
            "twenty pods started together keep their phases apart: {phases:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_emitted_once_and_a_failed_apply_is_retried() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let mut running = engine(&server, Duration::from_secs(10), 0.0);
        expect_changed(&mut running, true).await;
        expect(&mut running, "Unchanged").await;
        server.set_value("v2");
        let secrets = expect_changed(&mut running, false).await;
        assert_eq!(secrets.get("KEY").unwrap().expose(), "v2");
        // Not applied: offered again (without an ETag, so not hidden behind a 304), after a
        // backoff shorter than the interval.
        let failed_at = Instant::now();
        expect_changed(&mut running, true).await;
        assert!(Instant::now() - failed_at < Duration::from_secs(10));
        expect(&mut running, "Unchanged").await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_renewed_at_two_thirds_of_its_ttl() {
        let server = Scripted::new(Duration::from_secs(90));
        let mut running = engine(&server, Duration::from_secs(3600), 0.0);
        expect_changed(&mut running, true).await;
        let login = server.times(Call::Login)[0];
        // Renewals happen between refreshes, each 60 s after the token was obtained.
        while server.count(Call::Renew) < 3 {
            assert!(matches!(running.next().await, Event::TokenExpiry(_)));
        }
        let renewals = server.times(Call::Renew);
        assert_eq!(renewals[0] - login, Duration::from_secs(60));
        assert_eq!(gaps(&renewals), [Duration::from_secs(60); 2]);
        assert_eq!(server.count(Call::Login), 1);
        assert_eq!(server.count(Call::List), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_leads_to_one_new_login() {
        for (code, class) in [(401, "UnauthorizedError"), (403, "TokenError")] {
            let server = Scripted::new(Duration::from_secs(86_400));
            let mut running = engine(&server, Duration::from_secs(10), 0.0);
            expect_changed(&mut running, true).await;
            server.fail_next(status(code, class, None));
            server.set_value("v2");
            expect_changed(&mut running, true).await;
            assert_eq!(
                server.count(Call::Login),
                2,
                "{code} {class}: one new login"
            );
            // The refused list and its retry with the new token.
            assert_eq!(server.count(Call::List), 3, "{code} {class}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_a_floor_and_is_capped() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let mut running = engine(&server, Duration::from_secs(1), 0.0);
        expect_changed(&mut running, true).await;

        server.fail_next(status(
            429,
            "RateLimitExceeded",
            Some(Duration::from_secs(20)),
        ));
        expect(&mut running, "Failed").await;
        expect(&mut running, "Unchanged").await;
        let wait = *gaps(&server.times(Call::List)).last().unwrap();
        assert!(
            wait >= Duration::from_secs(20) && wait <= Duration::from_secs(22),
            "Retry-After 20s, waited {wait:?}"
        );

        // A server asking for a day gets the cap: the larger of the interval and 5 minutes.
        server.fail_next(status(
            429,
            "RateLimitExceeded",
            Some(Duration::from_secs(86_400)),
        ));
        expect(&mut running, "Failed").await;
        expect(&mut running, "Unchanged").await;
        let wait = *gaps(&server.times(Call::List)).last().unwrap();
        assert_eq!(wait, RETRY_AFTER_CAP);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_while_failing_and_resets_after_a_success() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let interval = Duration::from_secs(8);
        let mut running = engine(&server, interval, 0.0);
        expect_changed(&mut running, true).await;
        let failing = |server: &Scripted, times: usize| {
            for _ in 0..times {
                server.fail_next(status(503, "ServiceUnavailable", None));
            }
        };
        failing(&server, 4);
        for _ in 0..4 {
            expect(&mut running, "Failed").await;
        }
        expect(&mut running, "Unchanged").await;
        // The first failure comes at the random phase after the first success; then the
        // backoff takes over: equal jitter around 1 s, 2 s, 4 s, capped at the interval.
        let waits = gaps(&server.times(Call::List));
        let within = |wait: Duration, low: f64, high: f64| {
            wait >= Duration::from_secs_f64(low) && wait <= Duration::from_secs_f64(high)
        };
        assert!(waits[0] <= interval, "{waits:?}");
        assert!(within(waits[1], 0.5, 1.0), "{waits:?}");
        assert!(within(waits[2], 1.0, 2.0), "{waits:?}");
        assert!(within(waits[3], 2.0, 4.0), "{waits:?}");
        assert!(within(waits[4], 4.0, 8.0), "{waits:?}");

        // After the success, the next failure starts again from the first step.
        failing(&server, 1);
        expect(&mut running, "Failed").await;
        expect(&mut running, "Unchanged").await;
        let waits = gaps(&server.times(Call::List));
        assert!(within(*waits.last().unwrap(), 0.5, 1.0), "{waits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_login_is_retried_no_faster_than_every_30_seconds() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let mut running = engine(&server, Duration::from_secs(1), 0.0);
        expect_changed(&mut running, true).await;
        // The token is refused, and so is the login that follows (a rotated client secret).
        server.fail_next(status(401, "UnauthorizedError", None));
        server
            .login_failures
            .lock()
            .unwrap()
            .push_back(status(401, "UnauthorizedError", None));
        expect(&mut running, "Failed").await;
        expect(&mut running, "Unchanged").await;
        let logins = server.times(Call::Login);
        assert_eq!(
            logins.len(),
            3,
            "first, refused, and the one after the wait"
        );
        let wait = logins[2] - logins[1];
        assert!(
            wait >= LOGIN_REFUSED_FLOOR && wait <= LOGIN_REFUSED_FLOOR + Duration::from_secs(1),
            "waited {wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_kept_in_a_pass_that_failed_later_is_still_reported() {
        let server = Scripted::new(Duration::from_secs(86_400));
        let timing = RefreshTiming {
            interval: Duration::from_secs(10),
            jitter: 0.0,
        };
        let folders = sources(&server, &[("/a", "A_"), ("/b", "B_")]);
        let mut running = Engine::new(folders, timing, WORDING).spawn();
        let first = expect_changed(&mut running, true).await;
        assert_eq!(first.keys().collect::<Vec<_>>(), ["A_KEY", "B_KEY"]);
        // /a changes, but /b fails in the same pass; next time both answer 304.
        server
            .folders
            .lock()
            .unwrap()
            .insert("/a".into(), "v2".into());
        server
            .folder_failures
            .lock()
            .unwrap()
            .insert("/b".into(), status(503, "ServiceUnavailable", None));
        expect(&mut running, "Failed").await;
        let changed = expect_changed(&mut running, true).await;
        assert_eq!(changed.get("A_KEY").unwrap().expose(), "v2");
        assert_eq!(changed.get("B_KEY").unwrap().expose(), "v1");
        // Per source: one list request per refresh (4 passes so far, the failed one included).
        assert_eq!(server.count(Call::List), 2 + 2 + 2);
        expect(&mut running, "Unchanged").await;
    }
}
