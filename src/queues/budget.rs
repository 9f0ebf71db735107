//! A request's budget of time waiting for Redis.
//!
//! Each Redis command has its own response timeout, but a request may send several (the rate
//! limit, a read, a script, a retry), and under a stall each waits the full timeout in turn:
//! a ticket read once took 10 s to answer `503`. So a request runs inside [`within_budget`],
//! and every command it sends through the store may only wait for what is left of the budget;
//! once it is spent, the command fails at once as a timeout (the caller answers `503` with the
//! honest "may have been carried out" detail). Only time spent waiting for Redis counts, so a
//! slow upload of a body does not eat into it (that has its own deadline at the HTTP edge).
//!
//! Background work (timers, callbacks, streams) runs outside any budget and keeps the
//! per-command response timeout alone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

tokio::task_local! {
    static BUDGET: Budget;
}

/// What is left of one request's time for Redis.
struct Budget {
    limit: Duration,
    spent: Mutex<Duration>,
}

impl Budget {
    fn remaining(&self) -> Duration {
        let spent = self.spent.lock().map(|s| *s).unwrap_or(self.limit);
        self.limit.saturating_sub(spent)
    }

    fn charge(&self, waited: Duration) {
        if let Ok(mut spent) = self.spent.lock() {
            *spent += waited;
        }
    }
}

/// Runs `work` with at most `limit` of waiting for Redis across all the commands it sends
/// through the store; `Duration::ZERO` means no budget (the per-command timeout alone).
pub async fn within_budget<F: Future>(limit: Duration, work: F) -> F::Output {
    if limit.is_zero() {
        return work.await;
    }
    BUDGET
        .scope(
            Budget {
                limit,
                spent: Mutex::new(Duration::ZERO),
            },
            work,
        )
        .await
}

/// The store's connection: the shared multiplexed connection, each command bounded by the
/// current request's budget when there is one.
#[derive(Clone)]
pub(super) struct BoundedConn(pub(super) ConnectionManager);

/// A command refused or cut off because the request's budget is spent: a timeout, so the
/// answer says the request may have been carried out.
fn spent() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request's time for Redis is spent",
    ))
}

/// Awaits `fut` for at most what is left of the current budget, and charges the wait.
async fn bounded<T>(
    left: Option<Duration>,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    let Some(left) = left else {
        return fut.await;
    };
    if left.is_zero() {
        return Err(spent());
    }
    let started = Instant::now();
    let out = tokio::time::timeout(left, fut).await;
    let _ = BUDGET.try_with(|b| b.charge(started.elapsed()));
    out.unwrap_or_else(|_| Err(spent()))
}

impl ConnectionLike for BoundedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let left = BUDGET.try_with(Budget::remaining).ok();
        Box::pin(bounded(left, self.0.req_packed_command(cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let left = BUDGET.try_with(Budget::remaining).ok();
        Box::pin(bounded(
            left,
            self.0.req_packed_commands(pipeline, offset, count),
        ))
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spent_budget_fails_at_once_as_a_timeout_and_no_budget_waits_freely() {
        let never = std::future::pending::<Result<(), RedisError>>();
        let out = within_budget(Duration::from_millis(1), async {
            let first = bounded(BUDGET.try_with(Budget::remaining).ok(), never).await;
            let second = bounded(BUDGET.try_with(Budget::remaining).ok(), async {
                Ok::<_, RedisError>(())
            })
            .await;
            (first, second)
        })
        .await;
        let (first, second) = out;
        assert!(first.is_err_and(|e| e.is_timeout()));
        assert!(second.is_err_and(|e| e.is_timeout()), "the budget is spent");
        // Outside any budget a command is not bounded here.
        assert!(
            bounded(BUDGET.try_with(Budget::remaining).ok(), async {
                Ok::<_, RedisError>(())
            })
            .await
            .is_ok()
        );
    }
}
