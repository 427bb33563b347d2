//! The cloud fakes and the logins that verify their credentials: OIDC, JWT, AWS (SigV4 checked
//! against an independent signer), GCP ID token and IAM, Azure managed and workload identity,
//! IMDSv2 and metadata-header requirements, the 2024 array-audience 500, faults and counts.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{Client, Resp};
use fake_infisical::{CloudRoute, FakeCloud, FakeInfisical, JwtKeys, Route, World};
use ring::{digest, hmac};
use serde_json::{json, Value};

const ID: &str = "5d1c2a3e-0000-4000-8000-00000000c10d";
const TTL: u64 = 600;
const MAX_TTL: u64 = 3600;
const NS: &str = "apps";
const SA: &str = "web";
const SUBJECT: &str = "system:serviceaccount:apps:web";
const AUDIENCE: &str = "https://infisical.example";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Logs in with a `{identityId, jwt}` body at `method`'s route.
fn jwt_login(c: &Client, method: &str, identity_id: &str, jwt: &str) -> Resp {
    c.post_json(
        &format!("/api/v1/auth/{method}/login"),
        &json!({"identityId": identity_id, "jwt": jwt}).to_string(),
    )
}

/// Asserts an Infisical error body.
#[track_caller]
fn assert_error(r: &Resp, status: u16, error: &str, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let body = r.json();
    assert_eq!(body["statusCode"], status, "{}", r.body);
    assert_eq!(body["error"], error, "{}", r.body);
    assert_eq!(body["message"], message, "{}", r.body);
}

#[track_caller]
fn assert_token(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["expiresIn"], TTL);
    assert_eq!(body["accessTokenMaxTTL"], MAX_TTL);
    assert_eq!(body["tokenType"], "Bearer");
    assert!(body["accessToken"].as_str().is_some_and(|t| !t.is_empty()));
}

/// A raw HTTP exchange with any `Host` header (the test client always sends its own).
fn raw(port_url: &str, method: &str, path: &str, headers: &[(String, String)], body: &str) -> Resp {
    let addr = port_url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    tcp.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

// ----- an independent SigV4 signer -----

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant), written out again so the test does not share code.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Signs a request with headers already in place (names lowercase, `host` and `x-amz-date`
/// among them); returns the `Authorization` value.
#[allow(clippy::too_many_arguments)]
fn sigv4_authorization(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> String {
    let mut signed: Vec<&(String, String)> = headers.iter().collect();
    signed.sort();
    let canonical_headers: String = signed
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{method}\n{path}\n\n{canonical_headers}\n{signed_names}\n{}",
        sha256_hex(body.as_bytes())
    );
    let date = headers
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .map(|(_, v)| v.clone())
        .expect("x-amz-date");
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac256(format!("AWS4{secret}").as_bytes(), &date[..8]);
    let k_region = hmac256(&k_date, region);
    let k_service = hmac256(&k_region, service);
    let k_signing = hmac256(&k_service, "aws4_request");
    let signature = hex(&hmac256(&k_signing, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
    )
}

const CALLER_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// A signed STS `GetCallerIdentity` request's headers, as an SDK would send them.
fn signed_caller_identity(
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    at: u64,
) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            "host".to_string(),
            "sts.us-east-1.amazonaws.com".to_string(),
        ),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("x-amz-date".to_string(), amz_date(at)),
    ];
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    let auth = sigv4_authorization(
        "POST",
        "/",
        &headers,
        CALLER_BODY,
        access_key_id,
        secret,
        "us-east-1",
        "sts",
    );
    headers.push(("authorization".to_string(), auth));
    headers
}

/// The AWS Auth login body for signed headers.
fn aws_login_body(identity_id: &str, headers: &[(String, String)]) -> String {
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            // SDKs send header names capitalized; the server must not care.
            let name = k
                .split('-')
                .map(|p| {
                    let mut c = p.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            (name, json!(v))
        })
        .collect();
    json!({
        "identityId": identity_id,
        "iamHttpRequestMethod": "POST",
        "iamRequestBody": STANDARD.encode(CALLER_BODY),
        "iamRequestHeaders": STANDARD.encode(Value::Object(map).to_string()),
    })
    .to_string()
}

/// The text of the first `<tag>` element.
fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len()).expect(tag);
    let end = xml[start..].find("</").expect("close") + start;
    &xml[start..end]
}

#[test]
fn sigv4_signer_matches_aws_get_vanilla_vector() {
    let headers = vec![
        ("host".to_string(), "example.amazonaws.com".to_string()),
        ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
    ];
    let auth = sigv4_authorization(
        "GET",
        "/",
        &headers,
        "",
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "us-east-1",
        "service",
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
}

// ----- OIDC and JWT -----

#[test]
fn oidc_login_verifies_the_issuer_token() {
    let cloud = FakeCloud::start();
    let auth = cloud.oidc_auth(&[AUDIENCE], SUBJECT);
    let fake = FakeInfisical::start(
        World::empty()
            .oidc_identity(ID, auth, TTL, MAX_TTL)
            .token_identity("no-oidc", TTL, MAX_TTL),
    );
    let c = Client::new(&fake.url());

    let good = cloud.service_account_token(NS, SA, &[AUDIENCE]);
    let r = jwt_login(&c, "oidc-auth", ID, &good);
    assert_token(&r);
    assert_eq!(fake.logins(), 1);
    assert_eq!(cloud.count(CloudRoute::OidcDiscovery), 1);
    assert_eq!(cloud.count(CloudRoute::Jwks), 1);
    let token = r.json()["accessToken"].as_str().expect("token").to_string();
    assert_eq!(c.renew(&token).status, 200, "tokens renew like others");

    let other_aud = cloud.service_account_token(NS, SA, &["somebody-else"]);
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &other_aud),
        401,
        "UnauthorizedError",
        "Access denied: OIDC audience not allowed.",
    );
    let other_sa = cloud.service_account_token(NS, "db", &[AUDIENCE]);
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &other_sa),
        403,
        "ForbiddenError",
        "Access denied: OIDC subject not allowed.",
    );
    let claims = json!({"iss": cloud.issuer(), "sub": SUBJECT, "aud": AUDIENCE, "exp": now() + 60});
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &cloud.mint_foreign_jwt(claims.clone())),
        401,
        "UnauthorizedError",
        "Access denied: invalid signature",
    );
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 5);
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &cloud.mint_jwt(expired)),
        401,
        "UnauthorizedError",
        "Access denied: jwt expired",
    );
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("https://elsewhere.example");
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &cloud.mint_jwt(other_issuer)),
        401,
        "UnauthorizedError",
        &format!(
            "Access denied: jwt issuer invalid. expected: {}",
            cloud.issuer()
        ),
    );
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, "not-a-jwt"),
        401,
        "UnauthorizedError",
        "Invalid JWT",
    );
    let not_configured = "OIDC auth method not found for identity, did you configure OIDC auth?";
    assert_error(
        &jwt_login(&c, "oidc-auth", "no-oidc", &good),
        404,
        "NotFound",
        not_configured,
    );
    assert_error(
        &jwt_login(&c, "oidc-auth", "unknown", &good),
        404,
        "NotFound",
        not_configured,
    );
    assert_eq!(fake.logins(), 1);
    assert_eq!(fake.count(Route::OidcLogin), 9);
}

#[test]
fn oidc_bound_claims_and_globs() {
    let cloud = FakeCloud::start();
    let mut auth = cloud.oidc_auth(&["https://*.example"], "system:serviceaccount:apps:*");
    auth.bound_claims
        .insert("team".into(), vec!["blue".into(), "green".into()]);
    let fake = FakeInfisical::start(World::empty().oidc_identity(ID, auth, TTL, MAX_TTL));
    let c = Client::new(&fake.url());
    let base = json!({"iss": cloud.issuer(), "sub": SUBJECT, "aud": AUDIENCE, "exp": now() + 60});
    let mut good = base.clone();
    good["team"] = json!("green");
    assert_token(&jwt_login(&c, "oidc-auth", ID, &cloud.mint_jwt(good)));
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &cloud.mint_jwt(base.clone())),
        401,
        "UnauthorizedError",
        "Access denied: token has no team field",
    );
    let mut red = base;
    red["team"] = json!("red");
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &cloud.mint_jwt(red)),
        401,
        "UnauthorizedError",
        "Access denied: OIDC claim not allowed.",
    );
}

#[test]
fn list_audience_switch_models_the_2024_release() {
    let cloud = FakeCloud::start();
    let fake = FakeInfisical::start(
        World::empty()
            .oidc_identity(ID, cloud.oidc_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
            .jwt_identity("jwt-id", cloud.jwt_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
            .oidc_rejects_list_audience(true),
    );
    let c = Client::new(&fake.url());
    let projected = cloud.service_account_token(NS, SA, &[AUDIENCE]);
    for (method, id) in [("oidc-auth", ID), ("jwt-auth", "jwt-id")] {
        assert_error(
            &jwt_login(&c, method, id, &projected),
            500,
            "InternalServerError",
            "Something went wrong",
        );
    }
    let single = cloud.mint_jwt(
        json!({"iss": cloud.issuer(), "sub": SUBJECT, "aud": AUDIENCE, "exp": now() + 60}),
    );
    assert_token(&jwt_login(&c, "oidc-auth", ID, &single));
    assert_token(&jwt_login(&c, "jwt-auth", "jwt-id", &single));
    fake.set_oidc_rejects_list_audience(false);
    assert_token(&jwt_login(&c, "oidc-auth", ID, &projected));
    assert_token(&jwt_login(&c, "jwt-auth", "jwt-id", &projected));
}

#[test]
fn jwt_login_with_jwks_and_static_keys() {
    let cloud = FakeCloud::start();
    let mut static_auth = cloud.jwt_auth(&[AUDIENCE], SUBJECT);
    static_auth.keys = JwtKeys::Static(vec![cloud.issuer_public_key_pem()]);
    let fake = FakeInfisical::start(
        World::empty()
            .jwt_identity(ID, cloud.jwt_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
            .jwt_identity("static", static_auth, TTL, MAX_TTL),
    );
    let c = Client::new(&fake.url());
    let good = cloud.service_account_token(NS, SA, &[AUDIENCE]);
    assert_token(&jwt_login(&c, "jwt-auth", ID, &good));
    assert_token(&jwt_login(&c, "jwt-auth", "static", &good));
    assert_eq!(fake.count(Route::JwtLogin), 2);

    assert_error(
        &jwt_login(
            &c,
            "jwt-auth",
            ID,
            &cloud.service_account_token(NS, SA, &["x"]),
        ),
        401,
        "UnauthorizedError",
        "Access denied: token audience not allowed",
    );
    assert_error(
        &jwt_login(
            &c,
            "jwt-auth",
            ID,
            &cloud.service_account_token(NS, "db", &[AUDIENCE]),
        ),
        403,
        "ForbiddenError",
        "Access denied: subject not allowed",
    );
    let claims = json!({"iss": "https://other.example", "sub": SUBJECT, "aud": AUDIENCE});
    assert_error(
        &jwt_login(&c, "jwt-auth", ID, &cloud.mint_jwt(claims.clone())),
        403,
        "ForbiddenError",
        "Access denied: issuer mismatch",
    );
    let foreign = cloud.mint_foreign_jwt(claims);
    assert_error(
        &jwt_login(&c, "jwt-auth", ID, &foreign),
        401,
        "UnauthorizedError",
        "Access denied: invalid signature",
    );
    assert_error(
        &jwt_login(&c, "jwt-auth", "static", &foreign),
        401,
        "UnauthorizedError",
        "Access denied: JWT verification failed with all keys. Errors - invalid signature",
    );
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &good),
        404,
        "NotFound",
        "OIDC auth method not found for identity, did you configure OIDC auth?",
    );
    assert_error(
        &jwt_login(&c, "jwt-auth", "nobody", &good),
        404,
        "NotFound",
        "JWT auth method not found for identity, did you configure JWT auth?",
    );
}

// ----- AWS -----

const ACCOUNT: &str = "123456789012";
const USER_ARN: &str = "arn:aws:iam::123456789012:user/ci";
const AKID: &str = "AKIAFAKEUSER0000001";
const SECRET: &str = "fakeSecretKey/0000000000000000000000000";

#[test]
fn sts_verifies_sigv4_for_real() {
    let cloud = FakeCloud::start();
    cloud.aws_user(AKID, SECRET, USER_ARN);
    cloud.aws_temporary_key(
        "ASIAFAKETEMP0000001",
        "tempSecret",
        "session-token-1",
        USER_ARN,
    );
    let sts =
        |headers: &[(String, String)]| raw(&cloud.sts_url(), "POST", "/", headers, CALLER_BODY);

    let r = sts(&signed_caller_identity(AKID, SECRET, None, now()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(xml_text(&r.body, "Arn"), USER_ARN);
    assert_eq!(xml_text(&r.body, "Account"), ACCOUNT);
    let mut json_headers = signed_caller_identity(AKID, SECRET, None, now());
    json_headers.push(("accept".into(), "application/json".into()));
    let r = sts(&json_headers);
    assert_eq!(
        r.json()["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"],
        USER_ARN
    );

    let wrong_key = sts(&signed_caller_identity(AKID, "not-the-secret", None, now()));
    assert_eq!(wrong_key.status, 403);
    assert_eq!(xml_text(&wrong_key.body, "Code"), "SignatureDoesNotMatch");

    let mut tampered = signed_caller_identity(AKID, SECRET, None, now());
    tampered[1].1 = "application/json".into();
    let r = sts(&tampered);
    assert_eq!(
        (r.status, xml_text(&r.body, "Code")),
        (403, "SignatureDoesNotMatch")
    );

    let skewed = sts(&signed_caller_identity(AKID, SECRET, None, now() - 600));
    assert_eq!(skewed.status, 403);
    assert_eq!(xml_text(&skewed.body, "Code"), "SignatureDoesNotMatch");
    assert!(xml_text(&skewed.body, "Message").starts_with("Signature expired: "));

    let unknown = sts(&signed_caller_identity("AKIAUNKNOWN", SECRET, None, now()));
    assert_eq!(
        (unknown.status, xml_text(&unknown.body, "Code")),
        (403, "InvalidClientTokenId")
    );

    let temp = "ASIAFAKETEMP0000001";
    let no_token = sts(&signed_caller_identity(temp, "tempSecret", None, now()));
    assert_eq!(
        (no_token.status, xml_text(&no_token.body, "Code")),
        (403, "InvalidClientTokenId")
    );
    let wrong_token = sts(&signed_caller_identity(
        temp,
        "tempSecret",
        Some("other"),
        now(),
    ));
    assert_eq!(wrong_token.status, 403);
    let mut unsigned_token = signed_caller_identity(temp, "tempSecret", None, now());
    unsigned_token.push(("x-amz-security-token".into(), "session-token-1".into()));
    assert_eq!(sts(&unsigned_token).status, 403, "the token must be signed");
    let ok = sts(&signed_caller_identity(
        temp,
        "tempSecret",
        Some("session-token-1"),
        now(),
    ));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(cloud.count(CloudRoute::StsGetCallerIdentity), 10);
}

#[test]
fn aws_login_replays_the_signed_request() {
    let cloud = FakeCloud::start();
    cloud.aws_user(AKID, SECRET, USER_ARN);
    cloud.aws_temporary_key(
        "ASIAFAKEROLE0000001",
        "roleSecret",
        "role-token",
        "arn:aws:sts::123456789012:assumed-role/app-role/i-0123",
    );
    let mut by_account = cloud.aws_auth(&[]);
    by_account.allowed_account_ids = vec!["999999999999".into()];
    let fake = FakeInfisical::start(
        World::empty()
            .aws_identity(
                ID,
                cloud.aws_auth(&[
                    "arn:aws:iam::123456789012:user/ci",
                    "arn:aws:iam::123456789012:role/app-*",
                ]),
                TTL,
                MAX_TTL,
            )
            .aws_identity(
                "only-db",
                cloud.aws_auth(&["arn:aws:iam::123456789012:role/db"]),
                TTL,
                MAX_TTL,
            )
            .aws_identity("other-account", by_account, TTL, MAX_TTL),
    );
    let c = Client::new(&fake.url());
    let login = |id: &str, headers: &[(String, String)]| {
        c.post_json("/api/v1/auth/aws-auth/login", &aws_login_body(id, headers))
    };

    assert_token(&login(
        ID,
        &signed_caller_identity(AKID, SECRET, None, now()),
    ));
    let role = signed_caller_identity(
        "ASIAFAKEROLE0000001",
        "roleSecret",
        Some("role-token"),
        now(),
    );
    assert_token(&login(ID, &role));
    let sts_request = cloud
        .requests()
        .into_iter()
        .find(|r| r.route == CloudRoute::StsGetCallerIdentity)
        .expect("replayed");
    assert_eq!(
        sts_request.header("host"),
        Some("sts.us-east-1.amazonaws.com")
    );
    assert_eq!(sts_request.body, CALLER_BODY);
    assert!(sts_request
        .header("accept")
        .is_some_and(|a| a.contains("application/json")));

    assert_error(
        &login("only-db", &role),
        401,
        "UnauthorizedError",
        "Access denied: AWS principal ARN not allowed. [principal-arn=arn:aws:sts::123456789012:assumed-role/app-role]",
    );
    assert_error(
        &login("other-account", &role),
        401,
        "UnauthorizedError",
        "Access denied: AWS account ID not allowed.",
    );
    assert_error(
        &login(ID, &signed_caller_identity(AKID, "wrong", None, now())),
        500,
        "InternalServerError",
        "Something went wrong",
    );
    let mut no_region = signed_caller_identity(AKID, SECRET, None, now());
    no_region.retain(|(k, _)| k != "authorization");
    assert_error(
        &login(ID, &no_region),
        400,
        "BadRequest",
        "Invalid AWS region",
    );
    assert_error(
        &login("nobody", &role),
        404,
        "NotFound",
        "AWS auth method not found for identity, did you configure AWS auth?",
    );
    assert_eq!(fake.logins(), 2);
}

#[test]
fn web_identity_imds_and_container_credentials_sign_for_sts() {
    let cloud = FakeCloud::start();
    let role = "arn:aws:iam::123456789012:role/app-role";
    let assumed = "arn:aws:sts::123456789012:assumed-role/app-role/pod";
    cloud.aws_web_identity_role(role, assumed);
    let assume = |token: &str| {
        let body = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=pod&WebIdentityToken={token}",
            role.replace(':', "%3A").replace('/', "%2F")
        );
        let headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )];
        raw(&cloud.sts_url(), "POST", "/", &headers, &body)
    };
    let token = cloud.service_account_token(NS, SA, &["sts.amazonaws.com"]);
    let first = assume(&token);
    assert_eq!(first.status, 200, "{}", first.body);
    let second = assume(&token);
    assert_ne!(
        xml_text(&first.body, "AccessKeyId"),
        xml_text(&second.body, "AccessKeyId"),
        "fresh credentials each call"
    );
    let (key, secret, session) = (
        xml_text(&first.body, "AccessKeyId"),
        xml_text(&first.body, "SecretAccessKey"),
        xml_text(&first.body, "SessionToken"),
    );
    let r = raw(
        &cloud.sts_url(),
        "POST",
        "/",
        &signed_caller_identity(key, secret, Some(session), now()),
        CALLER_BODY,
    );
    assert_eq!(xml_text(&r.body, "Arn"), assumed);
    let wrong_aud = assume(&cloud.service_account_token(NS, SA, &["other"]));
    assert_eq!(
        (wrong_aud.status, xml_text(&wrong_aud.body, "Code")),
        (400, "InvalidIdentityToken")
    );
    let foreign =
        assume(&cloud.mint_foreign_jwt(json!({"aud": "sts.amazonaws.com", "exp": now() + 60})));
    assert_eq!(foreign.status, 400);
    assert_eq!(cloud.count(CloudRoute::StsAssumeRoleWithWebIdentity), 4);

    // IMDSv2
    cloud.aws_instance_role(
        "node-role",
        "arn:aws:sts::123456789012:assumed-role/node-role/i-1",
        "eu-west-1",
    );
    let creds_path = "/latest/meta-data/iam/security-credentials/";
    assert_eq!(raw(&cloud.url(), "GET", creds_path, &[], "").status, 401);
    assert_eq!(
        raw(&cloud.url(), "PUT", "/latest/api/token", &[], "").status,
        400
    );
    let imds_token = raw(
        &cloud.url(),
        "PUT",
        "/latest/api/token",
        &[(
            "x-aws-ec2-metadata-token-ttl-seconds".into(),
            "21600".into(),
        )],
        "",
    );
    assert_eq!(imds_token.status, 200);
    let session_header = vec![(
        "x-aws-ec2-metadata-token".to_string(),
        imds_token.body.clone(),
    )];
    let bad_header = vec![("x-aws-ec2-metadata-token".to_string(), "forged".to_string())];
    assert_eq!(
        raw(&cloud.url(), "GET", creds_path, &bad_header, "").status,
        401
    );
    assert_eq!(
        raw(&cloud.url(), "GET", creds_path, &session_header, "").body,
        "node-role"
    );
    let region = raw(
        &cloud.url(),
        "GET",
        "/latest/meta-data/placement/region",
        &session_header,
        "",
    );
    assert_eq!(region.body, "eu-west-1");
    let creds = raw(
        &cloud.url(),
        "GET",
        &format!("{creds_path}node-role"),
        &session_header,
        "",
    )
    .json();
    assert_eq!(creds["Code"], "Success");
    let signed = signed_caller_identity(
        creds["AccessKeyId"].as_str().expect("key"),
        creds["SecretAccessKey"].as_str().expect("secret"),
        creds["Token"].as_str(),
        now(),
    );
    assert_eq!(
        raw(&cloud.sts_url(), "POST", "/", &signed, CALLER_BODY).status,
        200
    );

    // Container credentials
    cloud.aws_container_credentials("secret-auth-token", assumed);
    let path = "/aws/container-credentials";
    assert_eq!(raw(&cloud.url(), "GET", path, &[], "").status, 401);
    let ok = raw(
        &cloud.url(),
        "GET",
        path,
        &[("authorization".into(), "secret-auth-token".into())],
        "",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["RoleArn"], assumed);
    assert!(ok.json()["Token"].as_str().is_some());
    assert_eq!(cloud.count(CloudRoute::ContainerCredentials), 2);
    assert_eq!(cloud.count(CloudRoute::ImdsToken), 2);
}

// ----- GCP -----

const GCP_SA: &str = "app@fake-project.iam.gserviceaccount.com";

#[test]
fn gcp_id_token_login() {
    let cloud = FakeCloud::start();
    cloud.gce_service_account(GCP_SA);
    let mut in_project = cloud.gcp_id_token_auth(&[]);
    in_project.allowed_projects = vec!["other-project".into()];
    let fake = FakeInfisical::start(
        World::empty()
            .gcp_identity(ID, cloud.gcp_id_token_auth(&[GCP_SA]), TTL, MAX_TTL)
            .gcp_identity(
                "other-sa",
                cloud.gcp_id_token_auth(&["x@p.iam.gserviceaccount.com"]),
                TTL,
                MAX_TTL,
            )
            .gcp_identity("other-project", in_project, TTL, MAX_TTL),
    );
    let c = Client::new(&fake.url());
    let identity = |audience: &str, flavor: bool| {
        let headers = if flavor {
            vec![("metadata-flavor".to_string(), "Google".to_string())]
        } else {
            Vec::new()
        };
        raw(
            &cloud.url(),
            "GET",
            &format!("/computeMetadata/v1/instance/service-accounts/default/identity?audience={audience}&format=full"),
            &headers,
            "",
        )
    };
    assert_eq!(identity(ID, false).status, 403);
    let token = identity(ID, true);
    assert_eq!(token.status, 200, "{}", token.body);
    assert_token(&jwt_login(&c, "gcp-auth", ID, &token.body));
    assert_eq!(fake.count(Route::GcpLogin), 1);
    assert_eq!(cloud.count(CloudRoute::GoogleCerts), 1);

    assert_error(
        &jwt_login(&c, "gcp-auth", "other-sa", &identity("other-sa", true).body),
        401,
        "UnauthorizedError",
        "Access denied: GCP service account not allowed.",
    );
    assert_error(
        &jwt_login(
            &c,
            "gcp-auth",
            "other-project",
            &identity("other-project", true).body,
        ),
        401,
        "UnauthorizedError",
        "Access denied: GCP project not allowed.",
    );
    // google-auth-library's errors (audience, signature) are plain errors: 500.
    assert_error(
        &jwt_login(&c, "gcp-auth", "other-sa", &token.body),
        500,
        "InternalServerError",
        "Something went wrong",
    );
    assert_error(
        &jwt_login(&c, "gcp-auth", "nobody", &token.body),
        404,
        "NotFound",
        "GCP auth method not found for identity, did you configure GCP auth?",
    );
}

/// Signs `claims` with a service-account key file the way the IAM `signJwt` API would.
fn sign_with_key_file(key_file: &Value, claims: &Value) -> String {
    let pem = key_file["private_key"].as_str().expect("private_key");
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(der).expect("b64"))
        .expect("pkcs8");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key_file["private_key_id"]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn gcp_iam_login() {
    let cloud = FakeCloud::start();
    let key_file: Value =
        serde_json::from_str(&cloud.gcp_service_account_key(GCP_SA)).expect("key file");
    assert_eq!(key_file["type"], "service_account");
    assert_eq!(key_file["client_email"], GCP_SA);
    assert_eq!(key_file["project_id"], "fake-project");
    let fake = FakeInfisical::start(
        World::empty()
            .gcp_identity(ID, cloud.gcp_iam_auth(&[GCP_SA]), TTL, MAX_TTL)
            .gcp_identity(
                "other",
                cloud.gcp_iam_auth(&["db@fake-project.iam.gserviceaccount.com"]),
                TTL,
                MAX_TTL,
            ),
    );
    let c = Client::new(&fake.url());
    let claims = |aud: &str| json!({"sub": GCP_SA, "aud": aud, "iat": now(), "exp": now() + 900});
    assert_token(&jwt_login(
        &c,
        "gcp-auth",
        ID,
        &sign_with_key_file(&key_file, &claims(ID)),
    ));
    assert_error(
        &jwt_login(
            &c,
            "gcp-auth",
            ID,
            &sign_with_key_file(&key_file, &claims("other")),
        ),
        401,
        "UnauthorizedError",
        "Invalid audience in GCP IAM Token",
    );
    assert_error(
        &jwt_login(
            &c,
            "gcp-auth",
            "other",
            &sign_with_key_file(&key_file, &claims("other")),
        ),
        401,
        "UnauthorizedError",
        "Access denied: GCP service account not allowed.",
    );
    let mut unknown_kid = key_file.clone();
    unknown_kid["private_key_id"] = json!("0000");
    assert_error(
        &jwt_login(
            &c,
            "gcp-auth",
            ID,
            &sign_with_key_file(&unknown_kid, &claims(ID)),
        ),
        403,
        "TokenError",
        "secret or public key must be provided",
    );
    let mut expired = claims(ID);
    expired["exp"] = json!(now() - 1);
    assert_error(
        &jwt_login(&c, "gcp-auth", ID, &sign_with_key_file(&key_file, &expired)),
        403,
        "TokenError",
        "Your token has expired. Please re-authenticate.",
    );
    let mut compute = claims(ID);
    compute["sub"] = json!("123-compute@developer.gserviceaccount.com");
    assert_error(
        &jwt_login(&c, "gcp-auth", ID, &sign_with_key_file(&key_file, &compute)),
        401,
        "UnauthorizedError",
        "Invalid service account identifier",
    );
}

// ----- Azure -----

const RESOURCE: &str = "https://management.azure.com/";
const OBJECT_ID: &str = "7b3e0f5a-1111-4222-8333-444455556666";
const CLIENT_ID: &str = "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd";

#[test]
fn azure_managed_identity_login() {
    let cloud = FakeCloud::start();
    cloud.azure_managed_identity(None, OBJECT_ID);
    cloud.azure_managed_identity(Some(CLIENT_ID), "user-assigned-oid");
    let fake = FakeInfisical::start(
        World::empty()
            .azure_identity(ID, cloud.azure_auth(RESOURCE, &[OBJECT_ID]), TTL, MAX_TTL)
            .azure_identity(
                "vault",
                cloud.azure_auth("https://vault.azure.net", &[]),
                TTL,
                MAX_TTL,
            ),
    );
    let c = Client::new(&fake.url());
    let imds = |query: &str, header: bool| {
        let headers = if header {
            vec![("metadata".to_string(), "true".to_string())]
        } else {
            Vec::new()
        };
        raw(
            &cloud.url(),
            "GET",
            &format!(
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={RESOURCE}{query}"
            ),
            &headers,
            "",
        )
    };
    assert_eq!(imds("", false).status, 400);
    let r = imds("", true);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert!(body["expires_in"].is_string());
    assert_eq!(body["resource"], RESOURCE);
    let token = body["access_token"].as_str().expect("token").to_string();
    assert_token(&jwt_login(&c, "azure-auth", ID, &token));

    let user_assigned = imds(&format!("&client_id={CLIENT_ID}"), true).json();
    assert_error(
        &jwt_login(
            &c,
            "azure-auth",
            ID,
            user_assigned["access_token"].as_str().expect("token"),
        ),
        401,
        "UnauthorizedError",
        "Service principal 'user-assigned-oid' not allowed",
    );
    assert_error(
        &jwt_login(&c, "azure-auth", "vault", &token),
        403,
        "TokenError",
        "jwt audience invalid. expected: https://vault.azure.net",
    );
    let foreign = cloud.mint_jwt(json!({"aud": RESOURCE}));
    assert_error(
        &jwt_login(&c, "azure-auth", ID, &foreign),
        401,
        "UnauthorizedError",
        "Invalid signing key",
    );
    assert_error(
        &jwt_login(&c, "azure-auth", "nobody", &token),
        404,
        "NotFound",
        "Azure auth method not found for identity, did you configure Azure Auth?",
    );
    assert_eq!(cloud.count(CloudRoute::AzureImds), 3);
}

#[test]
fn azure_workload_identity_exchanges_the_projected_token() {
    let cloud = FakeCloud::start();
    cloud.azure_workload_identity(CLIENT_ID, OBJECT_ID);
    let fake = FakeInfisical::start(World::empty().azure_identity(
        ID,
        cloud.azure_auth(RESOURCE, &[OBJECT_ID]),
        TTL,
        MAX_TTL,
    ));
    let c = Client::new(&fake.url());
    let exchange = |assertion: &str| {
        let form = format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        );
        raw(
            &cloud.url(),
            "POST",
            &format!("/{}/oauth2/v2.0/token", cloud.azure_tenant()),
            &[(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            &form,
        )
    };
    let r = exchange(&cloud.service_account_token(NS, SA, &["api://AzureADTokenExchange"]));
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_token(&jwt_login(&c, "azure-auth", ID, &token));
    let wrong = exchange(&cloud.service_account_token(NS, SA, &["other"]));
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (400, json!("invalid_client"))
    );
    assert_eq!(cloud.count(CloudRoute::AzureToken), 2);
    assert_eq!(cloud.count(CloudRoute::AzureKeys), 1);
}

// ----- faults, down, counts -----

#[test]
fn injected_faults_and_down_mode_reach_the_login() {
    let cloud = FakeCloud::start();
    let fake = FakeInfisical::start(World::empty().oidc_identity(
        ID,
        cloud.oidc_auth(&[AUDIENCE], SUBJECT),
        TTL,
        MAX_TTL,
    ));
    let c = Client::new(&fake.url());
    let token = cloud.service_account_token(NS, SA, &[AUDIENCE]);
    cloud.inject(CloudRoute::Jwks, 503, "unavailable", 1);
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &token),
        401,
        "UnauthorizedError",
        "Access denied: Failed to retrieve signing key from OIDC provider: Request failed with status code 503",
    );
    assert_token(&jwt_login(&c, "oidc-auth", ID, &token));
    cloud.inject(CloudRoute::Any, 200, "{}", 1);
    assert_error(
        &jwt_login(&c, "oidc-auth", ID, &token),
        401,
        "UnauthorizedError",
        "Access denied: OIDC discovery document does not contain a jwks_uri. The identity provider may be misconfigured.",
    );
    cloud.set_down(true);
    let r = jwt_login(&c, "oidc-auth", ID, &token);
    assert_eq!(r.status, 401, "{}", r.body);
    let message = r.json()["message"].as_str().expect("message").to_string();
    assert!(
        message.starts_with(&format!(
            "Access denied: Failed to fetch OIDC discovery document from {}. ",
            cloud.issuer()
        )),
        "{message}"
    );
    cloud.set_down(false);
    assert_token(&jwt_login(&c, "oidc-auth", ID, &token));
    assert_eq!(cloud.count(CloudRoute::OidcDiscovery), 4);
    assert_eq!(cloud.count(CloudRoute::Jwks), 3);
    assert_eq!(
        cloud.requests().iter().filter(|r| r.status == 503).count(),
        1
    );
    assert_eq!(fake.count(Route::OidcLogin), 5);
    assert_eq!(fake.logins(), 2);
}
