//! Small utilities: ids, timestamps, URL decoding, JSON bodies and ETags.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::rand::SecureRandom;

/// Random bytes from the system generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("fake-infisical: the system random generator failed");
    buf
}

/// A random version-4 UUID string, like the ids the real server hands out.
pub(crate) fn new_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whole seconds since the Unix epoch.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `2026-11-22T11:14:16.205Z` for a point in time (what the server's JSON dates look like).
pub(crate) fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set); invalid escapes stay as they are.
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` (query strings and form bodies) into decoded pairs, in order.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// The strong ETag the server's `@fastify/etag` computes: quoted base64 of the body's SHA-1.
pub(crate) fn etag_of(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, body);
    format!(
        "\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// Serializes a value; the types used here cannot fail to serialize.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("fake-infisical: response bodies always serialize")
}

/// Normalizes a secret path: leading `/`, no trailing `/` (except the root), no empty segments.
pub(crate) fn normalize_path(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        "/".to_string()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// Whether `path` is `base` or lies below it.
pub(crate) fn path_within(path: &str, base: &str) -> bool {
    base == "/" || path == base || path.starts_with(&format!("{base}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_346_200_123);
        assert_eq!(iso8601(t), "2026-11-22T11:16:40.123Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("%2Fapp%2Fdb", false), "/app/db");
        assert_eq!(percent_decode("a+b%", true), "a b%");
        assert_eq!(percent_decode("%zz", true), "%zz");
        assert_eq!(
            parse_pairs("a=1&b&c=x%3Dy"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "x=y".into())
            ]
        );
    }

    #[test]
    fn etag_matches_fixture() {
        let body = br#"{"date":"2026-11-22T11:16:39.957Z","message":"Ok","emailConfigured":true,"inviteOnlySignup":true,"redisConfigured":true,"secretScanningConfigured":false}"#;
        assert_eq!(etag_of(body), "\"ArtL6nKyBnXX5iM/3D987RWN1NY=\"");
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/app/"), "/app");
        assert_eq!(normalize_path("app//db"), "/app/db");
        assert!(path_within("/app/db", "/app"));
        assert!(!path_within("/apple", "/app"));
        assert!(path_within("/x", "/"));
    }

    #[test]
    fn uuids() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
