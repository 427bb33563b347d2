//! The machine-identity logins that verify a cloud credential by calling out (OIDC, JWT, AWS,
//! GCP, Azure Auth): same checks, order, status codes and messages as Infisical's
//! `identity-*-auth-service.ts`. They run without holding the state lock while they fetch
//! discovery documents, keys or replay a request to STS.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::cloud::{AwsAuth, AzureAuth, GcpAuth, GcpAuthType, JwtAuth, JwtKeys, OidcAuth};
use crate::http_client;
use crate::jwt::{self, Decoded, Expect, PublicKey};
use crate::routes::{
    error, internal_error, parse_body, required_strings, token_reply, unauthorized, Reply, Request,
};
use crate::server::Shared;
use crate::util::unix_secs;
use crate::world::Identity;
use crate::Route;

/// Whether `route` is one of the logins answered here.
pub(crate) fn calls_out(route: Route) -> bool {
    matches!(
        route,
        Route::OidcLogin | Route::JwtLogin | Route::AwsLogin | Route::GcpLogin | Route::AzureLogin
    )
}

/// Answers a login: rate limit, body, the method's checks, then a token like every login.
pub(crate) async fn handle(shared: &Shared, req: &Request, route: Route) -> Reply {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let limit_headers = match shared.lock().limits.hit(route) {
        Ok(h) => h,
        Err(reply) => return reply,
    };
    let verified = match route {
        Route::OidcLogin => oidc(shared, &body).await,
        Route::JwtLogin => jwt_login(shared, &body).await,
        Route::AwsLogin => aws(shared, &body).await,
        Route::GcpLogin => gcp(shared, &body).await,
        _ => azure(shared, &body).await,
    };
    let mut reply = match verified {
        Ok(identity_id) => issue(shared, &identity_id),
        Err(reply) => reply,
    };
    let mut headers = limit_headers;
    headers.append(&mut reply.headers);
    reply.headers = headers;
    reply
}

/// Issues an access token with the identity's TTLs, like the other logins.
fn issue(shared: &Shared, identity_id: &str) -> Reply {
    let mut st = shared.lock();
    let Some((ttl, max_ttl)) = st.world.identity(identity_id).map(|i| (i.ttl, i.max_ttl)) else {
        return unauthorized("Identity not found");
    };
    let token = st.tokens.issue(identity_id, None, ttl, max_ttl);
    st.logins += 1;
    token_reply(&token, ttl, max_ttl)
}

/// The identity's configuration of one method, and whether array audiences answer 500.
fn config<T>(
    shared: &Shared,
    identity_id: &str,
    pick: impl Fn(&Identity) -> Option<T>,
    not_configured: &str,
) -> Result<(T, bool), Reply> {
    let st = shared.lock();
    st.world
        .identity(identity_id)
        .and_then(pick)
        .map(|c| (c, st.world.rejects_list_audience))
        .ok_or_else(|| error(404, not_configured, "NotFound"))
}

fn forbidden(message: &str) -> Reply {
    error(403, message, "ForbiddenError")
}

/// How the error handler answers a `jsonwebtoken` error thrown out of a service.
fn token_error(message: &str) -> Reply {
    error(403, jwt::token_error_message(message), "TokenError")
}

async fn get_json(url: &str) -> Result<Value, String> {
    http_client::send("GET", url, &[], b"").await?.json()
}

/// The signing keys of a JWKS document, by `kid`, as `jwks-rsa` keeps them (`use` absent or
/// `sig`, RSA only).
async fn fetch_jwks(url: &str) -> Result<Vec<(Option<String>, PublicKey)>, String> {
    let doc = get_json(url).await?;
    let keys: Vec<(Option<String>, PublicKey)> = doc
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|k| matches!(k.get("use").and_then(Value::as_str), None | Some("sig")))
        .filter_map(|k| {
            let kid = k.get("kid").and_then(Value::as_str).map(String::from);
            PublicKey::from_jwk(k).map(|key| (kid, key))
        })
        .collect();
    if keys.is_empty() {
        return Err("The JWKS endpoint did not contain any signing keys".into());
    }
    Ok(keys)
}

/// JavaScript truthiness of a claim.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}

/// `getValueByDot`: `a.b.c` through nested objects.
fn value_by_dot<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// `doesFieldValueMatch…Policy`: booleans against "true", numbers against an integer, arrays
/// by any entry, strings by glob. A value the glob matcher cannot take is the server's 500.
fn field_matches(value: Option<&Value>, pattern: &str) -> Result<bool, Reply> {
    match value {
        Some(Value::Bool(b)) => Ok(*b == (pattern == "true")),
        Some(Value::Number(n)) => Ok(pattern.parse::<f64>().ok() == n.as_f64()),
        Some(Value::String(s)) => Ok(jwt::glob_match(s, pattern)),
        Some(Value::Array(list)) => Ok(list
            .iter()
            .any(|e| e.as_str().is_some_and(|s| jwt::glob_match(s, pattern)))),
        _ => Err(internal_error()),
    }
}

/// The audience check; an array `aud` is the 500 of 2024 releases when `rejects_list` is on.
fn audience_allowed(
    aud: Option<&Value>,
    allowed: &[String],
    rejects_list: bool,
) -> Result<bool, Reply> {
    if rejects_list && matches!(aud, Some(Value::Array(_))) {
        return Err(internal_error());
    }
    for pattern in allowed {
        if field_matches(aud, pattern)? {
            return Ok(true);
        }
    }
    Ok(false)
}

// ----- OIDC Auth -----

async fn oidc(shared: &Shared, body: &Value) -> Result<String, Reply> {
    let fields = required_strings(body, &["identityId", "jwt"])?;
    let (identity_id, token) = (&fields[0], &fields[1]);
    let (cfg, rejects_list): (OidcAuth, bool) = config(
        shared,
        identity_id,
        |i| i.oidc.clone(),
        "OIDC auth method not found for identity, did you configure OIDC auth?",
    )?;
    let discovery = get_json(&format!(
        "{}/.well-known/openid-configuration",
        cfg.discovery_url
    ))
    .await
    .map_err(|e| {
        unauthorized(&format!(
            "Access denied: Failed to fetch OIDC discovery document from {}. {e}",
            cfg.discovery_url
        ))
    })?;
    let Some(jwks_uri) = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    else {
        return Err(unauthorized("Access denied: OIDC discovery document does not contain a jwks_uri. The identity provider may be misconfigured."));
    };
    let decoded = Decoded::parse(token).ok_or_else(|| unauthorized("Invalid JWT"))?;
    let expect = Expect {
        audience: None,
        issuer: Some(cfg.bound_issuer.as_str()).filter(|i| !i.is_empty()),
    };
    let claims = match decoded.kid() {
        Some(kid) => {
            let keys = fetch_jwks(jwks_uri).await.map_err(|e| {
                unauthorized(&format!(
                    "Access denied: Failed to retrieve signing key from OIDC provider: {e}"
                ))
            })?;
            let Some((_, key)) = keys.iter().find(|(k, _)| k.as_deref() == Some(kid)) else {
                return Err(unauthorized(&format!("Access denied: Unable to verify JWT signature. The signing key '{kid}' was not found in the OIDC provider's JWKS endpoint. This may indicate an invalid token or misconfigured OIDC provider.")));
            };
            jwt::verify(token, Some(key), &expect)
                .map_err(|e| unauthorized(&format!("Access denied: {e}")))?
                .claims
        }
        None => {
            let keys = fetch_jwks(jwks_uri).await.map_err(|e| {
                unauthorized(&format!(
                    "Access denied: Failed to retrieve signing keys from OIDC provider: {e}"
                ))
            })?;
            if keys.len() > 10 {
                return Err(unauthorized(&format!("Access denied: OIDC provider has {} signing keys. Tokens must include 'kid' header when provider has more than 10 keys.", keys.len())));
            }
            let mut last_error = String::from("Invalid token");
            let mut verified = None;
            for (_, key) in &keys {
                match jwt::verify(token, Some(key), &expect) {
                    Ok(d) => {
                        verified = Some(d.claims);
                        break;
                    }
                    Err(e) => last_error = e,
                }
            }
            verified.ok_or_else(|| {
                unauthorized(&format!("Access denied: Unable to verify JWT signature with any available signing key. {last_error}"))
            })?
        }
    };
    if !cfg.bound_subject.is_empty() && !field_matches(claims.get("sub"), &cfg.bound_subject)? {
        return Err(forbidden("Access denied: OIDC subject not allowed."));
    }
    if !cfg.bound_audiences.is_empty()
        && !audience_allowed(claims.get("aud"), &cfg.bound_audiences, rejects_list)?
    {
        return Err(unauthorized("Access denied: OIDC audience not allowed."));
    }
    for (key, allowed) in &cfg.bound_claims {
        let value = value_by_dot(&claims, key);
        if !truthy(value) {
            return Err(unauthorized(&format!(
                "Access denied: token has no {key} field"
            )));
        }
        let mut matched = false;
        for pattern in allowed {
            matched |= field_matches(value, pattern)?;
        }
        if !matched {
            return Err(unauthorized("Access denied: OIDC claim not allowed."));
        }
    }
    Ok(identity_id.clone())
}

// ----- JWT Auth -----

async fn jwt_login(shared: &Shared, body: &Value) -> Result<String, Reply> {
    let fields = required_strings(body, &["identityId", "jwt"])?;
    let (identity_id, token) = (&fields[0], &fields[1]);
    let (cfg, rejects_list): (JwtAuth, bool) = config(
        shared,
        identity_id,
        |i| i.jwt.clone(),
        "JWT auth method not found for identity, did you configure JWT auth?",
    )?;
    let decoded = Decoded::parse(token).ok_or_else(|| unauthorized("Invalid JWT"))?;
    let claims = match &cfg.keys {
        JwtKeys::Jwks(url) => {
            // A failed fetch or an unknown kid escapes the service as a plain error: 500.
            let keys = fetch_jwks(url).await.map_err(|_| internal_error())?;
            let key = keys
                .iter()
                .find(|(k, _)| k.as_deref() == decoded.kid())
                .map(|(_, key)| key)
                .ok_or_else(internal_error)?;
            jwt::verify(token, Some(key), &Expect::default())
                .map_err(|e| unauthorized(&format!("Access denied: {e}")))?
                .claims
        }
        JwtKeys::Static(pems) => {
            let mut errors = Vec::new();
            let mut verified = None;
            for pem in pems {
                match PublicKey::from_spki_pem(pem) {
                    Some(key) => match jwt::verify(token, Some(&key), &Expect::default()) {
                        Ok(d) => verified = Some(d.claims),
                        Err(e) => errors.push(e),
                    },
                    None => errors.push(
                        "secretOrPublicKey must be an asymmetric key when using RS256".into(),
                    ),
                }
            }
            verified.ok_or_else(|| {
                unauthorized(&format!(
                    "Access denied: JWT verification failed with all keys. Errors - {}",
                    errors.join("; ")
                ))
            })?
        }
    };
    if !cfg.bound_issuer.is_empty()
        && claims.get("iss").and_then(Value::as_str) != Some(cfg.bound_issuer.as_str())
    {
        return Err(forbidden("Access denied: issuer mismatch"));
    }
    if !cfg.bound_subject.is_empty() {
        if !truthy(claims.get("sub")) {
            return Err(unauthorized("Access denied: token has no subject field"));
        }
        if !field_matches(claims.get("sub"), &cfg.bound_subject)? {
            return Err(forbidden("Access denied: subject not allowed"));
        }
    }
    if !cfg.bound_audiences.is_empty() {
        if !truthy(claims.get("aud")) {
            return Err(unauthorized("Access denied: token has no audience field"));
        }
        if !audience_allowed(claims.get("aud"), &cfg.bound_audiences, rejects_list)? {
            return Err(unauthorized("Access denied: token audience not allowed"));
        }
    }
    for (key, allowed) in &cfg.bound_claims {
        let value = value_by_dot(&claims, key);
        if !truthy(value) {
            return Err(unauthorized(&format!(
                "Access denied: token has no {key} field"
            )));
        }
        let mut matched = false;
        for pattern in allowed {
            matched |= field_matches(value, pattern)?;
        }
        if !matched {
            return Err(unauthorized(&format!(
                "Access denied: claim mismatch for field {key}"
            )));
        }
    }
    Ok(identity_id.clone())
}

// ----- AWS Auth -----

/// The region in the `Credential=` scope of a SigV4 `Authorization` header.
fn region_from_authorization(header: &str) -> Option<&str> {
    header
        .split(' ')
        .find_map(|field| field.strip_prefix("Credential="))
        .and_then(|credential| credential.split('/').nth(2))
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 20
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `extractPrincipalArn`: user and role ARNs as they are, `assumed-role/R/session` as
/// `assumed-role/R` (or as `iam::…:role/R` with `as_iam_role`). `None` is the server's 500.
fn principal_arn(arn: &str, as_iam_role: bool) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !matches!(parts[2], "iam" | "sts") {
        return None;
    }
    let resource: Vec<&str> = parts[5].split('/').collect();
    if resource.len() < 2 {
        return None;
    }
    let (kind, name) = match resource[0] {
        "assumed-role" if resource.len() >= 3 => (
            if as_iam_role { "role" } else { "assumed-role" },
            resource[1],
        ),
        "user" | "role" | "instance-profile" => (resource[0], resource[resource.len() - 1]),
        _ => return None,
    };
    let service = if as_iam_role { "iam" } else { parts[2] };
    Some(format!("arn:aws:{service}::{}:{kind}/{name}", parts[4]))
}

/// The server's ARN pattern: `*` matches anything, everything else itself.
fn star_match(value: &str, pattern: &str) -> bool {
    match pattern.split_once('*') {
        None => value == pattern,
        Some((head, tail)) => {
            value.starts_with(head)
                && (head.len()..=value.len())
                    .any(|i| value.is_char_boundary(i) && star_match(&value[i..], tail))
        }
    }
}

async fn aws(shared: &Shared, body: &Value) -> Result<String, Reply> {
    let fields = required_strings(body, &["identityId", "iamRequestBody", "iamRequestHeaders"])?;
    let identity_id = &fields[0];
    let method = body
        .get("iamHttpRequestMethod")
        .and_then(Value::as_str)
        .unwrap_or("POST")
        .to_string();
    let (cfg, _): (AwsAuth, bool) = config(
        shared,
        identity_id,
        |i| i.aws.clone(),
        "AWS auth method not found for identity, did you configure AWS auth?",
    )?;
    let headers: Map<String, Value> = STANDARD
        .decode(&fields[2])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(internal_error)?;
    let request_body = STANDARD.decode(&fields[1]).unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let region = header("authorization")
        .and_then(region_from_authorization)
        .filter(|r| valid_region(r))
        .ok_or_else(|| error(400, "Invalid AWS region", "BadRequest"))?;
    // The real server sends the request to https://sts.<region>.amazonaws.com; a signed Host
    // for another endpoint would not verify there.
    if header("host") != Some(format!("sts.{region}.amazonaws.com").as_str()) {
        return Err(internal_error());
    }
    let mut send_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect();
    if header("accept").is_none() {
        send_headers.push(("Accept".into(), "application/json, text/plain, */*".into()));
    }
    let response = http_client::send(&method, &cfg.sts_endpoint, &send_headers, &request_body)
        .await
        .and_then(|r| r.json())
        .map_err(|_| internal_error())?;
    let result = &response["GetCallerIdentityResponse"]["GetCallerIdentityResult"];
    let (Some(account), Some(arn)) = (result["Account"].as_str(), result["Arn"].as_str()) else {
        return Err(internal_error());
    };
    if !cfg.allowed_account_ids.is_empty()
        && !cfg.allowed_account_ids.iter().any(|a| a.trim() == account)
    {
        return Err(unauthorized("Access denied: AWS account ID not allowed."));
    }
    let formatted = principal_arn(arn, false).ok_or_else(internal_error)?;
    if !cfg.allowed_principal_arns.is_empty() {
        let as_role = principal_arn(arn, true).ok_or_else(internal_error)?;
        let allowed = cfg.allowed_principal_arns.iter().any(|pattern| {
            star_match(&formatted, pattern.trim()) || star_match(&as_role, pattern.trim())
        });
        if !allowed {
            return Err(unauthorized(&format!(
                "Access denied: AWS principal ARN not allowed. [principal-arn={formatted}]"
            )));
        }
    }
    Ok(identity_id.clone())
}

// ----- GCP Auth -----

/// `^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$`.
fn is_service_account_email(email: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    email.split_once('@').is_some_and(|(name, domain)| {
        ok(name)
            && domain
                .strip_suffix(".iam.gserviceaccount.com")
                .is_some_and(ok)
    })
}

/// google-auth-library's `verifySignedJwtWithCertsAsync`: every failure is a plain error,
/// which the server answers with 500.
fn verify_google_id_token(
    token: &str,
    keys: &[(Option<String>, PublicKey)],
    audience: &str,
) -> Result<Map<String, Value>, Reply> {
    let decoded = Decoded::parse(token).ok_or_else(internal_error)?;
    let (_, key) = keys
        .iter()
        .find(|(k, _)| k.as_deref() == decoded.kid())
        .ok_or_else(internal_error)?;
    // Times are checked below with Google's 300 s skew, so only the signature matters here.
    let mut claims = match jwt::verify(token, Some(key), &Expect::default()) {
        Ok(d) => d.claims,
        Err(e) if e == "jwt expired" || e == "jwt not active" => decoded.claims,
        Err(_) => return Err(internal_error()),
    };
    let now = unix_secs(std::time::SystemTime::now()) as f64;
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_f64),
        claims.get("exp").and_then(Value::as_f64),
    ) else {
        return Err(internal_error());
    };
    let in_time = exp < now + 86_400.0 && now >= iat - 300.0 && now <= exp + 300.0;
    let issuer_ok =
        claims.get("iss").and_then(Value::as_str) == Some("https://accounts.google.com");
    if !in_time || !issuer_ok || claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(internal_error());
    }
    claims.remove("signature");
    Ok(claims)
}

async fn gcp(shared: &Shared, body: &Value) -> Result<String, Reply> {
    let fields = required_strings(body, &["identityId", "jwt"])?;
    let (identity_id, token) = (&fields[0], &fields[1]);
    let (cfg, _): (GcpAuth, bool) = config(
        shared,
        identity_id,
        |i| i.gcp.clone(),
        "GCP auth method not found for identity, did you configure GCP auth?",
    )?;
    let (email, compute_engine) = match cfg.kind {
        GcpAuthType::IdToken => {
            let keys = fetch_jwks(&format!("{}/oauth2/v3/certs", cfg.google_url))
                .await
                .map_err(|_| internal_error())?;
            let claims = verify_google_id_token(token, &keys, identity_id)?;
            let Some(email) = claims
                .get("email")
                .and_then(Value::as_str)
                .map(String::from)
            else {
                return Err(unauthorized("You are not allowed to access this resource"));
            };
            let details = value_by_dot(&claims, "google.compute_engine").cloned();
            (email, details)
        }
        GcpAuthType::Iam => {
            let decoded = Decoded::parse(token).ok_or_else(internal_error)?;
            let sub = decoded.claim_str("sub").unwrap_or("").to_string();
            if !is_service_account_email(&sub) {
                return Err(unauthorized("Invalid service account identifier"));
            }
            let keys = fetch_jwks(&format!(
                "{}/service_accounts/v1/jwk/{}",
                cfg.google_url,
                sub.replace('@', "%40")
            ))
            .await
            .map_err(|_| internal_error())?;
            let key = keys
                .iter()
                .find(|(k, _)| k.as_deref() == decoded.kid())
                .map(|(_, key)| key);
            jwt::verify(token, key, &Expect::default()).map_err(|e| token_error(&e))?;
            if decoded.claim_str("aud") != Some(identity_id.as_str()) {
                return Err(unauthorized("Invalid audience in GCP IAM Token"));
            }
            (sub, None)
        }
    };
    if !cfg.allowed_service_accounts.is_empty()
        && !cfg
            .allowed_service_accounts
            .iter()
            .any(|a| a.trim() == email)
    {
        return Err(unauthorized(
            "Access denied: GCP service account not allowed.",
        ));
    }
    if let Some(details) = compute_engine {
        let field = |name: &str| details.get(name).and_then(Value::as_str).unwrap_or("");
        if !cfg.allowed_projects.is_empty()
            && !cfg
                .allowed_projects
                .iter()
                .any(|p| p.trim() == field("project_id"))
        {
            return Err(unauthorized("Access denied: GCP project not allowed."));
        }
        if !cfg.allowed_zones.is_empty()
            && !cfg.allowed_zones.iter().any(|z| z.trim() == field("zone"))
        {
            return Err(unauthorized("Access denied: GCP zone not allowed."));
        }
    }
    Ok(identity_id.clone())
}

// ----- Azure Auth -----

async fn azure(shared: &Shared, body: &Value) -> Result<String, Reply> {
    let fields = required_strings(body, &["identityId", "jwt"])?;
    let (identity_id, token) = (&fields[0], &fields[1]);
    let (cfg, _): (AzureAuth, bool) = config(
        shared,
        identity_id,
        |i| i.azure.clone(),
        "Azure auth method not found for identity, did you configure Azure Auth?",
    )?;
    let decoded = Decoded::parse(token).ok_or_else(internal_error)?;
    let keys = fetch_jwks(&format!(
        "{}/{}/discovery/keys",
        cfg.authority_url, cfg.tenant_id
    ))
    .await
    .map_err(|_| internal_error())?;
    let Some((_, key)) = keys.iter().find(|(k, _)| k.as_deref() == decoded.kid()) else {
        return Err(unauthorized("Invalid signing key"));
    };
    let aud = decoded.claim_str("aud").ok_or_else(internal_error)?;
    let mut resource = cfg.resource.as_str();
    if !aud.ends_with('/') && resource.ends_with('/') {
        resource = &resource[..resource.len() - 1];
    }
    let issuer = format!("https://sts.windows.net/{}/", cfg.tenant_id);
    let claims = jwt::verify(
        token,
        Some(key),
        &Expect {
            audience: Some(resource),
            issuer: Some(&issuer),
        },
    )
    .map_err(|e| token_error(&e))?
    .claims;
    if claims.get("tid").and_then(Value::as_str) != Some(cfg.tenant_id.as_str()) {
        return Err(unauthorized("Tenant ID mismatch"));
    }
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or("undefined");
    if !cfg.allowed_service_principal_ids.is_empty()
        && !cfg
            .allowed_service_principal_ids
            .iter()
            .any(|id| id.trim() == oid)
    {
        return Err(unauthorized(&format!(
            "Service principal '{oid}' not allowed"
        )));
    }
    Ok(identity_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns() {
        let assumed = "arn:aws:sts::123456789012:assumed-role/app-role/i-0abc";
        assert_eq!(
            principal_arn(assumed, false).as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/app-role")
        );
        assert_eq!(
            principal_arn(assumed, true).as_deref(),
            Some("arn:aws:iam::123456789012:role/app-role")
        );
        assert_eq!(
            principal_arn("arn:aws:iam::123456789012:user/path/bob", false).as_deref(),
            Some("arn:aws:iam::123456789012:user/bob")
        );
        assert_eq!(principal_arn("arn:aws:s3:::bucket", false), None);
        assert!(star_match("arn:aws:iam::1:role/x", "arn:aws:iam::1:*"));
        assert!(!star_match("arn:aws:iam::2:role/x", "arn:aws:iam::1:*"));
    }

    #[test]
    fn regions_and_emails() {
        let header = "AWS4-HMAC-SHA256 Credential=AKID/20230719/eu-west-1/sts/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(region_from_authorization(header), Some("eu-west-1"));
        assert!(!valid_region("EU"));
        assert!(is_service_account_email(
            "app@my-proj.iam.gserviceaccount.com"
        ));
        assert!(!is_service_account_email(
            "1-compute@developer.gserviceaccount.com"
        ));
    }
}
