//! Replays the exchanges recorded from a real Infisical server (`fixtures/`) against the fake
//! and compares the answers.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{fixture, Client, Ordered, Resp};
use fake_infisical::{sample, FakeInfisical, Route, World};
use serde_json::Value;

/// Sends the recorded request, with `REDACTED` (credentials or token) replaced by `secret`.
fn send(client: &Client, fx: &Value, secret: Option<&str>) -> Resp {
    let req = &fx["request"];
    let fill = |s: &str| -> String {
        if s.contains("REDACTED") {
            s.replace(
                "REDACTED",
                secret.unwrap_or_else(|| panic!("{} needs a credential", fx["name"])),
            )
        } else {
            s.to_string()
        }
    };
    let headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .expect("request headers")
        .iter()
        .filter(|(k, _)| k.as_str() != "User-Agent")
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                fill(v.as_str().expect("header value")),
            )
        })
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = req["bodyText"].as_str().map(fill);
    client
        .send(
            req["method"].as_str().expect("method"),
            req["url"].as_str().expect("url"),
            &headers,
            body.as_deref(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", fx["name"]))
}

fn recorded_header<'a>(fx: &'a Value, name: &str) -> Option<&'a str> {
    fx["response"]["headers"]
        .as_array()
        .expect("response headers")
        .iter()
        .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

/// (key, value, path, environment, type, tag slugs) of each secret, sorted.
fn secret_set(list: &[Ordered]) -> Vec<String> {
    let text = |o: &Ordered, k: &str| match o.get(k) {
        Some(Ordered::String(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => "-".into(),
    };
    let mut v: Vec<String> = list
        .iter()
        .map(|s| {
            let tags: Vec<String> = s
                .get("tags")
                .map(|t| t.items().iter().map(|t| text(t, "slug")).collect())
                .unwrap_or_default();
            format!(
                "{}={:?} path={} env={} type={} ws={} tags={tags:?}",
                text(s, "secretKey"),
                text(s, "secretValue"),
                text(s, "secretPath"),
                text(s, "environment"),
                text(s, "type"),
                text(s, "workspace").len(),
            )
        })
        .collect();
    v.sort();
    v
}

fn check_secret_fields(name: &str, expected: &[Ordered], got: &[Ordered]) {
    if let Some(first) = expected.first() {
        for s in got {
            assert_eq!(s.keys(), first.keys(), "{name}: secret field names/order");
        }
    }
}

/// Compares a replayed answer with the recorded one.
fn check(fx: &Value, got: &Resp) {
    let name = fx["name"].as_str().expect("name");
    let exp = &fx["response"];
    let exp_text = exp["bodyText"].as_str().expect("bodyText");
    assert_eq!(
        u64::from(got.status),
        exp["status"].as_u64().expect("status"),
        "{name}: status; body {}",
        got.body
    );
    assert_eq!(
        got.header("content-type"),
        recorded_header(fx, "content-type"),
        "{name}: content-type"
    );
    let etag = got
        .header("etag")
        .unwrap_or_else(|| panic!("{name}: no etag"));
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{name}: etag {etag}"
    );
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ] {
        assert_eq!(
            got.header(h).is_some(),
            recorded_header(fx, h).is_some(),
            "{name}: presence of {h}"
        );
    }
    if exp_text.is_empty() {
        assert!(got.body.is_empty(), "{name}: body should be empty");
        return;
    }
    let expected = Ordered::parse(exp_text);
    let actual = Ordered::parse(&got.body);
    assert_eq!(actual.keys(), expected.keys(), "{name}: top-level keys");
    if expected.get("statusCode").is_some() {
        assert_eq!(got.body, exp_text, "{name}: error body");
    } else if let Some(list) = expected.get("secrets") {
        let got_list = actual.get("secrets").expect("secrets").items();
        assert_eq!(
            secret_set(got_list),
            secret_set(list.items()),
            "{name}: secrets"
        );
        check_secret_fields(name, list.items(), got_list);
        let imports = |o: &Ordered| -> Vec<(String, Vec<String>)> {
            o.get("imports")
                .map(|i| {
                    i.items()
                        .iter()
                        .map(|e| {
                            let head = format!(
                                "{:?} {:?} {:?} keys={:?}",
                                e.get("secretPath"),
                                e.get("environment"),
                                e.get("folderId"),
                                e.keys()
                            );
                            (head, secret_set(e.get("secrets").expect("secrets").items()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(imports(&actual), imports(&expected), "{name}: imports");
        if let (Some(e), Some(a)) = (expected.get("imports"), actual.get("imports")) {
            for (ei, ai) in e.items().iter().zip(a.items()) {
                check_secret_fields(
                    name,
                    ei.get("secrets").expect("secrets").items(),
                    ai.get("secrets").expect("secrets").items(),
                );
            }
        }
    } else if let Some(secret) = expected.get("secret") {
        let got_secret = actual.get("secret").expect("secret");
        assert_eq!(got_secret.keys(), secret.keys(), "{name}: secret fields");
        assert_eq!(
            secret_set(std::slice::from_ref(got_secret)),
            secret_set(std::slice::from_ref(secret)),
            "{name}: secret"
        );
    } else if expected.get("accessToken").is_some() {
        for k in ["expiresIn", "accessTokenMaxTTL", "tokenType"] {
            assert_eq!(actual.get(k), expected.get(k), "{name}: {k}");
        }
        let token = match actual.get("accessToken") {
            Some(Ordered::String(t)) => t.clone(),
            other => panic!("{name}: accessToken {other:?}"),
        };
        assert_eq!(token.split('.').count(), 3, "{name}: JWT shape");
    } else if expected.get("date").is_some() {
        // status: only the date differs
    } else {
        assert_eq!(got.body, exp_text, "{name}: body");
    }
}

fn replay(client: &Client, number: &str, secret: Option<&str>) -> Resp {
    let fx = fixture(number);
    let got = send(client, &fx, secret);
    check(&fx, &got);
    got
}

fn setup() -> (FakeInfisical, Client) {
    let fake = FakeInfisical::start(World::sample());
    let client = Client::new(&fake.url());
    (fake, client)
}

#[test]
fn status_and_universal_auth_login() {
    let (fake, c) = setup();
    replay(&c, "01", None);
    replay(&c, "02", Some(sample::UA_CLIENT_SECRET));
    replay(&c, "03", Some(sample::UA_CLIENT_SECRET));
    replay(&c, "04", None);
    replay(&c, "05", None);
    replay(&c, "06", None);
    replay(&c, "07", None);
    replay(&c, "08", Some(sample::RENEWABLE_CLIENT_SECRET));
    replay(&c, "52", Some(sample::SHORT_TTL_CLIENT_SECRET));
    assert_eq!(fake.logins(), 4);
    assert_eq!(fake.count(Route::UniversalAuthLogin), 8);
}

#[test]
fn login_token_claims_match_recorded_ones() {
    use base64::Engine;
    let (_fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    let parts: Vec<&str> = token.split('.').collect();
    let decode = |p: &str| {
        Ordered::parse(
            &String::from_utf8(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .expect("base64url"),
            )
            .expect("utf-8"),
        )
    };
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::fixtures_dir().join("jwt-claims-universal-auth-access-token.json"),
        )
        .expect("claims fixture"),
    )
    .expect("claims JSON");
    let header = decode(parts[0]);
    assert_eq!(header.keys(), ["alg", "typ"]);
    let payload = decode(parts[1]);
    assert_eq!(
        payload.keys(),
        [
            "identityId",
            "clientSecretId",
            "identityAccessTokenId",
            "authTokenType",
            "iat",
            "exp"
        ]
    );
    assert_eq!(
        payload.get("identityId"),
        Some(&Ordered::String(
            recorded["payload"]["identityId"]
                .as_str()
                .expect("id")
                .into()
        ))
    );
    let num = |o: &Ordered, k: &str| match o.get(k) {
        Some(Ordered::Number(n)) => n.parse::<u64>().expect("number"),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(num(&payload, "exp") - num(&payload, "iat"), 2_592_000);
}

#[test]
fn renewals() {
    let (fake, c) = setup();
    let renewable = c.login(sample::RENEWABLE_CLIENT_ID, sample::RENEWABLE_CLIENT_SECRET);
    let renewed = replay(&c, "09", Some(&renewable));
    assert_eq!(
        renewed.json()["accessToken"],
        renewable.as_str(),
        "same token"
    );
    replay(&c, "10", Some(&renewable));
    let default_ttl = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    replay(&c, "11", Some(&default_ttl));
    replay(&c, "12", Some(&default_ttl));
    replay(&c, "13", None);
    assert_eq!(fake.renewals(), 1);
}

#[test]
fn listing_and_single_secrets() {
    let (_fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    for n in [
        "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28",
        "34", "35", "36", "37", "38", "39", "40", "41",
    ] {
        replay(&c, n, Some(&token));
    }
}

#[test]
fn sample_bodies_are_byte_identical_to_the_recorded_ones() {
    let (_fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    for n in [
        "14", "15", "16", "17", "18", "19", "20", "21", "22", "25", "34", "35", "36", "37",
    ] {
        let fx = fixture(n);
        let got = send(&c, &fx, Some(&token));
        assert_eq!(
            got.body,
            fx["response"]["bodyText"].as_str().expect("bodyText"),
            "{n}"
        );
        assert_eq!(
            got.header("etag"),
            recorded_header(&fx, "etag"),
            "{n}: etag"
        );
    }
}

#[test]
fn authentication_failures() {
    let (_fake, c) = setup();
    replay(&c, "29", None);
    replay(&c, "30", None);
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    let mut tampered = token.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    replay(&c, "31", Some(&tampered));
    let outsider = c.login(sample::NO_ACCESS_CLIENT_ID, sample::NO_ACCESS_CLIENT_SECRET);
    replay(&c, "32", Some(&outsider));
    replay(&c, "33", Some(&outsider));
}

#[test]
fn v4_route_is_missing_by_default() {
    let (fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    replay(&c, "42", Some(&token));
    assert_eq!(fake.count(Route::Other), 1);
}

#[test]
fn token_auth() {
    let (fake, c) = setup();
    let token = fake.issue_token(sample::TOKEN_IDENTITY_ID);
    replay(&c, "43", Some(&token));
    replay(&c, "44", Some(&token));
    let after = c.get(
        "/api/v3/secrets/raw?workspaceId=cb7fcb73-a6e6-490e-ae23-bc4878a67111&environment=dev",
        Some(&token),
    );
    assert_eq!(after.status, 401);
    assert_eq!(fake.logins(), 0);
}

#[test]
fn kubernetes_auth() {
    let (fake, c) = setup();
    replay(&c, "45", None);
    replay(&c, "46", None);
    replay(&c, "47", None);
    replay(&c, "48", None);
    assert_eq!(fake.logins(), 1);
    let logins: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::KubernetesLogin)
        .collect();
    assert_eq!(logins.len(), 4);
    assert!(logins[0].body.contains(sample::K8S_VALID_JWT));
    assert!(logins[1].body.contains(sample::K8S_OTHER_NS_JWT));
}

#[test]
fn revocation() {
    let (_fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    replay(&c, "49", Some(&token));
    replay(&c, "50", Some(&token));
    replay(&c, "51", Some(&token));
}

/// 52–56 with the short-TTL identity scaled down (TTL 1 s, max TTL 3 s instead of 5/15).
#[test]
fn short_ttl_expiry() {
    let (fake, c) = setup();
    fake.set_identity_ttl(sample::SHORT_TTL_IDENTITY_ID, 1, 3);
    let token = c.login(sample::SHORT_TTL_CLIENT_ID, sample::SHORT_TTL_CLIENT_SECRET);
    std::thread::sleep(Duration::from_millis(1300));
    replay(&c, "53", Some(&token));
    replay(&c, "54", Some(&token));

    let token = c.login(sample::SHORT_TTL_CLIENT_ID, sample::SHORT_TTL_CLIENT_SECRET);
    std::thread::sleep(Duration::from_millis(400));
    let fx = fixture("55");
    let renewed = send(&c, &fx, Some(&token));
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    assert_eq!(renewed.json()["expiresIn"], 1);
    assert_eq!(renewed.json()["accessTokenMaxTTL"], 3);
    // Keep it alive by renewing until the max TTL passes; then the JWT itself has expired.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        let _ = c.renew(&token);
    }
    replay(&c, "56", Some(&token));
}

#[test]
fn rate_limit() {
    let (fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    fake.set_rate_limit(Route::ListSecrets, 2);
    replay(&c, "21", Some(&token));
    let last = replay(&c, "57", Some(&token));
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    let limited = replay(&c, "58", Some(&token));
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after seconds");
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("2"));
}

#[test]
fn the_comparison_notices_differences() {
    let (_fake, c) = setup();
    let token = c.login(sample::UA_CLIENT_ID, sample::UA_CLIENT_SECRET);
    let dev = send(&c, &fixture("14"), Some(&token));
    let prod = fixture("21");
    assert!(std::panic::catch_unwind(|| check(&prod, &dev)).is_err());
    let not_found = send(&c, &fixture("38"), Some(&token));
    let mut other_message = fixture("38");
    other_message["response"]["bodyText"] = Value::String(
        r#"{"statusCode":404,"message":"Secret with name 'X' not found","error":"NotFound"}"#
            .into(),
    );
    assert!(std::panic::catch_unwind(|| check(&other_message, &not_found)).is_err());
    check(&fixture("38"), &not_found);
}

#[test]
fn every_numbered_fixture_is_listed_in_the_index() {
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures_dir().join("index.json")).expect("index"),
    )
    .expect("index JSON");
    let mut statuses = BTreeMap::new();
    for e in index["exchanges"].as_array().expect("exchanges") {
        statuses.insert(
            e["file"].as_str().expect("file").to_string(),
            e["status"].as_u64().expect("status"),
        );
    }
    assert_eq!(statuses.len(), 58);
}
