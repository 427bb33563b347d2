//! Jittered exponential backoff that honours the server's `Retry-After`, and a retry loop for
//! the one-shot modes (bounded by `--retry-deadline`).

use std::time::Duration;

use tokio::time::Instant;

/// An error that may go away if the request is repeated later.
pub trait Transient {
    /// Worth retrying.
    fn is_transient(&self) -> bool;
    /// How long the server asked us to wait, if it did.
    fn retry_after(&self) -> Option<Duration>;
}

/// Exponential backoff with "equal jitter": each delay is half the current step plus a random
/// part of the other half, so a fleet of pods that failed together does not retry together.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// A backoff from `min` doubling up to `max` (`max` is raised to `min` if smaller).
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            step: min,
        }
    }

    /// The delay before the next attempt. A `Retry-After` from the server is a floor: a fleet
    /// that is being rate limited must slow down, never speed up.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let half = self.step / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        self.step = (self.step * 2).min(self.max);
        match retry_after {
            // Up to 10% on top, so that clients told the same instant do not return in step.
            Some(wait) => wait.max(jittered) + wait.mul_f64(0.1 * fastrand::f64()),
            None => jittered,
        }
    }

    /// Back to the first step after a success.
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

/// Retries transient failures of the one-shot modes until `--retry-deadline` has passed.
///
/// ```ignore
/// let mut retry = RetryUntil::new(deadline);
/// let result = loop {
///     match source.fetch(None).await {
///         Err(error) if retry.wait(&error).await => continue,
///         other => break other,
///     }
/// };
/// ```
pub struct RetryUntil {
    started: Instant,
    deadline: Duration,
    backoff: Backoff,
}

impl RetryUntil {
    /// Starts the clock.
    pub fn new(deadline: Duration) -> Self {
        Self {
            started: Instant::now(),
            deadline,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(15)),
        }
    }

    /// If `error` is transient and the deadline allows another attempt, logs it, sleeps the
    /// backoff (at least the server's `Retry-After`) and returns true; otherwise returns false.
    pub async fn wait<E: Transient + std::fmt::Display>(&mut self, error: &E) -> bool {
        if !error.is_transient() {
            return false;
        }
        let delay = self.backoff.next_delay(error.retry_after());
        if self.started.elapsed() + delay > self.deadline {
            return false;
        }
        tracing::warn!(retry_in_ms = delay.as_millis() as u64, "{error}; retrying");
        tokio::time::sleep(delay).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = backoff.next_delay(None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(backoff.next_delay(None) <= Duration::from_secs(1));
        }
        assert!(backoff.next_delay(None) >= Duration::from_millis(500));
        backoff.reset();
        assert!(backoff.next_delay(None) <= Duration::from_millis(100));
    }

    #[test]
    fn retry_after_is_a_floor_even_above_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delay = backoff.next_delay(Some(Duration::from_secs(2)));
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_millis(2200));
    }

    /// An error as a server would answer it: 5xx are transient, 4xx are not.
    #[derive(Debug, PartialEq)]
    struct Status(u16);

    impl std::fmt::Display for Status {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HTTP {}", self.0)
        }
    }

    impl Transient for Status {
        fn is_transient(&self) -> bool {
            self.0 >= 500
        }

        fn retry_after(&self) -> Option<Duration> {
            None
        }
    }

    fn error(status: u16) -> Status {
        Status(status)
    }

    async fn run(
        deadline: Duration,
        mut outcome: impl FnMut(u32) -> Result<u32, Status>,
    ) -> (Result<u32, Status>, u32) {
        let mut retry = RetryUntil::new(deadline);
        let mut calls = 0;
        let result = loop {
            calls += 1;
            match outcome(calls) {
                Err(error) if retry.wait(&error).await => continue,
                other => break other,
            }
        };
        (result, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let (result, calls) = run(Duration::from_secs(60), |n| {
            if n < 3 {
                Err(error(503))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_and_deadlines_end_the_loop() {
        let (result, calls) = run(Duration::from_secs(60), |_| Err(error(404))).await;
        assert_eq!(result.unwrap_err(), Status(404));
        assert_eq!(calls, 1);

        let started = tokio::time::Instant::now();
        let (result, calls) = run(Duration::from_secs(5), |_| Err(error(502))).await;
        assert_eq!(result.unwrap_err(), Status(502));
        assert!(calls > 2);
        assert!(started.elapsed() <= Duration::from_secs(5));
    }
}
