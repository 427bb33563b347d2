//! Endpoint behaviour: what each route answers, in the order the real server checks things.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::expand::expand;
use crate::faults::{Fault, FaultKind};
use crate::tokens::{JwtError, Tokens};
use crate::util::{iso8601, parse_pairs, path_within, percent_decode, to_json};
use crate::world::{Folder, ImportRec, Release, SecretRec, World};
use crate::{RecordedRequest, Route};

/// Content type of every JSON answer.
pub(crate) const JSON: &str = "application/json; charset=utf-8";
/// What `secretValue` holds when values are not to be shown.
const HIDDEN: &str = "<hidden-by-infisical>";

/// A request as read from the connection.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    /// Path and query exactly as sent.
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, treating an empty value as absent.
    fn q_nonempty(&self, name: &str) -> Option<&str> {
        self.q(name).filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str, default: bool) -> bool {
        match self.q(name) {
            Some("true") => true,
            Some("false") => false,
            _ => default,
        }
    }
}

/// An answer to send.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    /// Extra headers (rate limit, retry-after), written before content-type and etag.
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// JSON answers get an ETag and may become a 304.
    pub json: bool,
    /// Send half the body, then close the connection (a fault).
    pub truncated: bool,
}

impl Reply {
    pub fn json<T: Serialize>(status: u16, body: &T) -> Reply {
        Reply::raw_json(status, to_json(body))
    }

    pub fn raw_json(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: JSON,
            body: body.into_bytes(),
            json: true,
            truncated: false,
        }
    }
}

/// What to do with a request.
pub(crate) enum Outcome {
    Reply(Reply),
    Drop,
}

// ----- error bodies -----

#[derive(Serialize)]
#[serde(untagged)]
enum Message {
    Text(String),
    Issues(Vec<Issue>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Issue {
    Type(TypeIssue),
    Enum(EnumIssue),
}

/// zod `invalid_type`.
#[derive(Serialize)]
struct TypeIssue {
    code: &'static str,
    expected: &'static str,
    received: &'static str,
    path: Vec<String>,
    message: String,
}

/// zod `invalid_enum_value`.
#[derive(Serialize)]
struct EnumIssue {
    received: String,
    code: &'static str,
    options: Vec<&'static str>,
    path: Vec<String>,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status_code: u16,
    message: Message,
    error: &'a str,
}

/// `{"statusCode","message","error"}`.
pub(crate) fn error(status: u16, message: &str, error: &str) -> Reply {
    Reply::json(
        status,
        &ErrorBody {
            status_code: status,
            message: Message::Text(message.into()),
            error,
        },
    )
}

fn validation_error(status: u16, issues: Vec<Issue>) -> Reply {
    Reply::json(
        status,
        &ErrorBody {
            status_code: status,
            message: Message::Issues(issues),
            error: "ValidationFailure",
        },
    )
}

/// Fastify's own 404 for an unknown route (key order message, error, statusCode).
fn route_not_found(req: &Request) -> Reply {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct NotFound<'a> {
        message: String,
        error: &'a str,
        status_code: u16,
    }
    Reply::json(
        404,
        &NotFound {
            message: format!("Route {}:{} not found", req.method, req.url),
            error: "Not Found",
            status_code: 404,
        },
    )
}

pub(crate) fn internal_error() -> Reply {
    error(500, "Something went wrong", "InternalServerError")
}

pub(crate) fn unauthorized(message: &str) -> Reply {
    error(401, message, "UnauthorizedError")
}

pub(crate) fn jwt_error(e: JwtError) -> Reply {
    error(403, e.message(), "TokenError")
}

fn not_member(project_id: &str) -> Reply {
    error(
        403,
        "You are not allowed to access this resource",
        &format!("Identity is not a member of the specified project with ID '{project_id}'"),
    )
}

// ----- rate limiting -----

/// Per-route request counters in fixed windows (like `@fastify/rate-limit`).
pub(crate) struct RateLimits {
    pub window: Duration,
    pub limits: HashMap<Route, u32>,
    counters: HashMap<Route, (Instant, u32)>,
}

impl RateLimits {
    pub fn new() -> Self {
        Self {
            window: Duration::from_secs(60),
            limits: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// The limit the recorded server advertises for a route (not enforced unless configured).
    fn advertised(route: Route) -> u32 {
        match route {
            Route::ListSecrets | Route::GetSecret => 40,
            Route::ProjectBySlug => 60,
            _ => 200,
        }
    }

    /// Counts a request; gives the headers to add, or the 429 answer when over the limit.
    pub fn hit(&mut self, route: Route) -> Result<Vec<(String, String)>, Reply> {
        let configured = self
            .limits
            .get(&route)
            .or_else(|| self.limits.get(&Route::Any))
            .copied();
        let limit = configured.unwrap_or_else(|| Self::advertised(route));
        let now = Instant::now();
        let window = self.window;
        let counter = self.counters.entry(route).or_insert((now, 0));
        if now.duration_since(counter.0) >= window {
            *counter = (now, 0);
        }
        counter.1 += 1;
        let left = window.saturating_sub(now.duration_since(counter.0));
        let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let mut headers = vec![
            ("x-ratelimit-limit".to_string(), limit.to_string()),
            (
                "x-ratelimit-remaining".to_string(),
                limit.saturating_sub(counter.1).to_string(),
            ),
            ("x-ratelimit-reset".to_string(), reset.to_string()),
        ];
        if configured.is_some() && counter.1 > limit {
            headers.push(("retry-after".to_string(), reset.to_string()));
            let mut reply = rate_limit_error(&human_duration(window));
            reply.headers = headers;
            return Err(reply);
        }
        Ok(headers)
    }
}

fn rate_limit_error(after: &str) -> Reply {
    error(
        429,
        &format!("Rate limit exceeded. Please try again in {after}"),
        "RateLimitExceeded",
    )
}

/// `ms(…, { long: true })` as the rate limiter words its window: "1 minute", "30 seconds".
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis() as f64;
    let units = [
        (86_400_000.0, "day"),
        (3_600_000.0, "hour"),
        (60_000.0, "minute"),
        (1_000.0, "second"),
    ];
    for (size, name) in units {
        if ms >= size {
            let n = (ms / size).round();
            let plural = if ms >= size * 1.5 { "s" } else { "" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{ms} ms")
}

// ----- server state -----

/// Universal Auth lockout bookkeeping for one identity.
pub(crate) struct Lock {
    failures: u32,
    locked: bool,
    expires: Instant,
}

/// Everything the server knows and remembers.
pub(crate) struct State {
    pub world: World,
    pub tokens: Tokens,
    pub lockouts: HashMap<String, Lock>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub logins: usize,
    pub renewals: usize,
    pub etag_enabled: bool,
    pub limits: RateLimits,
}

impl State {
    pub fn new(world: World) -> Self {
        Self {
            world,
            tokens: Tokens::new(),
            lockouts: HashMap::new(),
            faults: Vec::new(),
            requests: Vec::new(),
            logins: 0,
            renewals: 0,
            etag_enabled: true,
            limits: RateLimits::new(),
        }
    }
}

/// Which route a request is for (`/api/v4/*` and the project-by-slug route only when v4 is on).
pub(crate) fn classify(method: &str, path: &str, v4: bool, v3: bool) -> Route {
    match (method, path) {
        ("GET", "/api/status") => Route::Status,
        ("POST", "/api/v1/auth/universal-auth/login") => Route::UniversalAuthLogin,
        ("POST", "/api/v1/auth/kubernetes-auth/login") => Route::KubernetesLogin,
        ("POST", "/api/v1/auth/oidc-auth/login") => Route::OidcLogin,
        ("POST", "/api/v1/auth/jwt-auth/login") => Route::JwtLogin,
        ("POST", "/api/v1/auth/aws-auth/login") => Route::AwsLogin,
        ("POST", "/api/v1/auth/gcp-auth/login") => Route::GcpLogin,
        ("POST", "/api/v1/auth/azure-auth/login") => Route::AzureLogin,
        ("POST", "/api/v1/auth/token/renew") => Route::Renew,
        ("POST", "/api/v1/auth/token/revoke") => Route::Revoke,
        ("GET", "/api/v3/secrets/raw") if v3 => Route::ListSecrets,
        ("GET", p) if v3 && single_segment(p, "/api/v3/secrets/raw/").is_some() => Route::GetSecret,
        ("GET", "/api/v4/secrets") if v4 => Route::ListSecrets,
        ("GET", p) if v4 && single_segment(p, "/api/v4/secrets/").is_some() => Route::GetSecret,
        ("GET", p) if v4 && single_segment(p, "/api/v1/projects/slug/").is_some() => {
            Route::ProjectBySlug
        }
        _ => Route::Other,
    }
}

fn single_segment<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// Answers a request that no fault intercepted.
pub(crate) fn handle(st: &mut State, req: &Request, route: Route) -> Reply {
    let reply = handle_route(st, req, route);
    if st.world.release >= Release::R2025 {
        validation_as_422(reply)
    } else {
        reply
    }
}

/// From 2025, zod validation failures are 422 instead of the recorded 401.
fn validation_as_422(mut reply: Reply) -> Reply {
    if reply.status != 401 {
        return reply;
    }
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
        return reply;
    };
    if body["error"] != "ValidationFailure" {
        return reply;
    }
    body["statusCode"] = 422.into();
    reply.status = 422;
    reply.body = body.to_string().into_bytes();
    reply
}

fn handle_route(st: &mut State, req: &Request, route: Route) -> Reply {
    match route {
        Route::Status => status(),
        Route::UniversalAuthLogin => ua_login(st, req),
        Route::KubernetesLogin => k8s_login(st, req),
        Route::Renew => renew(st, req),
        Route::Revoke => revoke(st, req),
        Route::ListSecrets if req.path.starts_with("/api/v4/") => list_v4(st, req),
        Route::ListSecrets => list_v3(st, req),
        Route::GetSecret if req.path.starts_with("/api/v4/") => get_v4(st, req),
        Route::GetSecret => get_v3(st, req),
        Route::ProjectBySlug => project_by_slug(st, req),
        // These verify credentials with outgoing requests: `logins::handle` answers them.
        Route::OidcLogin
        | Route::JwtLogin
        | Route::AwsLogin
        | Route::GcpLogin
        | Route::AzureLogin => internal_error(),
        Route::Other | Route::Any => route_not_found(req),
    }
}

/// The answer an injected fault gives (`None` for faults that do not answer by themselves).
pub(crate) fn fault_reply(kind: &FaultKind) -> Option<Reply> {
    Some(match kind {
        FaultKind::Status(code) => canned_status(*code),
        FaultKind::Body(code, body) => {
            let is_json = serde_json::from_str::<Value>(body).is_ok();
            Reply {
                status: *code,
                headers: Vec::new(),
                content_type: if is_json {
                    JSON
                } else {
                    "text/plain; charset=utf-8"
                },
                body: body.clone().into_bytes(),
                json: is_json,
                truncated: false,
            }
        }
        FaultKind::RateLimited(retry_after) => {
            let mut reply = match retry_after {
                Some(n) => rate_limit_error(&format!("{n} seconds")),
                None => rate_limit_error("1 minute"),
            };
            let reset = retry_after.unwrap_or(60).to_string();
            reply.headers = vec![
                ("x-ratelimit-limit".into(), "40".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), reset.clone()),
            ];
            if retry_after.is_some() {
                reply.headers.push(("retry-after".into(), reset));
            }
            reply
        }
        FaultKind::TokenExpired => jwt_error(JwtError::Expired),
        FaultKind::MalformedJson => Reply::raw_json(
            200,
            r#"{"secrets":[{"id":"013014f3-7b56-449f-bf4b-d7cacd9cc6f6","secretKey":"DB_HOST","secretValue":"db.int"#
                .to_string(),
        ),
        FaultKind::Delay(_) | FaultKind::DropConnection | FaultKind::TruncatedBody => return None,
    })
}

fn canned_status(code: u16) -> Reply {
    let proxy_page = |reason: &str| {
        Reply {
        status: code,
        headers: Vec::new(),
        content_type: "text/html",
        body: format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes(),
        json: false,
        truncated: false,
    }
    };
    match code {
        400 => error(400, "Bad request", "BadRequest"),
        401 => unauthorized("Unauthorized"),
        403 => error(
            403,
            "You are not allowed to access this resource",
            "PermissionDenied",
        ),
        404 => error(404, "Not found", "NotFound"),
        422 => validation_error(
            422,
            vec![Issue::Type(TypeIssue {
                code: "invalid_type",
                expected: "string",
                received: "undefined",
                path: vec!["environment".into()],
                message: "Required".into(),
            })],
        ),
        429 => rate_limit_error("1 minute"),
        500 => internal_error(),
        502 => proxy_page("Bad Gateway"),
        503 => proxy_page("Service Temporarily Unavailable"),
        504 => error(504, "Gateway Timeout", "GatewayTimeout"),
        other => {
            let reason = hyper::StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            error(other, reason, &reason.replace(' ', ""))
        }
    }
}

// ----- plain routes -----

fn status() -> Reply {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        date: String,
        message: &'static str,
        email_configured: bool,
        invite_only_signup: bool,
        redis_configured: bool,
        secret_scanning_configured: bool,
    }
    Reply::json(
        200,
        &Status {
            date: iso8601(SystemTime::now()),
            message: "Ok",
            email_configured: true,
            invite_only_signup: true,
            redis_configured: true,
            secret_scanning_configured: false,
        },
    )
}

/// Runs `f` after counting the request against the route's rate limit, adding the headers.
fn limited(st: &mut State, route: Route, f: impl FnOnce(&mut State) -> Reply) -> Reply {
    match st.limits.hit(route) {
        Err(reply) => reply,
        Ok(headers) => {
            let mut reply = f(st);
            let mut all = headers;
            all.append(&mut reply.headers);
            reply.headers = all;
            reply
        }
    }
}

// ----- request bodies -----

/// The body as JSON (or a form turned into an object of strings). Undecodable JSON is the
/// server's 500; no body at all is `null` (zod's "undefined").
pub(crate) fn parse_body(req: &Request) -> Result<Value, Reply> {
    let ct = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(&req.body);
        let map = parse_pairs(&text)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        return Ok(Value::Object(map));
    }
    if req.body.is_empty() && ct.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&req.body).map_err(|_| internal_error())
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// Reads required string fields, trimmed, or answers 401 `ValidationFailure` like zod.
pub(crate) fn required_strings(body: &Value, names: &[&str]) -> Result<Vec<String>, Reply> {
    let Some(obj) = body.as_object() else {
        let received = if body.is_null() {
            "undefined"
        } else {
            type_name(Some(body))
        };
        return Err(validation_error(
            401,
            vec![Issue::Type(TypeIssue {
                code: "invalid_type",
                expected: "object",
                received,
                path: Vec::new(),
                message: if received == "undefined" {
                    "Required".into()
                } else {
                    format!("Expected object, received {received}")
                },
            })],
        ));
    };
    let mut issues = Vec::new();
    let mut values = Vec::new();
    for name in names {
        match obj.get(*name) {
            Some(Value::String(s)) => values.push(s.trim().to_string()),
            other => {
                let received = type_name(other);
                issues.push(Issue::Type(TypeIssue {
                    code: "invalid_type",
                    expected: "string",
                    received,
                    path: vec![name.to_string()],
                    message: if received == "undefined" {
                        "Required".into()
                    } else {
                        format!("Expected string, received {received}")
                    },
                }));
            }
        }
    }
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(validation_error(401, issues))
    }
}

/// zod enum checks on query parameters.
fn enum_issues(req: &Request, checks: &[(&str, &[&'static str])]) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (name, options) in checks {
        if let Some(v) = req.q(name) {
            if !options.contains(&v) {
                let expected = options
                    .iter()
                    .map(|o| format!("'{o}'"))
                    .collect::<Vec<_>>()
                    .join(" | ");
                issues.push(Issue::Enum(EnumIssue {
                    received: v.to_string(),
                    code: "invalid_enum_value",
                    options: options.to_vec(),
                    path: vec![name.to_string()],
                    message: format!("Invalid enum value. Expected {expected}, received '{v}'"),
                }));
            }
        }
    }
    issues
}

const BOOL: &[&str] = &["true", "false"];

// ----- auth routes -----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenOut<'a> {
    access_token: &'a str,
    expires_in: u64,
    #[serde(rename = "accessTokenMaxTTL")]
    access_token_max_ttl: u64,
    token_type: &'static str,
}

pub(crate) fn token_reply(token: &str, ttl: u64, max_ttl: u64) -> Reply {
    Reply::json(
        200,
        &TokenOut {
            access_token: token,
            expires_in: ttl,
            access_token_max_ttl: max_ttl,
            token_type: "Bearer",
        },
    )
}

fn ua_login(st: &mut State, req: &Request) -> Reply {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    limited(st, Route::UniversalAuthLogin, |st| {
        let fields = match required_strings(&body, &["clientId", "clientSecret"]) {
            Ok(f) => f,
            Err(reply) => return reply,
        };
        let (client_id, client_secret) = (&fields[0], &fields[1]);
        let Some(identity) = st
            .world
            .identities
            .iter()
            .find(|i| i.ua.as_ref().is_some_and(|ua| &ua.client_id == client_id))
            .cloned()
        else {
            return error(
                404,
                "No identity with specified client ID was found",
                "NotFound",
            );
        };
        let Some(ua) = identity.ua.as_ref() else {
            return internal_error();
        };
        let policy = st.world.lockout;
        let now = Instant::now();
        if policy.threshold > 0 {
            if let Some(lock) = st.lockouts.get(&identity.id) {
                if lock.expires <= now {
                    st.lockouts.remove(&identity.id);
                } else if lock.locked {
                    return unauthorized(
                        "This identity auth method is temporarily locked, please try again later",
                    );
                }
            }
        }
        if &ua.client_secret != client_secret {
            if policy.threshold > 0 {
                let lock = st.lockouts.entry(identity.id.clone()).or_insert(Lock {
                    failures: 0,
                    locked: false,
                    expires: now,
                });
                lock.failures += 1;
                if lock.failures >= policy.threshold {
                    lock.locked = true;
                    lock.expires = now + policy.duration;
                } else {
                    lock.expires = now + policy.window;
                }
            }
            return unauthorized("Invalid credentials");
        }
        st.lockouts.remove(&identity.id);
        let token = st.tokens.issue(
            &identity.id,
            Some(&ua.client_secret_id),
            identity.ttl,
            identity.max_ttl,
        );
        st.logins += 1;
        token_reply(&token, identity.ttl, identity.max_ttl)
    })
}

fn k8s_login(st: &mut State, req: &Request) -> Reply {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    limited(st, Route::KubernetesLogin, |st| {
        let fields = match required_strings(&body, &["identityId", "jwt"]) {
            Ok(f) => f,
            Err(reply) => return reply,
        };
        let (identity_id, jwt) = (&fields[0], &fields[1]);
        let Some((identity, allowed)) = st
            .world
            .identity(identity_id)
            .and_then(|i| i.k8s.clone().map(|k| (i.clone(), k)))
        else {
            return error(
                404,
                "Kubernetes auth method not found for identity, did you configure Kubernetes auth?",
                "NotFound",
            );
        };
        let Some(account) = st.world.service_accounts.get(jwt) else {
            return error(
                401,
                "[invalid bearer token, token lookup failed]",
                "KubernetesTokenReviewError",
            );
        };
        if !allowed.is_empty() && !allowed.iter().any(|ns| ns == &account.namespace) {
            return unauthorized("Access denied: K8s namespace not allowed.");
        }
        let token = st
            .tokens
            .issue(&identity.id, None, identity.ttl, identity.max_ttl);
        st.logins += 1;
        token_reply(&token, identity.ttl, identity.max_ttl)
    })
}

fn renew(st: &mut State, req: &Request) -> Reply {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    limited(st, Route::Renew, |st| {
        let token = match required_strings(&body, &["accessToken"]) {
            Ok(mut f) => f.remove(0),
            Err(reply) => return reply,
        };
        let verified = match st.tokens.verify(&token) {
            Ok(v) => v,
            Err(e) => return jwt_error(e),
        };
        let Some(row) = st.tokens.rows.get(&verified.token_id).cloned() else {
            return unauthorized("No identity access token found");
        };
        let now = SystemTime::now();
        if row.ttl_expired(now) {
            st.tokens.rows.remove(&verified.token_id);
            return unauthorized("Failed to renew MI access token due to TTL expiration");
        }
        if row.max_ttl > 0 {
            let max_at = row.created + Duration::from_secs(row.max_ttl);
            if now > max_at {
                st.tokens.rows.remove(&verified.token_id);
                return unauthorized("Failed to renew MI access token due to Max TTL expiration");
            }
            if now + Duration::from_secs(row.ttl) > max_at {
                st.tokens.rows.remove(&verified.token_id);
                return unauthorized("Failed to renew MI access token past its Max TTL expiration");
            }
        }
        if let Some(r) = st.tokens.rows.get_mut(&verified.token_id) {
            r.last_renewed = Some(now);
        }
        st.renewals += 1;
        token_reply(&token, row.ttl, row.max_ttl)
    })
}

fn revoke(st: &mut State, req: &Request) -> Reply {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    limited(st, Route::Revoke, |st| {
        let token = match required_strings(&body, &["accessToken"]) {
            Ok(mut f) => f.remove(0),
            Err(reply) => return reply,
        };
        let verified = match st.tokens.verify(&token) {
            Ok(v) => v,
            Err(e) => return jwt_error(e),
        };
        if st.tokens.rows.remove(&verified.token_id).is_none() {
            return unauthorized("Unauthorized");
        }
        #[derive(Serialize)]
        struct Revoked {
            message: &'static str,
        }
        Reply::json(
            200,
            &Revoked {
                message: "Successfully revoked access token",
            },
        )
    })
}

/// The identity behind the request's bearer token, checked like the server's auth hook
/// (these failures carry no rate-limit headers).
fn authenticate(st: &mut State, req: &Request) -> Result<String, Reply> {
    let Some(header) = req.header("authorization") else {
        return Err(unauthorized("Token missing"));
    };
    let token: String = header.chars().skip(7).collect();
    let verified = st.tokens.verify(token.trim()).map_err(jwt_error)?;
    let Some(row) = st.tokens.rows.get(&verified.token_id).cloned() else {
        return Err(unauthorized("No identity access token found"));
    };
    let now = SystemTime::now();
    if row.ttl_expired(now) {
        st.tokens.rows.remove(&verified.token_id);
        return Err(unauthorized(
            "Failed to renew MI access token due to TTL expiration",
        ));
    }
    if row.max_ttl_expired(now) {
        st.tokens.rows.remove(&verified.token_id);
        return Err(unauthorized(
            "Failed to renew MI access token due to Max TTL expiration",
        ));
    }
    let Some(identity) = st.world.identity(&row.identity_id) else {
        return Err(unauthorized("No identity access token found"));
    };
    let limit = identity.token_uses;
    if limit > 0 {
        if row.uses >= limit {
            st.tokens.rows.remove(&verified.token_id);
            return Err(if st.world.release == Release::R2024 {
                error(
                    400,
                    "Unable to renew MI access token due to number of uses limit reached",
                    "BadRequest",
                )
            } else {
                unauthorized("Access token reached its number of uses limit")
            });
        }
        if let Some(used) = st.tokens.rows.get_mut(&verified.token_id) {
            used.uses += 1;
        }
    }
    Ok(row.identity_id)
}

/// Authenticated, rate-limited route: auth first (no rate-limit headers on failure).
fn authed(
    st: &mut State,
    req: &Request,
    route: Route,
    f: impl FnOnce(&mut State, String) -> Reply,
) -> Reply {
    match authenticate(st, req) {
        Err(reply) => reply,
        Ok(identity) => limited(st, route, |st| f(st, identity)),
    }
}

fn is_member(world: &World, identity_id: &str) -> bool {
    world.identity(identity_id).is_some_and(|i| i.member)
}

fn bot_lookup_not_found(id: &str) -> Reply {
    error(
        404,
        &format!("Project with ID '{id}' not found during bot lookup. Are you sure you are using the correct project ID?"),
        "NotFound",
    )
}

/// 404 `SecretPathNotFound`, as v4 (and, from 2026, v3) answers an unknown folder.
fn folder_not_found(env: &str, path: &str) -> Reply {
    error(
        404,
        &format!("Folder with path '{path}' in environment '{env}' was not found. Please ensure the environment slug and secret path is correct."),
        "SecretPathNotFound",
    )
}

/// For an identity that may list but not read values: 403 when values are asked for (Node
/// servers before 2026), or `Ok(true)`: answer with masked values (2026).
fn value_permission(st: &State, req: &Request, identity: &str) -> Result<bool, Reply> {
    let reads = st.world.identity(identity).is_none_or(|i| i.reads_values);
    if reads {
        return Ok(false);
    }
    if st.world.release < Release::R2026 && req.flag("viewSecretValue", true) {
        return Err(error(
            403,
            "You are not allowed to readValue on secrets",
            "PermissionDenied",
        ));
    }
    Ok(true)
}

// ----- secret rendering -----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TagOut {
    id: String,
    slug: String,
    color: Option<String>,
    name: String,
}

/// A secret as `/secrets/raw` lists it (and, without `secretPath`, as the single-secret route
/// returns it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretOut {
    id: String,
    #[serde(rename = "_id")]
    underscore_id: String,
    workspace: String,
    environment: String,
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    secret_key: String,
    secret_value: String,
    secret_comment: String,
    secret_reminder_note: (),
    secret_reminder_repeat_days: (),
    skip_multiline_encoding: bool,
    metadata: (),
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<TagOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_value_hidden: Option<bool>,
}

/// A secret inside an `imports[]` entry (fewer fields, empty `workspace`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportedSecretOut {
    id: String,
    #[serde(rename = "_id")]
    underscore_id: String,
    workspace: String,
    environment: String,
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    secret_key: String,
    secret_value: String,
    secret_comment: String,
    skip_multiline_encoding: bool,
    metadata: (),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportOut {
    secret_path: String,
    environment: String,
    folder_id: String,
    secrets: Vec<ImportedSecretOut>,
}

#[derive(Serialize)]
struct ListOut {
    secrets: Vec<SecretOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    imports: Option<Vec<ImportOut>>,
}

#[derive(Serialize)]
struct SingleOut {
    secret: SecretOut,
}

/// How a listing is to be rendered.
struct Render {
    expand: bool,
    view: bool,
    /// The identity may list but not read values: masked, flagged `secretValueHidden` (2026).
    masked: bool,
}

impl Render {
    fn value(&self, world: &World, env: &str, path: &str, s: &SecretRec) -> String {
        if !self.view || self.masked {
            HIDDEN.to_string()
        } else if self.expand {
            expand(world, env, path, &s.value)
        } else {
            s.value.clone()
        }
    }
}

fn secret_out(
    world: &World,
    env: &str,
    path: &str,
    s: &SecretRec,
    render: &Render,
    with_path: bool,
    with_tags: bool,
) -> SecretOut {
    SecretOut {
        id: s.id.clone(),
        underscore_id: s.id.clone(),
        workspace: world.project_id.clone(),
        environment: env.to_string(),
        version: s.version,
        kind: "shared",
        secret_key: s.key.clone(),
        secret_value: render.value(world, env, path, s),
        secret_comment: s.comment.clone(),
        secret_reminder_note: (),
        secret_reminder_repeat_days: (),
        skip_multiline_encoding: false,
        metadata: (),
        created_at: s.created_at.clone(),
        updated_at: s.updated_at.clone(),
        secret_path: with_path.then(|| path.to_string()),
        secret_value_hidden: render.masked.then_some(true),
        tags: with_tags.then(|| {
            s.tag_ids
                .iter()
                .filter_map(|id| world.tag(id))
                .map(|t| TagOut {
                    id: t.id.clone(),
                    slug: t.slug.clone(),
                    color: t.color.clone(),
                    name: t.slug.clone(),
                })
                .collect()
        }),
    }
}

fn sorted_by_id(secrets: &[SecretRec]) -> Vec<&SecretRec> {
    let mut v: Vec<&SecretRec> = secrets.iter().collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// The folders an import brings in: the imported folder, then (depth-first, up to depth 10,
/// each once) the folders it imports itself.
fn import_sources<'w>(world: &'w World, imp: &ImportRec) -> Vec<(String, String, &'w Folder)> {
    fn nested<'w>(
        world: &'w World,
        folder: &'w Folder,
        depth: usize,
        out: &mut Vec<(String, String, &'w Folder)>,
    ) {
        if depth >= 10 {
            return;
        }
        for imp in &folder.imports {
            if out.iter().any(|(e, p, _)| e == &imp.env && p == &imp.path) {
                continue;
            }
            if let Some(f) = world.folder(&imp.env, &imp.path) {
                out.push((imp.env.clone(), imp.path.clone(), f));
                nested(world, f, depth + 1, out);
            }
        }
    }
    let Some(folder) = world.folder(&imp.env, &imp.path) else {
        return Vec::new();
    };
    let mut out = vec![(imp.env.clone(), imp.path.clone(), folder)];
    nested(world, folder, 1, &mut out);
    out
}

fn import_entry(world: &World, imp: &ImportRec, render: &Render) -> Option<ImportOut> {
    let sources = import_sources(world, imp);
    let folder_id = sources.first()?.2.id.clone();
    let mut secrets: Vec<ImportedSecretOut> = Vec::new();
    for (env, path, folder) in &sources {
        for s in sorted_by_id(&folder.secrets) {
            if render.expand && secrets.iter().any(|o| o.secret_key == s.key) {
                continue;
            }
            secrets.push(ImportedSecretOut {
                id: s.id.clone(),
                underscore_id: s.id.clone(),
                workspace: String::new(),
                environment: env.clone(),
                version: s.version,
                kind: "shared",
                secret_key: s.key.clone(),
                secret_value: render.value(world, env, path, s),
                secret_comment: s.comment.clone(),
                skip_multiline_encoding: false,
                metadata: (),
            });
        }
    }
    Some(ImportOut {
        secret_path: imp.path.clone(),
        environment: imp.env.clone(),
        folder_id,
        secrets,
    })
}

/// Query options of a listing.
struct ListQuery {
    env: String,
    path: String,
    recursive: bool,
    imports: bool,
    tags: Option<Vec<String>>,
    render: Render,
}

fn build_list(world: &World, q: &ListQuery) -> ListOut {
    let folders: Vec<(&String, &Folder)> = world
        .folders
        .iter()
        .filter(|((env, path), _)| {
            env == &q.env
                && if q.recursive {
                    path_within(path, &q.path)
                } else {
                    path == &q.path
                }
        })
        .map(|((_, path), f)| (path, f))
        .collect();
    let mut secrets: Vec<(&String, &SecretRec)> = folders
        .iter()
        .flat_map(|(path, f)| f.secrets.iter().map(move |s| (*path, s)))
        .filter(|(_, s)| match &q.tags {
            None => true,
            Some(slugs) => s
                .tag_ids
                .iter()
                .filter_map(|id| world.tag(id))
                .any(|t| slugs.contains(&t.slug)),
        })
        .collect();
    secrets.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let secrets = secrets
        .into_iter()
        .map(|(path, s)| secret_out(world, &q.env, path, s, &q.render, true, true))
        .collect();
    let imports = q.imports.then(|| {
        folders
            .iter()
            .flat_map(|(_, f)| f.imports.iter())
            .filter_map(|imp| import_entry(world, imp, &q.render))
            .collect()
    });
    ListOut { secrets, imports }
}

fn empty_list() -> Reply {
    Reply::json(
        200,
        &ListOut {
            secrets: Vec::new(),
            imports: Some(Vec::new()),
        },
    )
}

fn tag_filter(req: &Request) -> Option<Vec<String>> {
    let raw = req.q_nonempty("tagSlugs")?;
    let slugs: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!slugs.is_empty()).then_some(slugs)
}

fn secret_path(req: &Request) -> String {
    crate::util::normalize_path(req.q("secretPath").unwrap_or("/"))
}

/// v3 project addressing: `workspaceId`, else `workspaceSlug` (an unknown slug is a 500).
fn v3_project(world: &World, req: &Request) -> Result<Option<String>, Reply> {
    if let Some(id) = req.q_nonempty("workspaceId") {
        return Ok(Some(id.to_string()));
    }
    match req.q_nonempty("workspaceSlug") {
        Some(slug) if slug == world.project_slug => Ok(Some(world.project_id.clone())),
        Some(_) => Err(error(
            500,
            "Something went wrong",
            "Failed to find project by slug",
        )),
        None => Ok(None),
    }
}

/// Project, environment and membership checks shared by the v3 routes.
fn v3_scope(st: &State, req: &Request, identity: &str) -> Result<(String, String), Reply> {
    let project = v3_project(&st.world, req)?;
    let (Some(project), Some(env)) = (project, req.q_nonempty("environment")) else {
        return Err(error(
            400,
            "Missing workspace id or environment",
            "BadRequest",
        ));
    };
    if project != st.world.project_id {
        return Err(bot_lookup_not_found(&project));
    }
    if !is_member(&st.world, identity) {
        return Err(not_member(&project));
    }
    Ok((project, env.to_string()))
}

fn list_v3(st: &mut State, req: &Request) -> Reply {
    authed(st, req, Route::ListSecrets, |st, identity| {
        let issues = enum_issues(
            req,
            &[
                ("viewSecretValue", BOOL),
                ("expandSecretReferences", BOOL),
                ("recursive", BOOL),
                ("include_imports", BOOL),
            ],
        );
        if !issues.is_empty() {
            return validation_error(401, issues);
        }
        let (_, env) = match v3_scope(st, req, &identity) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let path = secret_path(req);
        if !st.world.has_env(&env) || st.world.folder(&env, &path).is_none() {
            if st.world.release >= Release::R2026 {
                return folder_not_found(&env, &path);
            }
            return empty_list();
        }
        let masked = match value_permission(st, req, &identity) {
            Ok(masked) => masked,
            Err(reply) => return reply,
        };
        let q = ListQuery {
            env,
            path,
            recursive: req.flag("recursive", false),
            imports: req.flag("include_imports", false),
            tags: tag_filter(req),
            render: Render {
                expand: req.flag("expandSecretReferences", false),
                view: req.flag("viewSecretValue", true),
                masked,
            },
        };
        Reply::json(200, &build_list(&st.world, &q))
    })
}

/// Finds one secret: locally, else (with imports) in the imports from the last to the first.
fn find_single(
    world: &World,
    env: &str,
    path: &str,
    key: &str,
    with_imports: bool,
    render: &Render,
) -> Option<SecretOut> {
    let folder = world.folder(env, path)?;
    if let Some(s) = folder.secrets.iter().find(|s| s.key == key) {
        return Some(secret_out(world, env, path, s, render, false, true));
    }
    if !with_imports {
        return None;
    }
    for imp in folder.imports.iter().rev() {
        for (ienv, ipath, f) in import_sources(world, imp) {
            if let Some(s) = f.secrets.iter().find(|s| s.key == key) {
                return Some(secret_out(world, &ienv, &ipath, s, render, false, false));
            }
        }
    }
    None
}

fn secret_name(req: &Request) -> String {
    let raw = req.path.rsplit('/').next().unwrap_or("");
    percent_decode(raw, false)
}

fn get_v3(st: &mut State, req: &Request) -> Reply {
    authed(st, req, Route::GetSecret, |st, identity| {
        let issues = enum_issues(
            req,
            &[
                ("viewSecretValue", BOOL),
                ("expandSecretReferences", BOOL),
                ("include_imports", BOOL),
                ("type", &["shared", "personal"]),
            ],
        );
        if !issues.is_empty() {
            return validation_error(401, issues);
        }
        let (_, env) = match v3_scope(st, req, &identity) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let path = secret_path(req);
        let name = secret_name(req);
        if st.world.folder(&env, &path).is_none() {
            return error(
                404,
                &format!("Folder with path '{path}' in environment with slug '{env}' not found"),
                "NotFound",
            );
        }
        let render = Render {
            expand: req.flag("expandSecretReferences", false),
            view: req.flag("viewSecretValue", true),
            masked: false,
        };
        let personal = req.q("type") == Some("personal");
        let with_imports = req.flag("include_imports", false);
        match find_single(&st.world, &env, &path, &name, with_imports, &render) {
            Some(secret) if !personal => Reply::json(200, &SingleOut { secret }),
            _ => error(
                404,
                &format!("Secret with name '{name}' not found"),
                "NotFound",
            ),
        }
    })
}

// ----- v4 -----

/// Project, environment, folder and membership checks of the v4 routes.
fn v4_scope(st: &State, req: &Request, identity: &str) -> Result<(String, String), Reply> {
    let (Some(project), Some(env)) = (req.q_nonempty("projectId"), req.q_nonempty("environment"))
    else {
        return Err(error(
            400,
            "Missing project id or environment",
            "BadRequest",
        ));
    };
    if project != st.world.project_id {
        return Err(bot_lookup_not_found(project));
    }
    if !is_member(&st.world, identity) {
        return Err(not_member(project));
    }
    if !st.world.has_env(env) {
        return Err(error(
            404,
            &format!("Environment with slug '{env}' in project with ID '{project}' not found"),
            "NotFound",
        ));
    }
    let path = secret_path(req);
    if st.world.folder(env, &path).is_none() {
        return Err(folder_not_found(env, &path));
    }
    Ok((env.to_string(), path))
}

const V4_BOOLS: [(&str, &[&str]); 6] = [
    ("viewSecretValue", BOOL),
    ("expandSecretReferences", BOOL),
    ("recursive", BOOL),
    ("include_imports", BOOL),
    ("includeImports", BOOL),
    ("includePersonalOverrides", BOOL),
];

/// v4 reads `includeImports`, falling back to the older `include_imports`; default on.
fn v4_imports(req: &Request) -> bool {
    match req.q("includeImports") {
        Some(_) => req.flag("includeImports", true),
        None => req.flag("include_imports", true),
    }
}

fn list_v4(st: &mut State, req: &Request) -> Reply {
    authed(st, req, Route::ListSecrets, |st, identity| {
        let issues = enum_issues(req, &V4_BOOLS);
        if !issues.is_empty() {
            return validation_error(422, issues);
        }
        let (env, path) = match v4_scope(st, req, &identity) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let masked = match value_permission(st, req, &identity) {
            Ok(masked) => masked,
            Err(reply) => return reply,
        };
        let q = ListQuery {
            env,
            path,
            recursive: req.flag("recursive", false),
            imports: v4_imports(req),
            tags: tag_filter(req),
            render: Render {
                expand: req.flag("expandSecretReferences", true),
                view: req.flag("viewSecretValue", true),
                masked,
            },
        };
        Reply::json(200, &build_list(&st.world, &q))
    })
}

fn get_v4(st: &mut State, req: &Request) -> Reply {
    authed(st, req, Route::GetSecret, |st, identity| {
        let mut checks = V4_BOOLS.to_vec();
        checks.push(("type", &["shared", "personal"]));
        let issues = enum_issues(req, &checks);
        if !issues.is_empty() {
            return validation_error(422, issues);
        }
        let (env, path) = match v4_scope(st, req, &identity) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let name = secret_name(req);
        let render = Render {
            expand: req.flag("expandSecretReferences", true),
            view: req.flag("viewSecretValue", true),
            masked: false,
        };
        let personal = req.q("type") == Some("personal");
        match find_single(&st.world, &env, &path, &name, v4_imports(req), &render) {
            Some(secret) if !personal => Reply::json(200, &SingleOut { secret }),
            _ => error(
                404,
                &format!("Secret with name '{name}' not found"),
                "NotFound",
            ),
        }
    })
}

fn project_by_slug(st: &mut State, req: &Request) -> Reply {
    authed(st, req, Route::ProjectBySlug, |st, identity| {
        let slug = secret_name(req);
        let w = &st.world;
        if slug != w.project_slug {
            return error(
                404,
                &format!("Project with slug '{slug}' not found"),
                "NotFound",
            );
        }
        if !is_member(w, &identity) {
            return not_member(&w.project_id);
        }
        #[derive(Serialize)]
        struct EnvOut<'a> {
            name: &'a str,
            slug: &'a str,
            id: &'a str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ProjectOut<'a> {
            id: &'a str,
            name: &'a str,
            slug: &'a str,
            description: (),
            auto_capitalization: bool,
            org_id: &'a str,
            created_at: &'a str,
            updated_at: &'a str,
            version: u32,
            upgrade_status: (),
            pit_version_limit: u32,
            kms_certificate_key_id: (),
            audit_logs_retention_days: (),
            #[serde(rename = "type")]
            kind: &'static str,
            environments: Vec<EnvOut<'a>>,
        }
        Reply::json(
            200,
            &ProjectOut {
                id: &w.project_id,
                name: &w.project_name,
                slug: &w.project_slug,
                description: (),
                auto_capitalization: false,
                org_id: &w.org_id,
                created_at: &w.created_at,
                updated_at: &w.created_at,
                version: 3,
                upgrade_status: (),
                pit_version_limit: 10,
                kms_certificate_key_id: (),
                audit_logs_retention_days: (),
                kind: "secret-manager",
                environments: w
                    .environments
                    .iter()
                    .map(|e| EnvOut {
                        name: &e.name,
                        slug: &e.slug,
                        id: &e.id,
                    })
                    .collect(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(30)), "30 seconds");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(120)), "2 minutes");
    }

    #[test]
    fn routes() {
        assert_eq!(
            classify("GET", "/api/v3/secrets/raw", false, true),
            Route::ListSecrets
        );
        assert_eq!(
            classify("GET", "/api/v3/secrets/raw/X", false, true),
            Route::GetSecret
        );
        assert_eq!(
            classify("GET", "/api/v4/secrets", false, true),
            Route::Other
        );
        assert_eq!(
            classify("GET", "/api/v4/secrets", true, true),
            Route::ListSecrets
        );
        assert_eq!(
            classify("GET", "/api/v1/projects/slug/x", true, true),
            Route::ProjectBySlug
        );
        assert_eq!(
            classify("GET", "/api/v1/auth/universal-auth/login", true, true),
            Route::Other
        );
    }
}
