//! AWS Signature Version 4, header form: enough to sign the STS `GetCallerIdentity` request that
//! Infisical's AWS auth forwards to AWS. Written over `ring` (already linked for TLS) rather than
//! pulling in the AWS SDK; checked against AWS's published test-suite vectors.

use ring::{digest, hmac};
use zeroize::Zeroizing;

use crate::secrets::SecretValue;
use crate::utc::Utc;

/// The only algorithm there is.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials: a key pair, and a session token for temporary ones.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    /// The access key id (`AKIA…`, or `ASIA…` for temporary keys). Not a secret by itself.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretValue,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretValue>,
}

/// A request to sign. Header names may be in any case; `host` must be among them.
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path, not yet URI-encoded.
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign.
    pub headers: &'a [(&'a str, &'a str)],
    /// The payload.
    pub body: &'a [u8],
}

/// Where and when: the scope of a signature.
pub struct Scope<'a> {
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service, e.g. `sts`.
    pub service: &'a str,
    /// The signing time; must match the request's `X-Amz-Date`.
    pub time: Utc,
}

impl Scope<'_> {
    /// `YYYYMMDD`.
    fn date(&self) -> String {
        let t = self.time;
        format!("{:04}{:02}{:02}", t.year, t.month, t.day)
    }
}

/// The `X-Amz-Date` value of a time: `YYYYMMDD'T'HHMMSS'Z'`.
pub fn amz_date(time: Utc) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    )
}

/// The `Authorization` header value for `request`. It is a bearer credential for a few
/// minutes, so it is returned as a secret.
pub fn authorization(
    request: &Request<'_>,
    credentials: &AwsCredentials,
    scope: &Scope<'_>,
) -> SecretValue {
    let (canonical, signed_headers) = canonical_request(request);
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        scope.date(),
        scope.region,
        scope.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{}",
        amz_date(scope.time),
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mut secret = Zeroizing::new(Vec::with_capacity(
        4 + credentials.secret_access_key.expose().len(),
    ));
    secret.extend_from_slice(b"AWS4");
    secret.extend_from_slice(credentials.secret_access_key.expose().as_bytes());
    let mut key = mac(&secret, scope.date().as_bytes());
    for part in [scope.region, scope.service, "aws4_request"] {
        key = mac(key.as_ref(), part.as_bytes());
    }
    let signature = hex(mac(key.as_ref(), string_to_sign.as_bytes()).as_ref());
    SecretValue::new(format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    ))
}

/// The canonical request and the signed-headers list.
fn canonical_request(request: &Request<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
            (name.to_ascii_lowercase(), collapsed)
        })
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        uri_encode(request.path, false),
        hex(digest::digest(&digest::SHA256, request.body).as_ref())
    );
    (canonical, signed_headers)
}

fn mac(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// Percent-encodes everything but the unreserved characters (and `/` in a path).
fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' if !encode_slash => out.push('/'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials and instant of AWS's SigV4 test suite.
    fn suite() -> (AwsCredentials, Utc) {
        (
            AwsCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: SecretValue::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                session_token: None,
            },
            Utc::from_unix(1_440_938_160), // 2015-08-30T12:36:00Z
        )
    }

    fn signed(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: &str,
    ) -> String {
        let (credentials, time) = suite();
        let mut headers = vec![
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        headers.extend_from_slice(extra);
        let request = Request {
            method,
            path,
            query,
            headers: &headers,
            body: body.as_bytes(),
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
            time,
        };
        authorization(&request, &credentials, &scope)
            .expose()
            .to_owned()
    }

    fn expected(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    /// Vectors from AWS's published SigV4 test suite (aws-sig-v4-test-suite).
    #[test]
    fn matches_the_aws_test_suite() {
        let vanilla = "host;x-amz-date";
        let cases = [
            (
                "get-vanilla",
                signed("GET", "/", &[], &[], ""),
                expected(
                    vanilla,
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ),
            ),
            (
                "post-vanilla",
                signed("POST", "/", &[], &[], ""),
                expected(
                    vanilla,
                    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
                ),
            ),
            (
                "post-x-www-form-urlencoded",
                signed(
                    "POST",
                    "/",
                    &[],
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    "Param1=value1",
                ),
                expected(
                    "content-type;host;x-amz-date",
                    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
                ),
            ),
            (
                "post-x-www-form-urlencoded-parameters",
                signed(
                    "POST",
                    "/",
                    &[],
                    &[(
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=utf8",
                    )],
                    "Param1=value1",
                ),
                expected(
                    "content-type;host;x-amz-date",
                    "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
                ),
            ),
            (
                "get-vanilla-query-order-key-case",
                signed(
                    "GET",
                    "/",
                    &[("Param2", "value2"), ("Param1", "value1")],
                    &[],
                    "",
                ),
                expected(
                    vanilla,
                    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                ),
            ),
            (
                "get-header-value-trim",
                signed(
                    "GET",
                    "/",
                    &[],
                    &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
                    "",
                ),
                expected(
                    "host;my-header1;my-header2;x-amz-date",
                    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                ),
            ),
            (
                "get-utf8",
                signed("GET", "/ሴ", &[], &[], ""),
                expected(
                    vanilla,
                    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
                ),
            ),
            (
                "get-vanilla-utf8-query",
                signed("GET", "/", &[("ሴ", "bar")], &[], ""),
                expected(
                    vanilla,
                    "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
                ),
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_different_key_or_body_changes_the_signature() {
        let base = signed("POST", "/", &[], &[], "Action=GetCallerIdentity");
        assert_ne!(
            base,
            signed("POST", "/", &[], &[], "Action=GetCallerIdentitY")
        );
        let (mut credentials, time) = suite();
        credentials.secret_access_key = SecretValue::from("another");
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            body: b"Action=GetCallerIdentity",
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
            time,
        };
        assert_ne!(authorization(&request, &credentials, &scope).expose(), base);
    }

    #[test]
    fn amz_date_format() {
        assert_eq!(amz_date(Utc::from_unix(1_440_938_160)), "20150830T123600Z");
    }
}
