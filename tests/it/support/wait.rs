//! Bounded waits: a probe asked again every so often until it answers, for
//! at most a timeout. One way for every test to wait, with one failure
//! message (what was awaited, for how long, and the last answer seen):
//!
//! `Wait::secs(30).every_ms(50).until("the upload", probe).await`

use std::{fmt::Debug, future::Future, time::Duration};
use tokio::time::Instant;

/// How long to wait, and how often to ask.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    timeout: Duration,
    every: Duration,
}

impl Wait {
    /// At most `timeout`, asking every 100 ms.
    pub const fn up_to(timeout: Duration) -> Self {
        Self {
            timeout,
            every: Duration::from_millis(100),
        }
    }

    /// At most `secs` seconds, asking every 100 ms.
    pub const fn secs(secs: u64) -> Self {
        Self::up_to(Duration::from_secs(secs))
    }

    /// Asking every `ms` milliseconds instead.
    pub const fn every_ms(self, ms: u64) -> Self {
        Self {
            every: Duration::from_millis(ms),
            ..self
        }
    }

    /// Asks `probe` until it answers `Ok`, and returns that. Past the
    /// timeout the test fails with `what` and the last `Err` seen.
    pub async fn until<T, M, F, Fut>(self, what: &str, probe: F) -> T
    where
        M: Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, M>>,
    {
        let timeout = self.timeout;
        match self.within(probe).await {
            Ok(found) => found,
            Err(last) => panic!("{what}: not within {timeout:?}; last seen: {last:?}"),
        }
    }

    /// Asks `probe` until it answers `Ok` (at least once): its `Ok`, or its
    /// last `Err` once the timeout passed.
    pub async fn within<T, M, F, Fut>(self, mut probe: F) -> Result<T, M>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, M>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            match probe().await {
                Ok(found) => return Ok(found),
                Err(last) if Instant::now() >= deadline => return Err(last),
                Err(_) => tokio::time::sleep(self.every).await,
            }
        }
    }
}

/// A probe's answer: `Ok` once `done`, else `miss` (what a failure shows).
pub fn ok_when<M>(done: bool, miss: M) -> Result<(), M> {
    if done {
        Ok(())
    } else {
        Err(miss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_once_the_probe_does() {
        let mut asked = 0;
        let got = Wait::secs(5)
            .every_ms(0)
            .until("the third answer", || {
                asked += 1;
                let n = asked;
                async move { ok_when(n == 3, n).map(|()| n) }
            })
            .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn gives_the_last_miss_when_time_runs_out() {
        let mut asked = 0;
        let wait = Wait::up_to(Duration::from_millis(50)).every_ms(5);
        let last = wait
            .within(|| {
                asked += 1;
                let n = asked;
                async move { ok_when(false, n) }
            })
            .await
            .unwrap_err();
        assert!(last >= 2, "asked again until the timeout: {last}");
    }
}
