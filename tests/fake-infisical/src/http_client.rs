//! A minimal HTTP/1.1 client (plain `http://` only, one request per connection) for the calls
//! the fake Infisical makes to the cloud fakes: OIDC discovery, JWKS, STS, certificates.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A response as received.
pub(crate) struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON, or the message a JSON parser would give.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
    }
}

/// Sends a request and reads the whole answer. `headers` are sent as given (a `Host` among
/// them replaces the URL's); `Content-Length` is added when missing. Errors read like axios's:
/// `connect ECONNREFUSED 127.0.0.1:PORT`, `Request failed with status code 500`.
pub(crate) async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL (only http:// is): {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !has("content-length") && (!body.is_empty() || method != "GET") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");

    let exchange = async {
        let mut stream = TcpStream::connect(authority).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                format!("connect ECONNREFUSED {authority}")
            } else {
                format!("connect {authority}: {e}")
            }
        })?;
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(body).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|_| "socket hang up".to_string())?;
        Ok::<Vec<u8>, String>(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("timeout of {}ms exceeded", TIMEOUT.as_millis()))??;
    let response = parse(&raw).ok_or_else(|| "socket hang up".to_string())?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "Request failed with status code {}",
            response.status
        ));
    }
    Ok(response)
}

/// Status and body of a `Connection: close` answer (Content-Length or read-to-end bodies).
fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let rest = &raw[end + 4..];
    let body = match length {
        Some(n) => rest.get(..n)?.to_vec(),
        None => rest.to_vec(),
    };
    Some(HttpResponse { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}extra").expect("parsed");
        assert_eq!((r.status, r.body.as_slice()), (200, b"{}".as_slice()));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}").is_none());
    }
}
