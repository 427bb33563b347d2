//! AWS Signature Version 4, recomputed from a received request to check its signature.

use ring::{digest, hmac};

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
/// Signature=…` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    /// Parses the header; `None` when it is not a complete SigV4 authorization.
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.trim().strip_prefix("AWS4-HMAC-SHA256")?;
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => {}
            }
        }
        let scope: Vec<&str> = credential?.split('/').collect();
        if scope.len() != 5 || scope[4] != "aws4_request" {
            return None;
        }
        Some(Authorization {
            access_key_id: scope[0].into(),
            date: scope[1].into(),
            region: scope[2].into(),
            service: scope[3].into(),
            signed_headers: signed?.split(';').map(|h| h.to_ascii_lowercase()).collect(),
            signature: signature?.to_ascii_lowercase(),
        })
    }

    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Za-z0-9-_.~` as `%XX`.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The canonical request for the received method, path, decoded query, headers and body,
/// over the headers the client says it signed.
pub(crate) fn canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed_headers: &[String],
    body: &[u8],
) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let path = if path.is_empty() { "/" } else { path };
    format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{}\n{}",
        signed_headers.join(";"),
        hex(digest::digest(&digest::SHA256, body).as_ref())
    )
}

/// The signature of a canonical request made at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub(crate) fn signature(
    secret_access_key: &str,
    amz_date: &str,
    auth: &Authorization,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        auth.scope(),
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{secret_access_key}").into_bytes();
    for part in [
        auth.date.as_str(),
        auth.region.as_str(),
        auth.service.as_str(),
        "aws4_request",
    ] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    hex(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        string_to_sign.as_bytes(),
    )
    .as_ref())
}

/// Seconds since the epoch of an `YYYYMMDDTHHMMSSZ` date.
pub(crate) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch.
pub(crate) fn format_amz_date(secs: u64) -> String {
    let iso = crate::util::iso8601(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    // 2026-11-22T11:16:40.000Z -> 20261122T111640Z
    format!(
        "{}{}{}T{}{}{}Z",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10],
        &iso[11..13],
        &iso[14..16],
        &iso[17..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").expect("date");
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn get_vanilla_vector() {
        // AWS's published SigV4 test suite, "get-vanilla".
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let auth = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .expect("parsed");
        let canonical = canonical_request("GET", "/", &[], &headers, &auth.signed_headers, b"");
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830T123600Z",
                &auth,
                &canonical
            ),
            auth.signature
        );
    }
}
