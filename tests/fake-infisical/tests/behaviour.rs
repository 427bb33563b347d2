//! Behaviour the fixtures do not show directly: token lifetimes, lockout, faults, down mode,
//! ETags, v4, imports/references/tags, TLS and request recording.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Client, Resp};
use fake_infisical::{sample, FakeInfisical, Fault, LockoutPolicy, Route, World};
use serde_json::{json, Value};

const DEV_ROOT: &str =
    "/api/v3/secrets/raw?workspaceId=cb7fcb73-a6e6-490e-ae23-bc4878a67111&environment=dev&secretPath=%2F";

fn setup(world: World) -> (FakeInfisical, Client) {
    let fake = FakeInfisical::start(world);
    let client = Client::new(&fake.url());
    (fake, client)
}

fn ua_token(c: &Client) -> String {
    c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET)
}

fn keys_values(list: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["secretKey"].as_str().expect("key").to_string(),
                s["secretValue"].as_str().expect("value").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn error_of(r: &Resp) -> (u16, String, String) {
    let j = r.json();
    (
        r.status,
        j["message"].as_str().unwrap_or("").to_string(),
        j["error"].as_str().unwrap_or("").to_string(),
    )
}

// ----- tokens -----

#[test]
fn renewal_extends_the_ttl_and_expiry_deletes_the_token() {
    let world = World::sample().universal_auth_identity("id-short", "cid-short", "sec", 1, 10);
    let (fake, c) = setup(world);
    let token = c.login("cid-short", "sec");
    std::thread::sleep(Duration::from_millis(600));
    let r = c.renew(&token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accessToken"], token.as_str());
    assert_eq!(r.json()["expiresIn"], 1);
    assert_eq!(r.json()["accessTokenMaxTTL"], 10);
    std::thread::sleep(Duration::from_millis(700));
    // 1.3 s after login but 0.7 s after the renewal: still valid.
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let expired = c.get(DEV_ROOT, Some(&token));
    assert_eq!(
        error_of(&expired),
        (
            401,
            "Failed to renew MI access token due to TTL expiration".into(),
            "UnauthorizedError".into()
        )
    );
    assert!(expired.header("x-ratelimit-limit").is_none());
    let gone = c.get(DEV_ROOT, Some(&token));
    assert_eq!(error_of(&gone).1, "No identity access token found");
    assert_eq!(fake.renewals(), 1);
    assert_eq!(fake.logins(), 1);
}

#[test]
fn renewal_stops_one_ttl_before_the_max_ttl() {
    let world = World::sample().universal_auth_identity("id-r", "cid-r", "sec", 2, 3);
    let (fake, c) = setup(world);
    let token = c.login("cid-r", "sec");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(c.renew(&token).status, 200);
    std::thread::sleep(Duration::from_millis(800));
    let refused = c.renew(&token);
    assert_eq!(
        error_of(&refused),
        (
            401,
            "Failed to renew MI access token past its Max TTL expiration".into(),
            "UnauthorizedError".into()
        )
    );
    assert_eq!(
        error_of(&c.renew(&token)).1,
        "No identity access token found"
    );
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 401);
    assert_eq!(fake.renewals(), 1);
}

#[test]
fn zero_ttls_never_expire_and_the_jwt_has_no_exp() {
    use base64::Engine;
    let world = World::sample().universal_auth_identity("id-0", "cid-0", "sec", 0, 0);
    let (_fake, c) = setup(world);
    let login = c.post_json(
        "/api/v1/auth/universal-auth/login",
        r#"{"clientId":" cid-0 ","clientSecret":"sec\n"}"#,
    );
    assert_eq!(login.status, 200, "fields are trimmed: {}", login.body);
    assert_eq!(login.json()["expiresIn"], 0);
    assert_eq!(login.json()["accessTokenMaxTTL"], 0);
    let token = login.json()["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("claims");
    assert!(claims.get("exp").is_none(), "{claims}");
    let renewed = c.renew(&token);
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
}

#[test]
fn jwt_expiry_is_a_403_token_error_even_for_list_calls() {
    let world = World::sample().universal_auth_identity("id-m", "cid-m", "sec", 0, 1);
    let (_fake, c) = setup(world);
    let token = c.login("cid-m", "sec");
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!(
        r.body,
        r#"{"statusCode":403,"message":"Your token has expired. Please re-authenticate.","error":"TokenError"}"#
    );
}

#[test]
fn tokens_from_another_server_are_refused_and_revoke_tokens_works() {
    let (fake, c) = setup(World::sample());
    let other = FakeInfisical::start(World::sample());
    let foreign = Client::new(&other.url()).login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    assert_eq!(
        error_of(&c.get(DEV_ROOT, Some(&foreign))).1,
        "invalid signature"
    );
    let token = ua_token(&c);
    let token_auth = fake.issue_token(sample::TOKEN_IDENTITY_ID);
    assert_eq!(c.get(DEV_ROOT, Some(&token_auth)).status, 200);
    assert_eq!(fake.revoke_tokens(sample::UA_IDENTITY_ID), 1);
    assert_eq!(
        error_of(&c.get(DEV_ROOT, Some(&token))).1,
        "No identity access token found"
    );
    assert_eq!(c.get(DEV_ROOT, Some(&token_auth)).status, 200);
}

// ----- login -----

#[test]
fn universal_auth_lockout() {
    let (fake, c) = setup(World::sample());
    fake.set_lockout(LockoutPolicy {
        threshold: 3,
        window: Duration::from_millis(600),
        duration: Duration::from_millis(800),
    });
    let attempt = |secret: &str| {
        c.post_json(
            "/api/v1/auth/universal-auth/login",
            &json!({"clientId": sample::UA_CLIENT_ID, "clientSecret": secret}).to_string(),
        )
    };
    // Failures further apart than the window do not add up.
    assert_eq!(error_of(&attempt("wrong")).1, "Invalid credentials");
    assert_eq!(error_of(&attempt("wrong")).1, "Invalid credentials");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(error_of(&attempt("wrong")).1, "Invalid credentials");
    assert_eq!(attempt(sample::UA_CLIENT_SECRET).status, 200);
    // Three quick failures lock, even for the right secret.
    for _ in 0..3 {
        assert_eq!(error_of(&attempt("wrong")).1, "Invalid credentials");
    }
    let locked = attempt(sample::UA_CLIENT_SECRET);
    assert_eq!(
        error_of(&locked),
        (
            401,
            "This identity auth method is temporarily locked, please try again later".into(),
            "UnauthorizedError".into()
        )
    );
    // Other identities are not affected.
    assert!(!c
        .login(sample::RENEWABLE_CLIENT_ID, sample::RENEWABLE_CLIENT_SECRET)
        .is_empty());
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(attempt(sample::UA_CLIENT_SECRET).status, 200);
    assert_eq!(fake.logins(), 3);
}

#[test]
fn login_validation_details() {
    let (_fake, c) = setup(World::sample());
    let r = c.post_json(
        "/api/v1/auth/universal-auth/login",
        r#"{"clientId": 5, "clientSecret": "x"}"#,
    );
    assert_eq!(
        r.body,
        r#"{"statusCode":401,"message":[{"code":"invalid_type","expected":"string","received":"number","path":["clientId"],"message":"Expected string, received number"}],"error":"ValidationFailure"}"#
    );
    let k = c.post_json("/api/v1/auth/kubernetes-auth/login", "{}");
    assert_eq!(k.status, 401);
    assert_eq!(k.json()["error"], "ValidationFailure");
    assert_eq!(k.json()["message"][0]["path"][0], "identityId");
    assert_eq!(k.json()["message"][1]["path"][0], "jwt");
    let wrong_method = c.get("/api/v1/auth/universal-auth/login", None);
    assert_eq!(
        wrong_method.body,
        r#"{"message":"Route GET:/api/v1/auth/universal-auth/login not found","error":"Not Found","statusCode":404}"#
    );
}

#[test]
fn kubernetes_service_accounts_can_be_added_and_removed() {
    let (fake, c) = setup(World::sample());
    let login = |jwt: &str| {
        c.post_json(
            "/api/v1/auth/kubernetes-auth/login",
            &json!({"identityId": sample::K8S_IDENTITY_ID, "jwt": jwt}).to_string(),
        )
    };
    assert_eq!(login("rotated").status, 401);
    fake.add_kubernetes_jwt("rotated", sample::K8S_NAMESPACE, "app");
    assert_eq!(login("rotated").status, 200);
    fake.remove_kubernetes_jwt("rotated");
    assert_eq!(error_of(&login("rotated")).2, "KubernetesTokenReviewError");
    let open = World::sample()
        .kubernetes_identity("k8s-any", &[], 60, 120)
        .kubernetes_jwt("anywhere", "some-ns", "sa");
    let (_f2, c2) = setup(open);
    let r = c2.post_json(
        "/api/v1/auth/kubernetes-auth/login",
        &json!({"identityId": "k8s-any", "jwt": "anywhere"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expiresIn"], 60);
    assert_eq!(fake.logins(), 1);
}

// ----- faults -----

#[test]
fn status_faults_look_real() {
    let (fake, c) = setup(World::sample());
    let cases: [(u16, &str); 7] = [
        (
            500,
            r#"{"statusCode":500,"message":"Something went wrong","error":"InternalServerError"}"#,
        ),
        (
            401,
            r#"{"statusCode":401,"message":"Unauthorized","error":"UnauthorizedError"}"#,
        ),
        (
            403,
            r#"{"statusCode":403,"message":"You are not allowed to access this resource","error":"PermissionDenied"}"#,
        ),
        (
            404,
            r#"{"statusCode":404,"message":"Not found","error":"NotFound"}"#,
        ),
        (
            504,
            r#"{"statusCode":504,"message":"Gateway Timeout","error":"GatewayTimeout"}"#,
        ),
        (
            400,
            r#"{"statusCode":400,"message":"Bad request","error":"BadRequest"}"#,
        ),
        (
            409,
            r#"{"statusCode":409,"message":"Conflict","error":"Conflict"}"#,
        ),
    ];
    for (status, body) in cases {
        fake.inject(Fault::status(Route::Status, status));
        let r = c.get("/api/status", None);
        assert_eq!((r.status, r.body.as_str()), (status, body));
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(r.header("etag").is_some());
    }
    fake.inject(Fault::status(Route::Status, 422));
    let r = c.get("/api/status", None);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("ValidationFailure"))
    );
    assert!(r.json()["message"].is_array());
    for status in [502, 503] {
        fake.inject(Fault::status(Route::Status, status));
        let r = c.get("/api/status", None);
        assert_eq!(r.status, status);
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert!(r.body.contains(&status.to_string()) && r.body.contains("nginx"));
    }
    assert_eq!(c.get("/api/status", None).status, 200);
}

#[test]
fn body_rate_limit_and_token_expired_faults() {
    let (fake, c) = setup(World::sample());
    let token = ua_token(&c);
    fake.inject(Fault::body(Route::ListSecrets, 418, "{\"odd\":true}"));
    fake.inject(Fault::body(Route::ListSecrets, 500, "plain failure"));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!((r.status, r.body.as_str()), (418, "{\"odd\":true}"));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!((r.status, r.body.as_str()), (500, "plain failure"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    fake.inject(Fault::rate_limited(Route::ListSecrets, Some(7)));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!(
        r.body,
        r#"{"statusCode":429,"message":"Rate limit exceeded. Please try again in 7 seconds","error":"RateLimitExceeded"}"#
    );
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    fake.inject(Fault::rate_limited(Route::ListSecrets, None));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(
        r.json()["message"],
        "Rate limit exceeded. Please try again in 1 minute"
    );

    fake.inject(Fault::token_expired(Route::Renew));
    let r = c.renew(&token);
    assert_eq!(
        r.body,
        r#"{"statusCode":403,"message":"Your token has expired. Please re-authenticate.","error":"TokenError"}"#
    );
    assert_eq!(fake.renewals(), 0);
    assert_eq!(fake.count(Route::ListSecrets), 4);
    assert_eq!(fake.count(Route::Renew), 1);
}

#[test]
fn faults_come_before_authentication_and_can_repeat() {
    let (fake, c) = setup(World::sample());
    fake.inject(Fault::status(Route::ListSecrets, 503).times(2));
    fake.inject(Fault::status(Route::Any, 500));
    assert_eq!(c.get(DEV_ROOT, None).status, 503);
    assert_eq!(c.get(DEV_ROOT, None).status, 503);
    assert_eq!(
        c.get("/api/status", None).status,
        500,
        "Any matches every route"
    );
    assert_eq!(
        c.get(DEV_ROOT, None).status,
        401,
        "queue empty: normal handling"
    );
    fake.inject(Fault::status(Route::GetSecret, 500).times(usize::MAX));
    for _ in 0..3 {
        assert_eq!(c.get("/api/v3/secrets/raw/X", None).status, 500);
    }
    fake.clear_faults();
    assert_eq!(c.get("/api/v3/secrets/raw/X", None).status, 401);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 500, 401, 500, 500, 500, 401]);
}

#[test]
fn delay_malformed_and_dropped_connections() {
    let (fake, c) = setup(World::sample());
    let token = ua_token(&c);
    fake.inject(Fault::delay(Route::ListSecrets, Duration::from_millis(400)));
    let started = Instant::now();
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    fake.inject(Fault::malformed_json(Route::ListSecrets));
    let r = c.get(DEV_ROOT, Some(&token));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "{}",
        r.body
    );

    fake.inject(Fault::drop_connection(Route::UniversalAuthLogin));
    let dropped = c.send(
        "POST",
        "/api/v1/auth/universal-auth/login",
        &[("content-type", "application/json")],
        Some(
            &json!({"clientId": sample::UA_CLIENT_ID, "clientSecret": sample::UA_CLIENT_SECRET})
                .to_string(),
        ),
    );
    assert!(
        dropped.is_err(),
        "expected a connection error, got {dropped:?}"
    );
    assert_eq!(fake.logins(), 1, "a dropped login does not log in");
    let last = fake.requests().pop().expect("recorded");
    assert_eq!((last.route, last.status), (Route::UniversalAuthLogin, 0));
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
}

#[test]
fn down_mode_closes_new_and_open_connections() {
    let (fake, c) = setup(World::sample());
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", fake.port())).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    fake.set_down(true);
    idle.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed: {e}"),
    }
    assert!(c.send("GET", "/api/status", &[], None).is_err());
    assert!(c.send("GET", "/api/status", &[], None).is_err());
    fake.set_down(false);
    assert_eq!(c.get("/api/status", None).status, 200);
    assert_eq!(fake.count(Route::Any), 1);
}

// ----- ETag -----

#[test]
fn etags_and_304() {
    let (fake, c) = setup(World::sample());
    let token = ua_token(&c);
    let auth = format!("Bearer {token}");
    let first = c.get(DEV_ROOT, Some(&token));
    let again = c.get(DEV_ROOT, Some(&token));
    assert_eq!(first.body, again.body, "stable while nothing changes");
    let etag = first.header("etag").expect("etag").to_string();
    let cached = c
        .send(
            "GET",
            DEV_ROOT,
            &[("authorization", &auth), ("if-none-match", &etag)],
            None,
        )
        .expect("request");
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert!(cached.header("x-ratelimit-limit").is_some());

    fake.set_secret("dev", "/", "API_KEY", "rotated");
    let changed = c
        .send(
            "GET",
            DEV_ROOT,
            &[("authorization", &auth), ("if-none-match", &etag)],
            None,
        )
        .expect("request");
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    let api_key = changed.json()["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .find(|s| s["secretKey"] == "API_KEY")
        .cloned()
        .expect("API_KEY");
    assert_eq!(api_key["secretValue"], "rotated");
    assert_eq!(api_key["version"], 2);
    assert_ne!(api_key["updatedAt"], api_key["createdAt"]);

    let new_etag = changed.header("etag").expect("etag").to_string();
    fake.set_etag_enabled(false);
    let uncached = c
        .send(
            "GET",
            DEV_ROOT,
            &[("authorization", &auth), ("if-none-match", &new_etag)],
            None,
        )
        .expect("request");
    assert_eq!(uncached.status, 200);
    assert_eq!(uncached.header("etag"), Some(new_etag.as_str()));
    fake.set_etag_enabled(true);

    fake.delete_secret("dev", "/", "API_KEY");
    let after_delete = c.get(DEV_ROOT, Some(&token));
    assert!(!after_delete.body.contains("API_KEY"));
}

// ----- v4 -----

#[test]
fn v4_routes() {
    let (fake, c) = setup(World::sample().v4(true));
    let token = ua_token(&c);
    let base = format!(
        "/api/v4/secrets?projectId={}&environment=dev",
        sample::PROJECT_ID
    );
    let r = c.get(&base, Some(&token));
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    let db_url = j["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .find(|s| s["secretKey"] == "DATABASE_URL")
        .cloned()
        .expect("DATABASE_URL");
    assert_eq!(
        db_url["secretValue"], "postgres://db.internal.example:5432/app",
        "v4 expands by default"
    );
    assert_eq!(
        j["imports"][0]["environment"], "staging",
        "v4 includes imports by default"
    );
    let r = c.get(
        &format!("{base}&includeImports=false&expandSecretReferences=false"),
        Some(&token),
    );
    assert!(r.json().get("imports").is_none());
    assert!(r.body.contains("${DB_HOST}"));
    assert_eq!(
        c.get(&format!("{base}&include_imports=false"), Some(&token))
            .json()
            .get("imports"),
        None
    );

    let missing = c.get("/api/v4/secrets?environment=dev", Some(&token));
    assert_eq!(
        missing.body,
        r#"{"statusCode":400,"message":"Missing project id or environment","error":"BadRequest"}"#
    );
    let env = c.get(
        &format!(
            "/api/v4/secrets?projectId={}&environment=qa",
            sample::PROJECT_ID
        ),
        Some(&token),
    );
    assert_eq!(
        error_of(&env),
        (
            404,
            format!(
                "Environment with slug 'qa' in project with ID '{}' not found",
                sample::PROJECT_ID
            ),
            "NotFound".into()
        )
    );
    let folder = c.get(&format!("{base}&secretPath=%2Fnope"), Some(&token));
    assert_eq!(
        error_of(&folder),
        (
            404,
            "Folder with path '/nope' in environment 'dev' was not found. Please ensure the environment slug and secret path is correct.".into(),
            "SecretPathNotFound".into()
        )
    );
    let bad = c.get(&format!("{base}&recursive=1"), Some(&token));
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (422, Some("ValidationFailure"))
    );

    let one = c.get(
        &format!(
            "/api/v4/secrets/SHARED_TOKEN?projectId={}&environment=dev",
            sample::PROJECT_ID
        ),
        Some(&token),
    );
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["secret"]["environment"], "staging");

    let project = c.get("/api/v1/projects/slug/sidecar-test", Some(&token));
    assert_eq!(project.status, 200, "{}", project.body);
    assert_eq!(project.json()["id"], sample::PROJECT_ID);
    assert_eq!(project.json()["slug"], sample::PROJECT_SLUG);
    let unknown = c.get("/api/v1/projects/slug/nope", Some(&token));
    assert_eq!(
        unknown.body,
        r#"{"statusCode":404,"message":"Project with slug 'nope' not found","error":"NotFound"}"#
    );
    assert_eq!(fake.count(Route::ProjectBySlug), 2);
    assert_eq!(fake.count(Route::ListSecrets), 7);

    fake.set_v4(false);
    let off = c.get(&base, Some(&token));
    assert_eq!(off.status, 404);
    assert_eq!(
        off.json()["message"],
        format!("Route GET:{base} not found").as_str()
    );
    assert_eq!(
        c.get("/api/v1/projects/slug/sidecar-test", Some(&token))
            .status,
        404
    );
    assert_eq!(fake.count(Route::Other), 2);
}

// ----- data -----

fn layered_world() -> World {
    World::empty()
        .project("p-1", "layered", &["dev", "base"])
        .universal_auth_identity("id-1", "cid", "sec", 3600, 7200)
        .secret("dev", "/", "LOCAL", "local")
        .secret("dev", "/", "REF", "${NAME}-${base.shared.COMMON}")
        .tagged_secret("dev", "/svc", "A", "a", &["red"])
        .tagged_secret("dev", "/svc", "B", "b", &["blue", "red"])
        .secret("dev", "/svc/deep", "C", "${dev.svc.A}${D}${B}")
        .tagged_secret("dev", "/svc/deep", "D", "d", &["green"])
        .secret("base", "/", "NAME", "base-name")
        .secret("base", "/", "DUP", "from-base")
        .secret("base", "/shared", "COMMON", "common")
        .secret("base", "/shared", "DUP", "from-shared")
        .secret("base", "/shared", "OWN_REF", "${DUP}")
        .secret("base", "/extra", "EXTRA", "extra")
        .import("dev", "/", "base", "/shared")
        .import("base", "/shared", "base", "/extra")
        .import("dev", "/", "base", "/")
}

fn list(c: &Client, token: &str, query: &str) -> Value {
    let r = c.get(
        &format!("/api/v3/secrets/raw?workspaceId=p-1&{query}"),
        Some(token),
    );
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()
}

#[test]
fn imports_references_recursion_and_tags() {
    let (fake, c) = setup(layered_world());
    let token = c.login("cid", "sec");

    let j = list(
        &c,
        &token,
        "environment=dev&expandSecretReferences=true&include_imports=true",
    );
    assert_eq!(
        keys_values(&j["secrets"]),
        pairs(&[("LOCAL", "local"), ("REF", "${NAME}-common")]),
        "missing refs stay literal"
    );
    let imports = j["imports"].as_array().expect("imports");
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0]["secretPath"], "/shared");
    assert_eq!(imports[1]["secretPath"], "/");
    assert_eq!(
        keys_values(&imports[0]["secrets"]),
        pairs(&[
            ("COMMON", "common"),
            ("DUP", "from-shared"),
            ("OWN_REF", "from-shared"),
            ("EXTRA", "extra")
        ]),
        "nested import appended, refs expanded in their own folder"
    );
    let nested_last = imports[0]["secrets"]
        .as_array()
        .expect("secrets")
        .last()
        .cloned();
    assert_eq!(nested_last.expect("last")["secretKey"], "EXTRA");

    let j = list(
        &c,
        &token,
        "environment=dev&secretPath=%2Fsvc&recursive=true",
    );
    let paths: Vec<(String, String)> = j["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| {
            (
                s["secretKey"].as_str().expect("key").into(),
                s["secretPath"].as_str().expect("path").into(),
            )
        })
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("A".to_string(), "/svc".to_string()),
            ("B".into(), "/svc".into()),
            ("C".into(), "/svc/deep".into()),
            ("D".into(), "/svc/deep".into())
        ]
    );
    assert!(j.get("imports").is_none());

    let j = list(
        &c,
        &token,
        "environment=dev&secretPath=%2Fsvc%2F&recursive=true&tagSlugs=red,green&expandSecretReferences=true",
    );
    assert_eq!(
        keys_values(&j["secrets"]),
        pairs(&[("A", "a"), ("B", "b"), ("D", "d")])
    );
    let b = j["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .find(|s| s["secretKey"] == "B")
        .cloned()
        .expect("B");
    let mut slugs: Vec<&str> = b["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["slug"].as_str().expect("slug"))
        .collect();
    slugs.sort();
    assert_eq!(slugs, ["blue", "red"]);
    let j = list(
        &c,
        &token,
        "environment=dev&secretPath=%2Fsvc%2Fdeep&expandSecretReferences=true",
    );
    assert_eq!(
        keys_values(&j["secrets"]),
        pairs(&[("C", "ad${B}"), ("D", "d")])
    );

    let hidden = list(&c, &token, "environment=dev&viewSecretValue=false");
    assert!(hidden["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .all(|s| s["secretValue"] == "<hidden-by-infisical>"));

    // Single secret: local wins, then the LAST import.
    let one = |key: &str| {
        c.get(
            &format!("/api/v3/secrets/raw/{key}?workspaceId=p-1&environment=dev&include_imports=true&expandSecretReferences=true"),
            Some(&token),
        )
    };
    assert_eq!(one("DUP").json()["secret"]["secretValue"], "from-base");
    assert_eq!(one("EXTRA").json()["secret"]["secretValue"], "extra");
    assert_eq!(
        one("OWN_REF").json()["secret"]["secretValue"],
        "from-shared"
    );
    assert_eq!(one("LOCAL").json()["secret"]["secretValue"], "local");
    assert_eq!(one("NOPE").status, 404);

    // Imports added while running go last.
    fake.set_secret("base", "/late", "DUP", "from-late");
    fake.add_import("dev", "/", "base", "/late");
    assert_eq!(one("DUP").json()["secret"]["secretValue"], "from-late");
    let j = list(&c, &token, "environment=dev&include_imports=true");
    assert_eq!(j["imports"].as_array().expect("imports").len(), 3);
    assert_eq!(j["imports"][2]["secretPath"], "/late");
}

#[test]
fn project_and_scope_errors() {
    let (_fake, c) = setup(layered_world());
    let token = c.login("cid", "sec");
    let r = c.get(
        "/api/v3/secrets/raw?workspaceId=p-2&environment=dev",
        Some(&token),
    );
    assert_eq!(r.status, 404);
    let r = c.get(
        "/api/v3/secrets/raw?workspaceSlug=layered&environment=dev",
        Some(&token),
    );
    assert_eq!(r.status, 200);
    let r = c.get(
        "/api/v3/secrets/raw?workspaceSlug=other&environment=dev",
        Some(&token),
    );
    assert_eq!(r.status, 500);
    let r = c.get("/api/v3/secrets/raw?environment=dev", Some(&token));
    assert_eq!(r.status, 400);
    let r = c.get(
        "/api/v3/secrets/raw?workspaceId=p-1&environment=dev&expandSecretReferences=1&include_imports=no",
        Some(&token),
    );
    assert_eq!(r.status, 401);
    let issues = r.json()["message"].as_array().expect("issues").len();
    assert_eq!(issues, 2);
    let r = c.get(
        "/api/v3/secrets/raw/LOCAL?workspaceId=p-1&environment=dev&secretPath=%2Fnope",
        Some(&token),
    );
    assert_eq!(r.status, 404);
}

// ----- plumbing -----

#[test]
fn tls_server() {
    let fake = FakeInfisical::start_tls(World::sample(), &["infisical.test"]);
    assert!(fake.url().starts_with("https://localhost:"));
    let ca = fake.ca_pem().expect("CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let c = Client::tls(&fake.url(), &ca);
    let token = ua_token(&c);
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    let plain = FakeInfisical::start(World::empty());
    assert!(plain.ca_pem().is_none());
    assert!(plain.url().starts_with("http://127.0.0.1:"));
    let other = FakeInfisical::start_tls(World::empty(), &["localhost"]);
    let untrusting = Client::tls(&fake.url(), &other.ca_pem().expect("CA"));
    assert!(untrusting.send("GET", "/api/status", &[], None).is_err());
}

#[test]
fn requests_are_recorded() {
    let (fake, c) = setup(World::sample());
    let token = ua_token(&c);
    c.send(
        "GET",
        "/api/v3/secrets/raw?workspaceId=x&environment=dev&secretPath=%2Fapp%2Fdb",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("X-Custom", "yes"),
        ],
        None,
    )
    .expect("request");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let login = &requests[0];
    assert_eq!(login.method, "POST");
    assert_eq!(login.route, Route::UniversalAuthLogin);
    assert!(login.body.contains(sample::UA_CLIENT_ID));
    assert_eq!(login.status, 200);
    let list = &requests[1];
    assert_eq!(list.path, "/api/v3/secrets/raw");
    assert_eq!(list.query("secretPath"), Some("/app/db"));
    assert_eq!(list.header("x-custom"), Some("yes"));
    assert_eq!(list.header("X-CUSTOM"), Some("yes"));
    assert!(list
        .headers
        .iter()
        .all(|(k, _)| k == &k.to_ascii_lowercase()));
    assert_eq!(list.status, 404);
    assert!(list.at >= login.at);
    assert_eq!(fake.count(Route::ListSecrets), 1);
    assert_eq!(fake.count(Route::Any), 2);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

#[test]
fn start_on_and_drop() {
    let fake = FakeInfisical::start(World::empty());
    let taken = std::net::SocketAddr::from(([127, 0, 0, 1], fake.port()));
    assert!(FakeInfisical::start_on(World::empty(), taken).is_err());
    let port = fake.port();
    drop(fake);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn rate_limit_window_and_any() {
    let (fake, c) = setup(World::sample());
    fake.set_rate_limit_window(Duration::from_secs(1));
    fake.set_rate_limit(Route::Any, 1);
    assert_eq!(
        c.get("/api/status", None).status,
        200,
        "status is not rate limited"
    );
    let token = ua_token(&c);
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    let limited = c.get(DEV_ROOT, Some(&token));
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json()["message"],
        "Rate limit exceeded. Please try again in 1 second"
    );
    assert_eq!(limited.header("retry-after"), Some("1"));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    fake.set_rate_limit(Route::Any, 0);
    for _ in 0..3 {
        assert_eq!(c.get(DEV_ROOT, Some(&token)).status, 200);
    }
}

// ----- releases -----

#[test]
fn releases_differ_in_validation_folders_hidden_values_and_use_limits() {
    use fake_infisical::Release;
    let bad = r#"{"clientId": 5, "clientSecret": "x"}"#;
    let missing = DEV_ROOT.replace("secretPath=%2F", "secretPath=%2Fmissing");
    for (release, validation, folder) in [
        (Release::R2024, 401, 200),
        (Release::R2025, 422, 200),
        (Release::R2026, 422, 404),
    ] {
        let (fake, c) = setup(
            World::sample()
                .release(release)
                .list_only(sample::UA_IDENTITY_ID)
                .token_use_limit(sample::UA_IDENTITY_ID, 2),
        );
        let r = c.post_json("/api/v1/auth/universal-auth/login", bad);
        assert_eq!(r.status, validation, "{release:?}");
        assert_eq!(r.json()["statusCode"], validation, "{release:?}");
        assert_eq!(r.json()["error"], "ValidationFailure");

        let token = ua_token(&c);
        let r = c.get(&missing, Some(&token));
        assert_eq!(r.status, folder, "{release:?}: {}", r.body);
        if folder == 404 {
            assert_eq!(r.json()["error"], "SecretPathNotFound");
        } else {
            assert_eq!(r.json()["secrets"], json!([]));
        }

        let r = c.get(DEV_ROOT, Some(&token));
        if release == Release::R2026 {
            assert_eq!(r.status, 200, "{}", r.body);
            let first = &r.json()["secrets"][0];
            assert_eq!(first["secretValue"], "<hidden-by-infisical>");
            assert_eq!(first["secretValueHidden"], true);
        } else {
            assert_eq!(
                error_of(&r),
                (
                    403,
                    "You are not allowed to readValue on secrets".into(),
                    "PermissionDenied".into()
                )
            );
        }

        // The token allowed two calls; the third is refused.
        let r = c.get(DEV_ROOT, Some(&token));
        if release == Release::R2024 {
            assert_eq!(r.status, 400, "{}", r.body);
            assert!(error_of(&r).1.contains("number of uses limit reached"));
        } else {
            assert_eq!(r.status, 401, "{}", r.body);
        }
        drop(fake);
    }
}
