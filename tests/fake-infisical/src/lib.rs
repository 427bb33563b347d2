//! An Infisical-compatible HTTP server for tests and demos of `infisical-materializer`.
//!
//! It answers like the self-hosted Infisical release recorded in `fixtures/` (status codes,
//! error bodies, secret objects, imports, ETags, rate-limit headers, token TTL rules) and adds
//! switches tests need: injected faults, a "down" mode, the newer `/api/v4` routes, expiring
//! ETags, rate limits, request recording.
//!
//! ```no_run
//! use fake_infisical::{sample, FakeInfisical, Fault, Route, World};
//!
//! let fake = FakeInfisical::start(World::sample());
//! fake.inject(Fault::status(Route::ListSecrets, 503));
//! // point the client at fake.url() and log in with sample::UA_CLIENT_ID / UA_CLIENT_SECRET
//! assert_eq!(fake.count(Route::ListSecrets), 0);
//! ```
//!
//! The server runs on its own thread with its own Tokio runtime, so plain `#[test]` functions
//! can use it; dropping the handle stops it.

#![warn(missing_docs)]

pub mod cloud;
mod expand;
mod faults;
mod http_client;
mod jwt;
mod logins;
pub mod prerequisite;
mod routes;
mod server;
mod tokens;
mod util;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub use cloud::{
    AwsAuth, AzureAuth, CloudRoute, FakeCloud, GcpAuth, GcpAuthType, JwtAuth, JwtKeys, OidcAuth,
};
pub use faults::Fault;
pub use world::{LockoutPolicy, Release, World, DEFAULT_TTL};

use routes::State;
use server::Shared;

/// Ids and credentials of [`World::sample`] (ids as recorded in `fixtures/seed-data.json`;
/// client secrets are made up since the recorded ones are redacted).
pub mod sample {
    /// Organization id.
    pub const ORG_ID: &str = "6e4119d0-2e01-4c90-b3eb-0fcaebf24af1";
    /// Project id.
    pub const PROJECT_ID: &str = "cb7fcb73-a6e6-490e-ae23-bc4878a67111";
    /// Project slug.
    pub const PROJECT_SLUG: &str = "sidecar-test";
    /// Environments of the project.
    pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];
    /// Id of the `database` tag.
    pub const TAG_ID: &str = "35e22ea0-d034-46d1-b00c-21a6071dba5f";
    /// Slug of the tag on `dev:/app/db` `DB_USER` and `DB_PASSWORD`.
    pub const TAG_SLUG: &str = "database";
    /// Folder id of `staging:/` (the folder `dev:/` imports).
    pub const STAGING_ROOT_FOLDER_ID: &str = "1186f76b-409d-4d78-81f3-4a017351bfa7";

    /// Universal Auth identity with default TTLs (30 days, TTL == max TTL, so renewals are refused).
    pub const UA_IDENTITY_ID: &str = "e4c31075-f627-4a8f-ba9e-88cdde1809f3";
    /// Its client id.
    pub const UA_CLIENT_ID: &str = "83c4be26-d337-4dda-a915-61f13e9a41a2";
    /// Its client secret.
    pub const UA_CLIENT_SECRET: &str =
        "a1f3c5e7b9d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4";

    /// Universal Auth identity with TTL 600 s and max TTL 3600 s (renewable).
    pub const RENEWABLE_IDENTITY_ID: &str = "6f7d726a-0c36-4bd4-8964-4d8d1610c64b";
    /// Its client id.
    pub const RENEWABLE_CLIENT_ID: &str = "236c919f-b154-472d-97c2-546ca4d2290a";
    /// Its client secret.
    pub const RENEWABLE_CLIENT_SECRET: &str =
        "b2e4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4";
    /// Its access-token TTL (s).
    pub const RENEWABLE_TTL: u64 = 600;
    /// Its access-token max TTL (s).
    pub const RENEWABLE_MAX_TTL: u64 = 3600;

    /// Universal Auth identity with TTL 5 s and max TTL 15 s.
    pub const SHORT_TTL_IDENTITY_ID: &str = "c14e0c15-6066-46c9-a935-30a555049909";
    /// Its client id.
    pub const SHORT_TTL_CLIENT_ID: &str = "830b6cfe-b12d-4def-93b8-b3ec3c8153f5";
    /// Its client secret.
    pub const SHORT_TTL_CLIENT_SECRET: &str =
        "c3f5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5";
    /// Its access-token TTL (s).
    pub const SHORT_TTL: u64 = 5;
    /// Its access-token max TTL (s).
    pub const SHORT_MAX_TTL: u64 = 15;

    /// Organization identity (Universal Auth) that is not a member of the project.
    pub const NO_ACCESS_IDENTITY_ID: &str = "93e9eb8a-d7d4-4d80-bf44-71cc77faacef";
    /// Its client id.
    pub const NO_ACCESS_CLIENT_ID: &str = "0acf53cd-d472-4c90-854f-a5811c2d3a46";
    /// Its client secret.
    pub const NO_ACCESS_CLIENT_SECRET: &str =
        "d4a6f8b0c2e4a6b8d0f2c4e6a8b0d2f4c6e8a0b2d4f6c8e0a2b4d6f8c0e2a4b6";

    /// Token Auth identity (default TTLs); get tokens with `FakeInfisical::issue_token`.
    pub const TOKEN_IDENTITY_ID: &str = "d8b3c623-146b-4e9e-bdbe-d9f6af8a8ad5";

    /// Kubernetes Auth identity (default TTLs), allowed namespace [`K8S_NAMESPACE`].
    pub const K8S_IDENTITY_ID: &str = "809affbe-462d-4a13-af26-2f25adc542f8";
    /// The namespace the Kubernetes identity allows.
    pub const K8S_NAMESPACE: &str = "sidecar-ns";
    /// A namespace it does not allow.
    pub const K8S_OTHER_NAMESPACE: &str = "other-ns";
    /// Service-account name behind the sample service-account tokens.
    pub const K8S_SERVICE_ACCOUNT: &str = "app";
    /// Service-account token of `sidecar-ns/app` (TokenReview accepts it).
    pub const K8S_VALID_JWT: &str = "fake-sa-jwt-valid";
    /// Service-account token of `other-ns/app` (accepted by TokenReview, namespace refused).
    pub const K8S_OTHER_NS_JWT: &str = "fake-sa-jwt-other-ns";
}

/// The server's routes, for fault injection, rate limits and request counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /api/status`.
    Status,
    /// `POST /api/v1/auth/universal-auth/login`.
    UniversalAuthLogin,
    /// `POST /api/v1/auth/kubernetes-auth/login`.
    KubernetesLogin,
    /// `POST /api/v1/auth/oidc-auth/login`.
    OidcLogin,
    /// `POST /api/v1/auth/jwt-auth/login`.
    JwtLogin,
    /// `POST /api/v1/auth/aws-auth/login`.
    AwsLogin,
    /// `POST /api/v1/auth/gcp-auth/login`.
    GcpLogin,
    /// `POST /api/v1/auth/azure-auth/login`.
    AzureLogin,
    /// `POST /api/v1/auth/token/renew`.
    Renew,
    /// `POST /api/v1/auth/token/revoke`.
    Revoke,
    /// `GET /api/v3/secrets/raw`, or `GET /api/v4/secrets` when v4 is on.
    ListSecrets,
    /// `GET /api/v3/secrets/raw/{name}`, or `GET /api/v4/secrets/{name}` when v4 is on.
    GetSecret,
    /// `GET /api/v1/projects/slug/{slug}` (when v4 is on).
    ProjectBySlug,
    /// Anything else (answered with the framework's route-not-found 404).
    Other,
    /// Matches every route (for faults, rate limits and [`FakeInfisical::count`] only).
    Any,
}

/// A request a fake server received, with the status it answered; `R` says which route it
/// was for ([`Route`] for [`FakeInfisical`], [`CloudRoute`] for [`FakeCloud`]).
#[derive(Clone, Debug)]
pub struct RecordedRequest<R = Route> {
    /// When it arrived.
    pub at: Instant,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// Status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// The route it was for.
    pub route: R,
}

impl<R> RecordedRequest<R> {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running fake Infisical server. Dropping it stops the server.
pub struct FakeInfisical {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeInfisical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeInfisical")
            .field("url", &self.url())
            .finish()
    }
}

impl FakeInfisical {
    /// Starts a plain-HTTP server on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(world: World) -> FakeInfisical {
        Self::launch(world, SocketAddr::from(([127, 0, 0, 1], 0)), None)
            .unwrap_or_else(|e| panic!("fake-infisical: cannot listen on 127.0.0.1: {e}"))
    }

    /// Starts a plain-HTTP server on `addr`.
    pub fn start_on(world: World, addr: SocketAddr) -> std::io::Result<FakeInfisical> {
        Self::launch(world, addr, None)
    }

    /// Starts an HTTPS server on `127.0.0.1` with a free port. Its certificate, for
    /// `hostnames` plus `localhost` and `127.0.0.1`, is signed by a CA made for this server
    /// ([`FakeInfisical::ca_pem`]). [`FakeInfisical::url`] is `https://localhost:PORT`.
    ///
    /// # Panics
    /// When the certificates cannot be made or no loopback port can be bound.
    pub fn start_tls(world: World, hostnames: &[&str]) -> FakeInfisical {
        let tls = server::make_tls(hostnames)
            .unwrap_or_else(|e| panic!("fake-infisical: cannot make TLS certificates: {e}"));
        Self::launch(world, SocketAddr::from(([127, 0, 0, 1], 0)), Some(tls))
            .unwrap_or_else(|e| panic!("fake-infisical: cannot listen on 127.0.0.1: {e}"))
    }

    fn launch(
        world: World,
        addr: SocketAddr,
        tls: Option<server::Tls>,
    ) -> std::io::Result<FakeInfisical> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::new(State::new(world)));
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (acceptor, ca_pem) = match tls {
            Some(t) => (Some(t.acceptor), Some(t.ca_pem)),
            None => (None, None),
        };
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-infisical-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(server::run(listener, acceptor, server_shared, shutdown_rx));
            })?;
        Ok(FakeInfisical {
            shared,
            addr,
            ca_pem,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Base URL without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` for a TLS server.
    pub fn url(&self) -> String {
        if self.ca_pem.is_some() {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// PEM of the CA that signed the server certificate (TLS servers only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    // ----- data changes -----

    /// Deletes a folder and everything in it (its sub-folders too).
    pub fn delete_folder(&self, env: &str, path: &str) {
        let path = crate::util::normalize_path(path);
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.shared
            .lock()
            .world
            .folders
            .retain(|(e, p), _| e != env || (p != &path && !p.starts_with(&prefix)));
    }

    /// Adds the identity to the project, or removes it (its calls then get 403).
    pub fn set_member(&self, identity_id: &str, member: bool) {
        self.shared.lock().world.identity_mut(identity_id).member = member;
    }

    /// Creates or changes a secret (creating the environment and folders as needed); a
    /// change raises its version and `updatedAt`, so list ETags change.
    pub fn set_secret(&self, env: &str, path: &str, key: &str, value: &str) {
        self.shared
            .lock()
            .world
            .upsert_secret(env, path, key, value, true);
    }

    /// Creates or changes several secrets at once: no request sees some changed and not others.
    pub fn set_secrets(&self, env: &str, path: &str, secrets: &[(&str, &str)]) {
        let mut shared = self.shared.lock();
        for (key, value) in secrets {
            shared.world.upsert_secret(env, path, key, value, true);
        }
    }

    /// Deletes a secret (no-op when it does not exist).
    pub fn delete_secret(&self, env: &str, path: &str, key: &str) {
        self.shared.lock().world.remove_secret(env, path, key);
    }

    /// Makes folder `env:path` import `from_env:from_path`, after its existing imports.
    pub fn add_import(&self, env: &str, path: &str, from_env: &str, from_path: &str) {
        self.shared
            .lock()
            .world
            .add_import(env, path, from_env, from_path);
    }

    /// Creates an access token for an identity, the way Token Auth does (the identity's TTLs
    /// apply). Does not count as a login.
    ///
    /// # Panics
    /// When the world has no such identity.
    pub fn issue_token(&self, identity_id: &str) -> String {
        let mut st = self.shared.lock();
        let (ttl, max_ttl) = match st.world.identity(identity_id) {
            Some(i) => (i.ttl, i.max_ttl),
            None => panic!("fake-infisical: issue_token: no identity '{identity_id}' in the world"),
        };
        st.tokens.issue(identity_id, None, ttl, max_ttl)
    }

    /// Changes an identity's access-token TTL and max TTL for tokens issued from now on.
    ///
    /// # Panics
    /// When the world has no such identity.
    pub fn set_identity_ttl(&self, identity_id: &str, ttl: u64, max_ttl: u64) {
        let mut st = self.shared.lock();
        if st.world.identity(identity_id).is_none() {
            panic!("fake-infisical: set_identity_ttl: no identity '{identity_id}' in the world");
        }
        let identity = st.world.identity_mut(identity_id);
        identity.ttl = ttl;
        identity.max_ttl = max_ttl;
    }

    /// Rotates the client secret of a Universal Auth identity: from now on only `client_secret`
    /// logs in (tokens already issued stay valid).
    pub fn set_client_secret(&self, identity_id: &str, client_secret: &str) {
        let mut st = self.shared.lock();
        match st
            .world
            .identities
            .iter_mut()
            .find(|i| i.id == identity_id)
            .and_then(|i| i.ua.as_mut())
        {
            Some(ua) => ua.client_secret = client_secret.into(),
            None => panic!(
                "fake-infisical: set_client_secret: no Universal Auth identity '{identity_id}'"
            ),
        }
    }

    /// Deletes every access token of an identity (later use answers 401 "No identity access
    /// token found"). Returns how many there were.
    pub fn revoke_tokens(&self, identity_id: &str) -> usize {
        let mut st = self.shared.lock();
        let before = st.tokens.rows.len();
        st.tokens
            .rows
            .retain(|_, row| row.identity_id != identity_id);
        before - st.tokens.rows.len()
    }

    /// Lets the fake TokenReview accept `jwt` as service account `namespace/service_account`.
    pub fn add_kubernetes_jwt(&self, jwt: &str, namespace: &str, service_account: &str) {
        self.shared.lock().world.service_accounts.insert(
            jwt.into(),
            world::ServiceAccount {
                namespace: namespace.into(),
                name: service_account.into(),
            },
        );
    }

    /// Makes the fake TokenReview reject `jwt`.
    pub fn remove_kubernetes_jwt(&self, jwt: &str) {
        self.shared.lock().world.service_accounts.remove(jwt);
    }

    // ----- faults and modes -----

    /// Queues a fault; each request consumes the first queued fault matching its route.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes all queued faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// While down, every connection (new or open) is closed at once without an answer, so
    /// clients see connection errors. Such requests are not recorded.
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    /// Serves `/api/v4/secrets[/{name}]` and `/api/v1/projects/slug/{slug}` (on), or answers
    /// them with the route-not-found 404 like the recorded server (off).
    pub fn set_v4(&self, enabled: bool) {
        self.shared.lock().world.v4 = enabled;
    }

    /// Answers like another server release from now on.
    pub fn set_release(&self, release: Release) {
        self.shared.lock().world.release = release;
    }

    /// Off: `If-None-Match` is ignored and never answered with 304 (like an expired ETag cache).
    pub fn set_etag_enabled(&self, enabled: bool) {
        self.shared.lock().etag_enabled = enabled;
    }

    /// Enforces a limit of `per_window` requests per window (60 s unless changed with
    /// [`FakeInfisical::set_rate_limit_window`]) on a route, answering 429 beyond it;
    /// [`Route::Any`] sets it for every route without its own limit. 0 removes the limit.
    /// Without a limit the usual `x-ratelimit-*` headers are still sent.
    pub fn set_rate_limit(&self, route: Route, per_window: u32) {
        let mut st = self.shared.lock();
        if per_window == 0 {
            st.limits.limits.remove(&route);
        } else {
            st.limits.limits.insert(route, per_window);
        }
    }

    /// Length of the rate-limit window (default 60 s).
    pub fn set_rate_limit_window(&self, window: Duration) {
        self.shared.lock().limits.window = window;
    }

    /// See [`World::oidc_rejects_list_audience`]; applies from the next login on.
    pub fn set_oidc_rejects_list_audience(&self, rejects: bool) {
        self.shared.lock().world.rejects_list_audience = rejects;
    }

    /// Universal Auth lockout settings from now on.
    pub fn set_lockout(&self, policy: LockoutPolicy) {
        self.shared.lock().world.lockout = policy;
    }

    // ----- observation -----

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests reached `route` (faulted ones included); [`Route::Any`] counts all.
    pub fn count(&self, route: Route) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| route == Route::Any || r.route == route)
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Successful logins (every method).
    pub fn logins(&self) -> usize {
        self.shared.lock().logins
    }

    /// Successful token renewals.
    pub fn renewals(&self) -> usize {
        self.shared.lock().renewals
    }
}

impl Drop for FakeInfisical {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
