//! What each cloud endpoint answers: the Kubernetes OIDC issuer, AWS STS / IMDSv2 / container
//! credentials, the GCE metadata server and Google's keys, Azure IMDS / AD token and keys.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::sigv4::{self, Authorization};
use super::CloudRoute;
use crate::jwt::{self, keys, Decoded, Expect, PublicKey, SigningKey};
use crate::routes::{Reply, Request, JSON};
use crate::util::{iso8601, new_uuid, parse_pairs, random_bytes, unix_secs};
use crate::RecordedRequest;

/// How far an `X-Amz-Date` may be from now.
const MAX_SKEW: u64 = 300;
/// Lifetime of every token and temporary credential handed out.
const CREDENTIAL_TTL: u64 = 3600;
/// The audience AWS requires in web-identity tokens.
const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// The audience Azure AD requires in federated client assertions.
const AZURE_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// An AWS access key the fake STS knows.
#[derive(Clone)]
pub(crate) struct AwsKey {
    pub secret: String,
    /// Set for temporary keys, which must sign `x-amz-security-token` with this value.
    pub session_token: Option<String>,
    pub arn: String,
}

/// An Azure identity that can get tokens (managed or workload).
#[derive(Clone)]
pub(crate) struct AzureIdentity {
    /// `None` for the system-assigned managed identity (reached without `client_id`).
    pub requested_as: Option<String>,
    pub client_id: String,
    pub object_id: String,
}

/// An instance role served by IMDS.
pub(crate) struct InstanceRole {
    pub name: String,
    pub arn: String,
    pub region: String,
}

/// A queued fault: the next `times` hits of `route` answer `status` with `body`.
pub(crate) struct CloudFault {
    pub route: CloudRoute,
    pub status: u16,
    pub body: String,
    pub times: usize,
}

/// Everything the cloud fakes know.
pub(crate) struct CloudState {
    pub base_url: String,
    pub tenant: String,
    pub issuer_key: SigningKey,
    pub foreign_key: SigningKey,
    pub google_key: SigningKey,
    pub azure_key: SigningKey,
    /// The key material of every service-account key file handed out.
    pub service_account_key: SigningKey,
    /// (email, private_key_id) of every key file handed out.
    pub service_account_key_ids: Vec<(String, String)>,
    pub aws_keys: HashMap<String, AwsKey>,
    /// Role ARN → the ARN its sessions have.
    pub web_identity_roles: HashMap<String, String>,
    /// (authorization token, ARN) of the container-credentials endpoint.
    pub container: Option<(String, String)>,
    pub instance_role: Option<InstanceRole>,
    /// IMDSv2 session tokens and when they expire.
    pub imds_tokens: HashMap<String, Instant>,
    pub gce_account: Option<String>,
    pub azure_managed: Vec<AzureIdentity>,
    pub azure_workload: Vec<AzureIdentity>,
    pub faults: Vec<CloudFault>,
    pub requests: Vec<RecordedRequest<CloudRoute>>,
}

impl CloudState {
    pub fn new(base_url: String) -> CloudState {
        CloudState {
            base_url,
            tenant: new_uuid(),
            issuer_key: SigningKey::load("k8s-issuer-key", keys::ISSUER),
            foreign_key: SigningKey::load("k8s-issuer-key", keys::FOREIGN),
            google_key: SigningKey::load(&hex_id::<20>(), keys::GOOGLE),
            azure_key: SigningKey::load("fake-aad-key", keys::AZURE),
            service_account_key: SigningKey::load("service-account", keys::GCP_SERVICE_ACCOUNT),
            service_account_key_ids: Vec::new(),
            aws_keys: HashMap::new(),
            web_identity_roles: HashMap::new(),
            container: None,
            instance_role: None,
            imds_tokens: HashMap::new(),
            gce_account: None,
            azure_managed: Vec::new(),
            azure_workload: Vec::new(),
            faults: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Takes one use of the first fault queued for `route` (or for [`CloudRoute::Any`]).
    pub fn take_fault(&mut self, route: CloudRoute) -> Option<Reply> {
        let i = self
            .faults
            .iter()
            .position(|f| f.times > 0 && (f.route == route || f.route == CloudRoute::Any))?;
        let fault = &mut self.faults[i];
        let reply = raw_reply(fault.status, &fault.body);
        if fault.times != usize::MAX {
            fault.times -= 1;
            if fault.times == 0 {
                self.faults.remove(i);
            }
        }
        Some(reply)
    }

    /// Fresh temporary credentials for `arn`, registered with STS: (key id, secret, token).
    fn temporary_credentials(&mut self, arn: &str) -> (String, String, String) {
        let key_id = format!("ASIA{}", upper_alnum(16));
        let secret = base64_random::<30>();
        let token = base64_random::<96>();
        self.aws_keys.insert(
            key_id.clone(),
            AwsKey {
                secret: secret.clone(),
                session_token: Some(token.clone()),
                arn: arn.into(),
            },
        );
        (key_id, secret, token)
    }

    /// An Azure AD v1 access token for `resource`.
    fn azure_access_token(&self, identity: &AzureIdentity, resource: &str) -> String {
        let now = unix_secs(SystemTime::now());
        let issuer = format!("https://sts.windows.net/{}/", self.tenant);
        self.azure_key.sign(&json!({
            "aud": resource,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + CREDENTIAL_TTL,
            "aio": "fake",
            "appid": identity.client_id,
            "appidacr": "2",
            "idp": issuer,
            "oid": identity.object_id,
            "rh": "fake",
            "sub": identity.object_id,
            "tid": self.tenant,
            "uti": hex_id::<11>(),
            "ver": "1.0",
        }))
    }
}

/// Which endpoint a request is for.
pub(crate) fn classify(req: &Request, tenant: &str) -> CloudRoute {
    let path = req.path.as_str();
    match (req.method.as_str(), path) {
        ("GET", "/.well-known/openid-configuration") => CloudRoute::OidcDiscovery,
        ("GET", "/openid/v1/jwks") => CloudRoute::Jwks,
        ("POST", "/") | ("GET", "/") => match sts_params(req)
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.as_str())
        {
            Some("AssumeRoleWithWebIdentity") => CloudRoute::StsAssumeRoleWithWebIdentity,
            _ => CloudRoute::StsGetCallerIdentity,
        },
        ("PUT", "/latest/api/token") => CloudRoute::ImdsToken,
        ("GET", "/latest/meta-data/placement/region") => CloudRoute::ImdsRegion,
        ("GET", p) if p.starts_with("/latest/meta-data/iam/security-credentials") => {
            CloudRoute::ImdsCredentials
        }
        ("GET", "/aws/container-credentials") => CloudRoute::ContainerCredentials,
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/identity") => {
            CloudRoute::GceIdentity
        }
        ("GET", "/oauth2/v3/certs") => CloudRoute::GoogleCerts,
        ("GET", p) if p.starts_with("/service_accounts/v1/jwk/") => CloudRoute::GoogleCerts,
        ("GET", "/metadata/identity/oauth2/token") => CloudRoute::AzureImds,
        ("POST", p) if p == format!("/{tenant}/oauth2/v2.0/token") => CloudRoute::AzureToken,
        ("GET", p)
            if p == format!("/{tenant}/discovery/keys")
                || p == format!("/{tenant}/discovery/v2.0/keys") =>
        {
            CloudRoute::AzureKeys
        }
        _ => CloudRoute::Other,
    }
}

/// Answers a request no fault intercepted.
pub(crate) fn handle(st: &mut CloudState, req: &Request, route: CloudRoute) -> Reply {
    match route {
        CloudRoute::OidcDiscovery => Reply::json(
            200,
            &json!({
                "issuer": st.base_url,
                "jwks_uri": format!("{}/openid/v1/jwks", st.base_url),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }),
        ),
        CloudRoute::Jwks => Reply::json(200, &json!({"keys": [st.issuer_key.jwk()]})),
        CloudRoute::StsGetCallerIdentity => get_caller_identity(st, req),
        CloudRoute::StsAssumeRoleWithWebIdentity => assume_role_with_web_identity(st, req),
        CloudRoute::ImdsToken => imds_token(st, req),
        CloudRoute::ImdsCredentials => imds_credentials(st, req),
        CloudRoute::ImdsRegion => imds_region(st, req),
        CloudRoute::ContainerCredentials => container_credentials(st, req),
        CloudRoute::GceIdentity => gce_identity(st, req),
        CloudRoute::GoogleCerts => google_certs(st, req),
        CloudRoute::AzureImds => azure_imds(st, req),
        CloudRoute::AzureToken => azure_token(st, req),
        CloudRoute::AzureKeys => Reply::json(200, &json!({"keys": [st.azure_key.jwk()]})),
        CloudRoute::Other | CloudRoute::Any => text(404, "Not Found"),
    }
}

// ----- answers -----

fn text(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        content_type: "text/plain; charset=utf-8",
        body: body.as_bytes().to_vec(),
        json: false,
        truncated: false,
    }
}

fn xml(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        content_type: "text/xml",
        body: body.into_bytes(),
        json: false,
        truncated: false,
    }
}

/// An injected answer: JSON, XML or plain text by the look of the body.
fn raw_reply(status: u16, body: &str) -> Reply {
    let content_type = if serde_json::from_str::<Value>(body).is_ok() {
        JSON
    } else if body.trim_start().starts_with('<') {
        "text/xml"
    } else {
        "text/plain; charset=utf-8"
    };
    Reply {
        status,
        headers: Vec::new(),
        content_type,
        body: body.as_bytes().to_vec(),
        json: false,
        truncated: false,
    }
}

/// `2026-12-01T09:11:16Z`, how AWS writes credential expirations.
fn aws_time(secs: u64) -> String {
    let iso = iso8601(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    format!("{}Z", &iso[..19])
}

fn hex_id<const N: usize>() -> String {
    random_bytes::<N>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn upper_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_bytes::<32>()
        .iter()
        .take(n)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

fn base64_random<const N: usize>() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(random_bytes::<N>())
}

// ----- AWS STS -----

/// Query parameters plus form-body parameters.
fn sts_params(req: &Request) -> Vec<(String, String)> {
    let mut params = req.query.clone();
    let form = req
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form || req.header("content-type").is_none() {
        params.extend(parse_pairs(&String::from_utf8_lossy(&req.body)));
    }
    params
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An STS error: JSON when the client accepts it, else AWS's XML.
fn sts_error(req: &Request, status: u16, code: &str, message: &str) -> Reply {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let request_id = new_uuid();
    if accepts_json(req) {
        return Reply::json(
            status,
            &json!({"Error": {"Code": code, "Message": message, "Type": kind}, "RequestId": request_id}),
        );
    }
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
             <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            escape(message)
        ),
    )
}

fn accepts_json(req: &Request) -> bool {
    req.header("accept")
        .is_some_and(|a| a.contains("application/json"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// Checks a SigV4-signed request; gives the key's ARN.
fn verify_sigv4(st: &CloudState, req: &Request) -> Result<String, Reply> {
    let Some(header) = req.header("authorization") else {
        return Err(sts_error(
            req,
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        ));
    };
    let Some(auth) = Authorization::parse(header) else {
        return Err(sts_error(
            req,
            400,
            "IncompleteSignature",
            &format!("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization={header}"),
        ));
    };
    let Some(key) = st.aws_keys.get(&auth.access_key_id) else {
        return Err(sts_error(req, 403, "InvalidClientTokenId", INVALID_TOKEN));
    };
    let token_header = req.header("x-amz-security-token");
    let token_signed = auth
        .signed_headers
        .iter()
        .any(|h| h == "x-amz-security-token");
    let token_ok = match (&key.session_token, token_header) {
        (Some(expected), Some(got)) => expected == got && token_signed,
        (None, None) => true,
        _ => false,
    };
    if !token_ok {
        return Err(sts_error(req, 403, "InvalidClientTokenId", INVALID_TOKEN));
    }
    let Some(amz_date) = req.header("x-amz-date") else {
        return Err(sts_error(
            req,
            400,
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let signed_ok = ["host", "x-amz-date"]
        .iter()
        .all(|h| auth.signed_headers.iter().any(|s| s == h));
    let Some(when) = sigv4::parse_amz_date(amz_date).filter(|_| signed_ok) else {
        return Err(sts_error(
            req,
            403,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
        ));
    };
    let now = unix_secs(SystemTime::now());
    if when + MAX_SKEW < now {
        return Err(sts_error(
            req,
            403,
            "SignatureDoesNotMatch",
            &format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                sigv4::format_amz_date(now - MAX_SKEW),
                sigv4::format_amz_date(now)
            ),
        ));
    }
    if when > now + MAX_SKEW {
        return Err(sts_error(
            req,
            403,
            "SignatureDoesNotMatch",
            &format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
                sigv4::format_amz_date(now + MAX_SKEW),
                sigv4::format_amz_date(now)
            ),
        ));
    }
    if auth.service != "sts" || !amz_date.starts_with(&auth.date) {
        return Err(sts_error(
            req,
            403,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
        ));
    }
    let canonical = sigv4::canonical_request(
        &req.method,
        &req.path,
        &req.query,
        &req.headers,
        &auth.signed_headers,
        &req.body,
    );
    if sigv4::signature(&key.secret, amz_date, &auth, &canonical) != auth.signature {
        return Err(sts_error(
            req,
            403,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
        ));
    }
    Ok(key.arn.clone())
}

/// The account id (fifth field) of an ARN.
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// A stable, AWS-looking unique id for a principal.
fn user_id(arn: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, arn.as_bytes());
    let id: String = digest.as_ref()[..10]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    match arn.split_once(":assumed-role/") {
        Some((_, rest)) => format!("AROA{id}:{}", rest.split('/').nth(1).unwrap_or("session")),
        None => format!("AIDA{id}"),
    }
}

fn get_caller_identity(st: &mut CloudState, req: &Request) -> Reply {
    let arn = match verify_sigv4(st, req) {
        Ok(arn) => arn,
        Err(reply) => return reply,
    };
    let params = sts_params(req);
    if param(&params, "Action") != Some("GetCallerIdentity") {
        return sts_error(
            req,
            400,
            "InvalidAction",
            "Could not find operation for this request",
        );
    }
    let (account, user) = (account_of(&arn).to_string(), user_id(&arn));
    let request_id = new_uuid();
    if accepts_json(req) {
        return Reply::json(
            200,
            &json!({"GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {"Account": account, "Arn": arn, "UserId": user},
                "ResponseMetadata": {"RequestId": request_id}
            }}),
        );
    }
    xml(
        200,
        format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
             <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{user}</UserId>\n    \
             <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    \
             <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
            escape(&arn)
        ),
    )
}

fn assume_role_with_web_identity(st: &mut CloudState, req: &Request) -> Reply {
    let params = sts_params(req);
    let (Some(role_arn), Some(session), Some(token)) = (
        param(&params, "RoleArn"),
        param(&params, "RoleSessionName"),
        param(&params, "WebIdentityToken"),
    ) else {
        return sts_error(
            req,
            400,
            "ValidationError",
            "RoleArn, RoleSessionName and WebIdentityToken are required",
        );
    };
    let Some(assumed_arn) = st.web_identity_roles.get(role_arn).cloned() else {
        return sts_error(
            req,
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    };
    let key = PublicKey::from_jwk(&st.issuer_key.jwk());
    let decoded = Decoded::parse(token);
    let known_kid = decoded
        .as_ref()
        .is_some_and(|d| d.kid() == Some(st.issuer_key.kid.as_str()));
    if !known_kid {
        return sts_error(
            req,
            400,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
        );
    }
    let claims = match jwt::verify(token, key.as_ref(), &Expect::default()) {
        Ok(d) => d,
        Err(e) if e == "jwt expired" => {
            return sts_error(req, 400, "ExpiredTokenException", "Token expired");
        }
        Err(_) => {
            return sts_error(req, 400, "InvalidIdentityToken", "Token signature invalid");
        }
    };
    let audience_ok = match claims.claims.get("aud") {
        Some(Value::String(a)) => a == STS_AUDIENCE,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(STS_AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return sts_error(req, 400, "InvalidIdentityToken", "Incorrect token audience");
    }
    let subject = claims.claim_str("sub").unwrap_or("").to_string();
    let (key_id, secret, session_token) = st.temporary_credentials(&assumed_arn);
    let expiration = aws_time(unix_secs(SystemTime::now()) + CREDENTIAL_TTL);
    xml(
        200,
        format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
             <AssumeRoleWithWebIdentityResult>\n    \
             <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>\n    \
             <Audience>{STS_AUDIENCE}</Audience>\n    <AssumedRoleUser>\n      <Arn>{}</Arn>\n      \
             <AssumedRoleId>{}</AssumedRoleId>\n    </AssumedRoleUser>\n    <Credentials>\n      \
             <SessionToken>{session_token}</SessionToken>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n      \
             <Expiration>{expiration}</Expiration>\n      <AccessKeyId>{key_id}</AccessKeyId>\n    \
             </Credentials>\n    <Provider>{}</Provider>\n  </AssumeRoleWithWebIdentityResult>\n  \
             <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n\
             </AssumeRoleWithWebIdentityResponse>\n",
            escape(&subject),
            escape(&assumed_arn),
            escape(&user_id(&format!("{assumed_arn}/{session}"))),
            escape(&st.base_url),
            new_uuid()
        ),
    )
}

// ----- AWS IMDSv2 and container credentials -----

fn imds_token(st: &mut CloudState, req: &Request) -> Reply {
    let ttl = req
        .header("x-aws-ec2-metadata-token-ttl-seconds")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|t| (1..=21_600).contains(t));
    let Some(ttl) = ttl else {
        return text(400, "");
    };
    let token = base64_random::<42>();
    st.imds_tokens
        .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
    let mut reply = text(200, &token);
    reply.headers.push((
        "x-aws-ec2-metadata-token-ttl-seconds".into(),
        ttl.to_string(),
    ));
    reply
}

/// IMDSv2 requires a live session token on every GET.
fn imds_session_ok(st: &CloudState, req: &Request) -> bool {
    req.header("x-aws-ec2-metadata-token")
        .and_then(|t| st.imds_tokens.get(t))
        .is_some_and(|expires| *expires > Instant::now())
}

fn imds_credentials(st: &mut CloudState, req: &Request) -> Reply {
    if !imds_session_ok(st, req) {
        return text(401, "");
    }
    let Some(role) = st.instance_role.as_ref() else {
        return text(404, "");
    };
    let (name, arn) = (role.name.clone(), role.arn.clone());
    let rest = req
        .path
        .trim_start_matches("/latest/meta-data/iam/security-credentials");
    match rest {
        "" | "/" => text(200, &name),
        r if r.trim_start_matches('/') == name => {
            let (key_id, secret, token) = st.temporary_credentials(&arn);
            let now = unix_secs(SystemTime::now());
            Reply::json(
                200,
                &json!({
                    "Code": "Success",
                    "LastUpdated": aws_time(now),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": key_id,
                    "SecretAccessKey": secret,
                    "Token": token,
                    "Expiration": aws_time(now + CREDENTIAL_TTL),
                }),
            )
        }
        _ => text(404, ""),
    }
}

fn imds_region(st: &mut CloudState, req: &Request) -> Reply {
    if !imds_session_ok(st, req) {
        return text(401, "");
    }
    match st.instance_role.as_ref() {
        Some(role) => text(200, &role.region),
        None => text(404, ""),
    }
}

fn container_credentials(st: &mut CloudState, req: &Request) -> Reply {
    let Some((token, arn)) = st.container.clone() else {
        return text(404, "");
    };
    if req.header("authorization") != Some(token.as_str()) {
        return Reply::json(401, &json!({"message": "unauthorized"}));
    }
    let (key_id, secret, session_token) = st.temporary_credentials(&arn);
    Reply::json(
        200,
        &json!({
            "AccessKeyId": key_id,
            "SecretAccessKey": secret,
            "Token": session_token,
            "Expiration": aws_time(unix_secs(SystemTime::now()) + CREDENTIAL_TTL),
            "RoleArn": arn,
        }),
    )
}

// ----- GCP -----

fn gce_identity(st: &mut CloudState, req: &Request) -> Reply {
    if req.header("metadata-flavor") != Some("Google") {
        return Reply {
            content_type: "text/html; charset=UTF-8",
            ..text(403, "Missing required header: Metadata-Flavor: Google\n")
        };
    }
    let Some(email) = st.gce_account.clone() else {
        return text(404, "Not Found\n");
    };
    let query = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(audience) = query("audience").filter(|a| !a.is_empty()) else {
        return text(400, "non-empty audience parameter required\n");
    };
    let now = unix_secs(SystemTime::now());
    let numeric_id = "104560890000000000001";
    let mut claims = json!({
        "aud": audience,
        "azp": numeric_id,
        "email": email,
        "email_verified": true,
        "exp": now + CREDENTIAL_TTL,
        "iat": now,
        "iss": "https://accounts.google.com",
        "sub": numeric_id,
    });
    if query("format") == Some("full") {
        claims["google"] = json!({"compute_engine": {
            "instance_creation_timestamp": now - 86_400,
            "instance_id": "5012345678901234567",
            "instance_name": "fake-instance",
            "project_id": project_of(&email),
            "project_number": 123_456_789_012u64,
            "zone": "us-central1-a",
        }});
    }
    text(200, &st.google_key.sign(&claims))
}

/// The project in a service-account email (`name@PROJECT.iam.gserviceaccount.com`).
pub(crate) fn project_of(email: &str) -> String {
    email
        .split_once('@')
        .map(|(_, domain)| domain.split('.').next().unwrap_or(domain))
        .unwrap_or("fake-project")
        .to_string()
}

fn google_certs(st: &mut CloudState, req: &Request) -> Reply {
    if req.path == "/oauth2/v3/certs" {
        return Reply::json(200, &json!({"keys": [st.google_key.jwk()]}));
    }
    let email = crate::util::percent_decode(
        req.path.trim_start_matches("/service_accounts/v1/jwk/"),
        false,
    );
    let keys: Vec<Value> = st
        .service_account_key_ids
        .iter()
        .filter(|(e, _)| *e == email)
        .map(|(_, kid)| {
            let mut jwk = st.service_account_key.jwk();
            jwk["kid"] = json!(kid);
            jwk
        })
        .collect();
    if keys.is_empty() {
        return Reply::json(
            404,
            &json!({"error": {"code": 404, "message": format!("Not found: {email}"), "status": "NOT_FOUND"}}),
        );
    }
    Reply::json(200, &json!({"keys": keys}))
}

// ----- Azure -----

fn azure_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn azure_imds(st: &mut CloudState, req: &Request) -> Reply {
    if req.header("metadata") != Some("true") {
        return azure_error(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let query = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(resource) = query("resource").filter(|r| !r.is_empty()) else {
        return azure_error(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let wanted = query("client_id").map(String::from);
    let Some(identity) = st
        .azure_managed
        .iter()
        .find(|i| i.requested_as == wanted)
        .cloned()
    else {
        return azure_error(400, "invalid_request", "Identity not found");
    };
    let now = unix_secs(SystemTime::now());
    let token = st.azure_access_token(&identity, resource);
    Reply::json(
        200,
        &json!({
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": CREDENTIAL_TTL.to_string(),
            "expires_on": (now + CREDENTIAL_TTL).to_string(),
            "ext_expires_in": CREDENTIAL_TTL.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}

fn azure_token(st: &mut CloudState, req: &Request) -> Reply {
    let form = parse_pairs(&String::from_utf8_lossy(&req.body));
    let get = |name: &str| param(&form, name).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return azure_error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client_id = get("client_id");
    let Some(identity) = st
        .azure_workload
        .iter()
        .find(|i| i.client_id == client_id)
        .cloned()
    else {
        return azure_error(
            400,
            "unauthorized_client",
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{}'.", st.tenant),
        );
    };
    if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return azure_error(
            400,
            "invalid_request",
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let key = PublicKey::from_jwk(&st.issuer_key.jwk());
    let assertion = match jwt::verify(get("client_assertion"), key.as_ref(), &Expect::default()) {
        Ok(d) => d,
        Err(e) if e == "jwt expired" => {
            return azure_error(
                400,
                "invalid_client",
                "AADSTS700024: Client assertion is not within its valid time range.",
            );
        }
        Err(_) => {
            return azure_error(
                400,
                "invalid_client",
                "AADSTS700211: No matching federated identity record found for presented assertion issuer.",
            );
        }
    };
    let audience_ok = match assertion.claims.get("aud") {
        Some(Value::String(a)) => a == AZURE_EXCHANGE_AUDIENCE,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(AZURE_EXCHANGE_AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return azure_error(
            400,
            "invalid_client",
            "AADSTS700212: No matching federated identity record found for presented assertion audience.",
        );
    }
    let Some(resource) = get("scope").strip_suffix("/.default") else {
        return azure_error(
            400,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    };
    let token = st.azure_access_token(&identity, resource);
    Reply::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": CREDENTIAL_TTL,
            "ext_expires_in": CREDENTIAL_TTL,
            "access_token": token,
        }),
    )
}

/// A service-account key file like the ones Google hands out, for `email`, with a fresh key id.
pub(crate) fn service_account_key_file(st: &mut CloudState, email: &str) -> Value {
    let kid = hex_id::<20>();
    st.service_account_key_ids.push((email.into(), kid.clone()));
    let project = project_of(email);
    json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": kid,
        "private_key": keys::GCP_SERVICE_ACCOUNT,
        "client_email": email,
        "client_id": "113000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{}",
            email.replace('@', "%40")
        ),
        "universe_domain": "googleapis.com",
    })
}
