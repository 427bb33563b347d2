//! AWS IAM login: find AWS credentials the way the AWS SDKs do, then sign an STS
//! `GetCallerIdentity` request that Infisical forwards to AWS to learn who we are.
//!
//! Credential sources, in the SDKs' order: the environment (`AWS_ACCESS_KEY_ID`, …), web
//! identity (IRSA: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanged with STS
//! `AssumeRoleWithWebIdentity`), the container endpoint (EKS Pod Identity, ECS), and the EC2
//! instance metadata service (IMDSv2).

use std::path::PathBuf;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::sigv4::{self, AwsCredentials, Request, Scope};
use super::{form_body, one_line, CloudError, CloudHttp, CloudRequest};
use crate::auth::read_credential_file;
use crate::secrets::SecretValue;
use crate::utc::Utc;

/// The body Infisical's AWS auth expects us to sign.
pub const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The content type the signed request declares (as the official SDKs send it).
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The EC2 instance metadata service.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The ECS container credentials host, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// Used when neither the environment nor the instance metadata names a region.
const FALLBACK_REGION: &str = "us-east-1";

/// Where AWS credentials may come from, read from the environment once at start. Files are
/// re-read and endpoints asked again at every login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION` or `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
    pub static_keys: Option<StaticKeys>,
    /// IRSA.
    pub web_identity: Option<WebIdentity>,
    /// EKS Pod Identity or ECS.
    pub container: Option<ContainerEndpoint>,
    /// `AWS_ENDPOINT_URL_STS` (or `AWS_ENDPOINT_URL`): where we call STS ourselves.
    pub sts_endpoint: Option<String>,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the link-local address.
    pub imds_endpoint: String,
    /// `AWS_EC2_METADATA_DISABLED=true`.
    pub imds_disabled: bool,
}

/// Keys given in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticKeys {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: SecretValue,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<SecretValue>,
}

/// IRSA: a role to assume with the projected web-identity token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentity {
    /// `AWS_ROLE_ARN`.
    pub role_arn: String,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`.
    pub token_file: PathBuf,
    /// `AWS_ROLE_SESSION_NAME`, else a fixed name.
    pub session_name: String,
}

/// The container credentials endpoint and its authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEndpoint {
    /// The full URL.
    pub url: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (EKS Pod Identity; re-read every time).
    pub token_file: Option<PathBuf>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub token: Option<SecretValue>,
}

impl AwsSettings {
    /// Reads the AWS SDK variables through `var`. Fails when a variable is half set (a key id
    /// without its secret).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, CloudError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let static_keys = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret)) => Some(StaticKeys {
                access_key_id,
                secret_access_key: SecretValue::new(secret),
                session_token: get("AWS_SESSION_TOKEN").map(SecretValue::new),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(CloudError::Local(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or \
                     neither to use the pod's IAM role"
                        .to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(CloudError::Local(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or \
                     neither to use the pod's IAM role"
                        .to_owned(),
                ))
            }
        };
        let web_identity = match (get("AWS_ROLE_ARN"), get("AWS_WEB_IDENTITY_TOKEN_FILE")) {
            (Some(role_arn), Some(file)) => Some(WebIdentity {
                role_arn,
                token_file: file.into(),
                session_name: get("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| "infisical-materializer".to_owned()),
            }),
            _ => None,
        };
        let container_url = get("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
            get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .map(|relative| format!("{ECS_CREDENTIALS_HOST}{relative}"))
        });
        let container = container_url.map(|url| ContainerEndpoint {
            url,
            token_file: get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
            token: get("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(SecretValue::new),
        });
        Ok(Self {
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            static_keys,
            web_identity,
            container,
            sts_endpoint: get("AWS_ENDPOINT_URL_STS")
                .or_else(|| get("AWS_ENDPOINT_URL"))
                .map(|url| url.trim_end_matches('/').to_owned()),
            imds_endpoint: get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .map(|url| url.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned()),
            imds_disabled: get("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// Credential files a sidecar watches.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let web = self.web_identity.iter().map(|w| w.token_file.clone());
        let container = self.container.iter().filter_map(|c| c.token_file.clone());
        web.chain(container).collect()
    }
}

/// A signed `GetCallerIdentity` request, as Infisical's AWS login takes it.
pub struct SignedIdentityRequest {
    /// base64 of the JSON object of the request's headers (it holds the signature and any
    /// session token).
    pub headers: SecretValue,
    /// base64 of the request body.
    pub body: String,
    /// The region signed for.
    pub region: String,
    /// The access key id used (not a secret; named in messages).
    pub access_key_id: String,
    /// The signed headers, kept to ask STS directly why a login failed.
    signed: Vec<(&'static str, SecretValue)>,
}

/// Finds credentials and signs the request Infisical will forward to STS.
pub async fn sign_identity_request(
    http: &CloudHttp,
    settings: &AwsSettings,
) -> Result<SignedIdentityRequest, CloudError> {
    let mut imds_token = None;
    let credentials = credentials(http, settings, &mut imds_token).await?;
    let region = match &settings.region {
        Some(region) => region.clone(),
        None => imds_region(http, settings, &mut imds_token)
            .await
            .unwrap_or_else(|| FALLBACK_REGION.to_owned()),
    };
    Ok(sign(&credentials, &region, SystemTime::now()))
}

/// Signs `GetCallerIdentity` for `sts.<region>.amazonaws.com` at `now`.
pub fn sign(credentials: &AwsCredentials, region: &str, now: SystemTime) -> SignedIdentityRequest {
    let time = Utc::from_system_time(now);
    let host = format!("sts.{region}.amazonaws.com");
    let date = sigv4::amz_date(time);
    let mut headers: Vec<(&str, &str)> = vec![
        ("Content-Type", FORM_CONTENT_TYPE),
        ("Host", &host),
        ("X-Amz-Date", &date),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("X-Amz-Security-Token", token.expose()));
    }
    let request = Request {
        method: "POST",
        path: "/",
        query: &[],
        headers: &headers,
        body: GET_CALLER_IDENTITY.as_bytes(),
    };
    let scope = Scope {
        region,
        service: "sts",
        time,
    };
    let authorization = sigv4::authorization(&request, credentials, &scope);
    let length = GET_CALLER_IDENTITY.len().to_string();
    let mut signed: Vec<(&'static str, SecretValue)> = vec![
        ("Authorization", authorization),
        ("Content-Length", SecretValue::new(length)),
        ("Content-Type", SecretValue::from(FORM_CONTENT_TYPE)),
        ("Host", SecretValue::new(host.clone())),
        ("X-Amz-Date", SecretValue::new(date.clone())),
    ];
    if let Some(token) = &credentials.session_token {
        signed.push(("X-Amz-Security-Token", token.clone()));
    }
    // The JSON holds the signature and the session token: write it into one buffer, sized up
    // front so it never reallocates, that is wiped on drop.
    let size = signed
        .iter()
        .map(|(name, value)| name.len() + 2 * value.expose().len() + 8)
        .sum::<usize>()
        + 2;
    let mut json = Zeroizing::new(Vec::with_capacity(size));
    json.push(b'{');
    for (index, (name, value)) in signed.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *json, name);
        json.push(b':');
        let _ = serde_json::to_writer(&mut *json, value.expose());
    }
    json.push(b'}');
    SignedIdentityRequest {
        headers: SecretValue::new(STANDARD.encode(&*json)),
        body: STANDARD.encode(GET_CALLER_IDENTITY),
        region: region.to_owned(),
        access_key_id: credentials.access_key_id.clone(),
        signed,
    }
}

/// What STS itself says of a signed request, used after Infisical answered 5xx (a real server
/// turns every STS refusal into a 500). `Ok(None)`: STS accepted it, so the fault is
/// Infisical's; `Ok(Some(reason))`: STS refused the credentials, with what to do.
pub async fn ask_sts_why(
    http: &CloudHttp,
    settings: &AwsSettings,
    request: &SignedIdentityRequest,
) -> Result<Option<String>, CloudError> {
    let url = match &settings.sts_endpoint {
        Some(endpoint) => format!("{endpoint}/"),
        None => format!("https://sts.{}.amazonaws.com/", request.region),
    };
    let headers: Vec<(&'static str, &str)> = request
        .signed
        .iter()
        .filter(|(name, _)| *name != "Content-Length" && *name != "Host")
        .map(|(name, value)| (*name, value.expose()))
        .collect();
    let (status, body) = http
        .send(CloudRequest {
            service: "AWS STS",
            method: Method::POST,
            url,
            headers,
            form: Some(Zeroizing::new(GET_CALLER_IDENTITY.to_owned())),
            unreachable_hint: "",
        })
        .await?;
    if status.is_success() {
        return Ok(None);
    }
    let (code, message) = sts_error(&body);
    let advice = match code.as_str() {
        "SignatureDoesNotMatch" if message.to_ascii_lowercase().contains("expired") => {
            "this machine's clock is more than 5 minutes off: fix the node's time synchronisation (NTP)"
        }
        "RequestExpired" => {
            "this machine's clock is more than 5 minutes off: fix the node's time synchronisation (NTP)"
        }
        "SignatureDoesNotMatch" | "IncompleteSignature" => {
            "the AWS secret access key does not belong to the access key id: fix the AWS credentials"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" => {
            "AWS does not know this access key id (deleted or mistyped): fix the AWS credentials"
        }
        "ExpiredToken" => {
            "the AWS session token has expired: refresh the credentials given to the pod"
        }
        _ => "check the AWS credentials given to the pod",
    };
    Ok(Some(format!(
        "AWS STS refused the signed request for access key {} (HTTP {}: {code}: {message}): {advice}",
        request.access_key_id,
        status.as_u16()
    )))
}

async fn credentials(
    http: &CloudHttp,
    settings: &AwsSettings,
    imds_token: &mut Option<SecretValue>,
) -> Result<AwsCredentials, CloudError> {
    if let Some(keys) = &settings.static_keys {
        return Ok(AwsCredentials {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.clone(),
            session_token: keys.session_token.clone(),
        });
    }
    if let Some(web) = &settings.web_identity {
        return assume_role_with_web_identity(http, settings, web).await;
    }
    if let Some(container) = &settings.container {
        return container_credentials(http, container).await;
    }
    let mut tried = vec![
        "the environment (AWS_ACCESS_KEY_ID is not set)".to_owned(),
        "web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not set)".to_owned(),
        "the container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI is not set)".to_owned(),
    ];
    if settings.imds_disabled {
        tried.push("the instance metadata (disabled by AWS_EC2_METADATA_DISABLED)".to_owned());
        return Err(CloudError::NoAwsCredentials {
            tried: tried.join(", "),
            retry: false,
        });
    }
    match instance_credentials(http, settings, imds_token).await {
        Ok(credentials) => Ok(credentials),
        Err(ImdsFailure::Unreachable(cause)) => {
            tried.push(format!(
                "the instance metadata at {} ({cause})",
                settings.imds_endpoint
            ));
            Err(CloudError::NoAwsCredentials {
                tried: tried.join(", "),
                retry: true,
            })
        }
        Err(ImdsFailure::NoRole) => {
            tried.push(format!(
                "the instance metadata at {} (no IAM role is attached to the instance)",
                settings.imds_endpoint
            ));
            Err(CloudError::NoAwsCredentials {
                tried: tried.join(", "),
                retry: false,
            })
        }
        Err(ImdsFailure::Other(error)) => Err(error),
    }
}

/// Credentials as STS, the container endpoint and IMDS return them (JSON).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    access_key_id: String,
    secret_access_key: SecretValue,
    #[serde(default)]
    token: Option<SecretValue>,
}

impl From<JsonCredentials> for AwsCredentials {
    fn from(json: JsonCredentials) -> Self {
        Self {
            access_key_id: json.access_key_id,
            secret_access_key: json.secret_access_key,
            session_token: json.token,
        }
    }
}

async fn assume_role_with_web_identity(
    http: &CloudHttp,
    settings: &AwsSettings,
    web: &WebIdentity,
) -> Result<AwsCredentials, CloudError> {
    let token = read_credential_file(&web.token_file, "AWS web identity token")
        .map_err(|e| CloudError::Local(e.to_string()))?;
    let url = match (&settings.sts_endpoint, &settings.region) {
        (Some(endpoint), _) => format!("{endpoint}/"),
        (None, Some(region)) => format!("https://sts.{region}.amazonaws.com/"),
        (None, None) => "https://sts.amazonaws.com/".to_owned(),
    };
    let form = form_body(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", &web.role_arn),
        ("RoleSessionName", &web.session_name),
        ("WebIdentityToken", token.expose()),
    ]);
    let (status, body) = http
        .send(CloudRequest {
            service: "AWS STS (AssumeRoleWithWebIdentity)",
            method: Method::POST,
            url: url.clone(),
            headers: Vec::new(),
            form: Some(form),
            unreachable_hint: "; check egress to STS, or set AWS_ENDPOINT_URL_STS / AWS_REGION \
                               for a regional or private endpoint",
        })
        .await?;
    if !status.is_success() {
        let (code, message) = sts_error(&body);
        return Err(CloudError::Refused {
            service: "AWS STS (AssumeRoleWithWebIdentity)",
            url,
            status: status.as_u16(),
            detail: format!("{code}: {message}"),
            hint: format!(
                "; check the trust policy of role {} (the cluster's OIDC provider, and this \
                 service account in its condition) and the token file {}",
                web.role_arn,
                web.token_file.display()
            ),
        });
    }
    let text = String::from_utf8_lossy(&body);
    let field = |name: &str| xml_field(&text, name);
    match (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) {
        (Some(access_key_id), Some(secret), Some(session)) => Ok(AwsCredentials {
            access_key_id,
            secret_access_key: SecretValue::new(secret),
            session_token: Some(SecretValue::new(session)),
        }),
        _ => Err(CloudError::Malformed {
            service: "AWS STS (AssumeRoleWithWebIdentity)",
            url,
            detail: "no Credentials element".to_owned(),
        }),
    }
}

async fn container_credentials(
    http: &CloudHttp,
    container: &ContainerEndpoint,
) -> Result<AwsCredentials, CloudError> {
    let token = match (&container.token_file, &container.token) {
        (Some(file), _) => Some(
            read_credential_file(file, "AWS container authorization token")
                .map_err(|e| CloudError::Local(e.to_string()))?,
        ),
        (None, token) => token.clone(),
    };
    let headers = token
        .as_ref()
        .map(|t| vec![("Authorization", t.expose())])
        .unwrap_or_default();
    let (status, body) = http
        .send(CloudRequest {
            service: "the AWS container credentials endpoint",
            method: Method::GET,
            url: container.url.clone(),
            headers,
            form: None,
            unreachable_hint: "; check that the EKS Pod Identity agent (or the ECS agent) runs \
                               on this node",
        })
        .await?;
    if !status.is_success() {
        return Err(CloudError::Refused {
            service: "the AWS container credentials endpoint",
            url: container.url.clone(),
            status: status.as_u16(),
            detail: one_line(&body),
            hint: "; check the pod identity association of this service account".to_owned(),
        });
    }
    json_credentials(
        &body,
        "the AWS container credentials endpoint",
        &container.url,
    )
}

enum ImdsFailure {
    Unreachable(String),
    NoRole,
    Other(CloudError),
}

async fn imds_session(
    http: &CloudHttp,
    settings: &AwsSettings,
    cached: &mut Option<SecretValue>,
) -> Result<SecretValue, CloudError> {
    if let Some(token) = cached {
        return Ok(token.clone());
    }
    let url = format!("{}/latest/api/token", settings.imds_endpoint);
    let (status, body) = http
        .send(CloudRequest {
            service: "the EC2 instance metadata service",
            method: Method::PUT,
            url: url.clone(),
            headers: vec![("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            form: None,
            unreachable_hint: "",
        })
        .await?;
    if !status.is_success() {
        return Err(CloudError::Refused {
            service: "the EC2 instance metadata service",
            url,
            status: status.as_u16(),
            detail: one_line(&body),
            hint: "; IMDSv2 must be enabled, with a hop limit of 2 for pods".to_owned(),
        });
    }
    let token = SecretValue::new(String::from_utf8_lossy(&body).trim().to_owned());
    *cached = Some(token.clone());
    Ok(token)
}

async fn imds_get(
    http: &CloudHttp,
    settings: &AwsSettings,
    token: &SecretValue,
    path: &str,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>), CloudError> {
    http.send(CloudRequest {
        service: "the EC2 instance metadata service",
        method: Method::GET,
        url: format!("{}{path}", settings.imds_endpoint),
        headers: vec![("X-aws-ec2-metadata-token", token.expose())],
        form: None,
        unreachable_hint: "",
    })
    .await
}

async fn instance_credentials(
    http: &CloudHttp,
    settings: &AwsSettings,
    cached: &mut Option<SecretValue>,
) -> Result<AwsCredentials, ImdsFailure> {
    let classify = |error: CloudError| match error {
        CloudError::Unreachable { cause, .. } => ImdsFailure::Unreachable(cause),
        other => ImdsFailure::Other(other),
    };
    let token = imds_session(http, settings, cached)
        .await
        .map_err(classify)?;
    let list = "/latest/meta-data/iam/security-credentials/";
    let (status, body) = imds_get(http, settings, &token, list)
        .await
        .map_err(classify)?;
    if status == StatusCode::NOT_FOUND {
        return Err(ImdsFailure::NoRole);
    }
    let names = String::from_utf8_lossy(&body).into_owned();
    let Some(role) = names.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err(ImdsFailure::NoRole);
    };
    let path = format!("{list}{role}");
    let (status, body) = imds_get(http, settings, &token, &path)
        .await
        .map_err(classify)?;
    let url = format!("{}{path}", settings.imds_endpoint);
    if !status.is_success() {
        return Err(ImdsFailure::Other(CloudError::Refused {
            service: "the EC2 instance metadata service",
            url,
            status: status.as_u16(),
            detail: one_line(&body),
            hint: String::new(),
        }));
    }
    json_credentials(&body, "the EC2 instance metadata service", &url).map_err(ImdsFailure::Other)
}

async fn imds_region(
    http: &CloudHttp,
    settings: &AwsSettings,
    cached: &mut Option<SecretValue>,
) -> Option<String> {
    if settings.imds_disabled {
        return None;
    }
    let token = imds_session(http, settings, cached).await.ok()?;
    let (status, body) = imds_get(http, settings, &token, "/latest/meta-data/placement/region")
        .await
        .ok()?;
    let region = String::from_utf8_lossy(&body).trim().to_owned();
    (status.is_success() && !region.is_empty()).then_some(region)
}

fn json_credentials(
    body: &[u8],
    service: &'static str,
    url: &str,
) -> Result<AwsCredentials, CloudError> {
    serde_json::from_slice::<JsonCredentials>(body)
        .map(AwsCredentials::from)
        .map_err(|e| CloudError::Malformed {
            service,
            url: url.to_owned(),
            detail: format!("not AWS credentials: {}", e.classify_name()),
        })
}

/// The text of the first `<name>…</name>` element.
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml_unescape(xml[start..end].trim()))
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// STS's error code and message, from its XML or JSON error body.
fn sts_error(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = json.get("Error").unwrap_or(&json);
        let get = |key: &str| error.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(code) = get("Code") {
            return (code, get("Message").unwrap_or_default());
        }
    }
    match xml_field(&text, "Code") {
        Some(code) => (code, xml_field(&text, "Message").unwrap_or_default()),
        None => ("error".to_owned(), one_line(body)),
    }
}

/// A short helper for classifying serde errors without echoing input.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "missing or mistyped fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn settings_follow_the_sdk_variables() {
        let settings = AwsSettings::from_env(env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/aws/token"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/"),
        ]))
        .expect("valid");
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            settings
                .web_identity
                .as_ref()
                .map(|w| w.session_name.as_str()),
            Some("infisical-materializer")
        );
        assert_eq!(
            settings.container.as_ref().map(|c| c.url.as_str()),
            Some("http://169.254.170.2/v2/credentials/x")
        );
        assert_eq!(settings.imds_endpoint, "http://127.0.0.1:9");
        assert_eq!(
            settings.watched_files(),
            vec![PathBuf::from("/var/run/aws/token")]
        );
        let half = AwsSettings::from_env(env(&[("AWS_ACCESS_KEY_ID", "AKIA")]));
        assert!(matches!(half, Err(CloudError::Local(m)) if m.contains("AWS_SECRET_ACCESS_KEY")));
    }

    #[test]
    fn the_signed_request_is_what_infisical_expects() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretValue::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(SecretValue::from("session-token")),
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let signed = sign(&credentials, "eu-west-1", at);
        assert_eq!(
            STANDARD.decode(&signed.body).expect("base64"),
            GET_CALLER_IDENTITY.as_bytes()
        );
        let headers: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(signed.headers.expose()).expect("base64"))
                .expect("JSON");
        assert_eq!(headers["Host"], "sts.eu-west-1.amazonaws.com");
        assert_eq!(headers["X-Amz-Date"], "20150830T123600Z");
        assert_eq!(headers["Content-Length"], "43");
        assert_eq!(headers["X-Amz-Security-Token"], "session-token");
        let authorization = headers["Authorization"].as_str().expect("a string");
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/sts/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ));
    }

    #[test]
    fn sts_errors_are_read_from_xml_and_json() {
        let xml = br#"<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>"#;
        assert_eq!(
            sts_error(xml),
            (
                "SignatureDoesNotMatch".to_owned(),
                "The request signature we calculated does not match".to_owned()
            )
        );
        let json = br#"{"Error":{"Code":"ExpiredToken","Message":"expired"}}"#;
        assert_eq!(sts_error(json).0, "ExpiredToken");
        assert_eq!(
            xml_field("<a><B>x &amp; y</B></a>", "B").as_deref(),
            Some("x & y")
        );
    }
}
