//! Injected faults: error answers, rate limiting, expired tokens, delays, broken bodies and
//! dropped connections.

use std::time::Duration;

use crate::Route;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Status(u16),
    Body(u16, String),
    RateLimited(Option<u64>),
    TokenExpired,
    Delay(Duration),
    MalformedJson,
    DropConnection,
    TruncatedBody,
}

/// A fault to inject with [`crate::FakeInfisical::inject`]. Faults are queued; each request
/// consumes the first queued fault whose route matches (or that was made for [`Route::Any`])
/// before any normal handling, including authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub(crate) route: Route,
    pub(crate) kind: FaultKind,
    pub(crate) remaining: usize,
}

impl Fault {
    fn new(route: Route, kind: FaultKind) -> Fault {
        Fault {
            route,
            kind,
            remaining: 1,
        }
    }

    /// Answers `status` with the body the real server (or, for 502/503, the reverse proxy in
    /// front of it) sends: 400 `BadRequest`, 401 `UnauthorizedError`, 403 `PermissionDenied`,
    /// 404 `NotFound`, 422 `ValidationFailure`, 429 `RateLimitExceeded`,
    /// 500 `InternalServerError` "Something went wrong", 502/503 an HTML proxy page,
    /// 504 `GatewayTimeout`; other codes get `{"statusCode","message","error"}` with the
    /// reason phrase.
    pub fn status(route: Route, status: u16) -> Fault {
        Fault::new(route, FaultKind::Status(status))
    }

    /// Answers `status` with exactly `body` (JSON content type when it parses as JSON).
    pub fn body(route: Route, status: u16, body: &str) -> Fault {
        Fault::new(route, FaultKind::Body(status, body.into()))
    }

    /// Answers 429 `RateLimitExceeded`. With `Some(n)`: message "Rate limit exceeded. Please
    /// try again in n seconds" and a `retry-after: n` header; with `None`: message "… in 1
    /// minute" and no `retry-after` header.
    pub fn rate_limited(route: Route, retry_after: Option<u64>) -> Fault {
        Fault::new(route, FaultKind::RateLimited(retry_after))
    }

    /// Answers 403 `{"statusCode":403,"message":"Your token has expired. Please
    /// re-authenticate.","error":"TokenError"}`, what the server says once a JWT's `exp` passed.
    pub fn token_expired(route: Route) -> Fault {
        Fault::new(route, FaultKind::TokenExpired)
    }

    /// Waits `d`, then handles the request normally.
    pub fn delay(route: Route, d: Duration) -> Fault {
        Fault::new(route, FaultKind::Delay(d))
    }

    /// Answers 200 with a JSON content type and a truncated JSON body.
    pub fn malformed_json(route: Route) -> Fault {
        Fault::new(route, FaultKind::MalformedJson)
    }

    /// Closes the connection after reading the request, without answering.
    pub fn drop_connection(route: Route) -> Fault {
        Fault::new(route, FaultKind::DropConnection)
    }

    /// Handles the request normally, but declares a longer body than it sends and closes the
    /// connection after what it sent: the server dying mid-body.
    pub fn truncated_body(route: Route) -> Fault {
        Fault::new(route, FaultKind::TruncatedBody)
    }

    /// Applies to the next `n` matching requests instead of one; `usize::MAX` means forever
    /// (until [`crate::FakeInfisical::clear_faults`]).
    pub fn times(mut self, n: usize) -> Fault {
        self.remaining = n;
        self
    }
}

/// Takes the first fault matching `route` from the queue (consuming one use of it).
pub(crate) fn take(faults: &mut Vec<Fault>, route: Route) -> Option<FaultKind> {
    let index = faults
        .iter()
        .position(|f| f.remaining > 0 && (f.route == route || f.route == Route::Any))?;
    let fault = &mut faults[index];
    let kind = fault.kind.clone();
    if fault.remaining != usize::MAX {
        fault.remaining -= 1;
        if fault.remaining == 0 {
            faults.remove(index);
        }
    }
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_and_counts() {
        let mut q = vec![
            Fault::status(Route::Renew, 500),
            Fault::status(Route::ListSecrets, 502).times(2),
            Fault::drop_connection(Route::Any),
        ];
        assert_eq!(
            take(&mut q, Route::ListSecrets),
            Some(FaultKind::Status(502))
        );
        assert_eq!(
            take(&mut q, Route::ListSecrets),
            Some(FaultKind::Status(502))
        );
        assert_eq!(
            take(&mut q, Route::ListSecrets),
            Some(FaultKind::DropConnection)
        );
        assert_eq!(take(&mut q, Route::ListSecrets), None);
        assert_eq!(take(&mut q, Route::Renew), Some(FaultKind::Status(500)));
        let mut forever = vec![Fault::token_expired(Route::GetSecret).times(usize::MAX)];
        for _ in 0..5 {
            assert_eq!(
                take(&mut forever, Route::GetSecret),
                Some(FaultKind::TokenExpired)
            );
        }
        assert_eq!(forever.len(), 1);
    }
}
