//! Claiming (抢单/领单): an agent pulls the most urgent, oldest ticket it may take, under a
//! lease. The order and eligibility are the pure rules of [`crate::agents`]; the queues are read
//! a page at a time, only as far as a better ticket could still be found, and `claim.lua` takes
//! the best candidate atomically (if another agent was faster, the next one).

use crate::agents::{Agent, ClaimRules, claim_key, eligible, may_beat, order};
use crate::lifecycle::TicketRecord;
use crate::queues::{ClaimOutcome, StoreError};
use crate::state::AppState;

/// Waiting tickets read per queue per page by a claim.
const CLAIM_PAGE: usize = 16;

/// A ticket claimed under a lease.
#[derive(Debug)]
pub struct Claimed {
    /// The lease (a fencing token).
    pub lease_id: String,
    /// When it lapses, ms.
    pub expires_ms: i64,
    /// The ticket, leased.
    pub ticket: TicketRecord,
}

/// Why a claim found nothing to give.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The agent became unavailable or full while claiming.
    #[error("{0}")]
    NoLongerFree(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data the claim cannot use (a defect).
    #[error("internal: {0}")]
    Internal(String),
}

/// Claims the best ticket `agent` may take now; `None` when nothing eligible waits. The caller
/// checks first that the agent is available and below capacity.
pub async fn claim(state: &AppState, agent: &Agent) -> Result<Option<Claimed>, ClaimError> {
    let Some(county) = agent.spec.county().map(String::from) else {
        return Err(ClaimError::Internal("agent without a county".into()));
    };
    let id = &agent.id;
    let settings = &state.settings.agents;
    let steps = settings
        .widening
        .get(agent.spec.kind.service())
        .cloned()
        .unwrap_or_default();
    let rules = ClaimRules {
        steps: &steps,
        skip_empty_steps: settings.skip_empty_steps,
        aging_seconds: settings.aging_seconds,
    };
    let others = state.store.agents(Some(&county)).await?;
    // Read the queues a page at a time, only as far as a better ticket could still be found.
    let now = state.store.now_ms();
    let mut candidates = Vec::new();
    let mut start = 0;
    loop {
        let (page, pages) = state
            .store
            .candidates_page(&county, agent.spec.kind.queue_kind(), start, CLAIM_PAGE)
            .await?;
        candidates.extend(
            page.into_iter()
                .filter(|c| eligible(agent, c, &rules, &others, now)),
        );
        order(&mut candidates, settings.aging_seconds, now);
        start += CLAIM_PAGE;
        if start >= settings.claim_scan || !pages.iter().any(|p| p.more) {
            break;
        }
        if let Some(best) = candidates.first()
            && !may_beat(
                &pages,
                claim_key(best, settings.aging_seconds, now),
                settings.aging_seconds,
                now,
            )
        {
            break;
        }
    }
    for c in candidates {
        match state
            .store
            .claim(
                &county,
                &c,
                id,
                settings.lease_seconds * 1000,
                crate::queues::ClaimMode::Claim,
            )
            .await?
        {
            ClaimOutcome::Leased {
                lease_id,
                expires_ms,
            } => {
                crate::metrics::queue_event(&c.queue, "claim");
                crate::metrics::queue_wait(&c.queue, (now - c.since_ms) as f64 / 1000.0);
                state.mover.wake(&county);
                let ticket = state
                    .store
                    .ticket(&c.id)
                    .await?
                    .ok_or_else(|| ClaimError::Internal("claimed ticket vanished".into()))?;
                crate::metrics::ticket_action("claim");
                return Ok(Some(Claimed {
                    lease_id,
                    expires_ms,
                    ticket,
                }));
            }
            // Another agent was faster: try the next one in line.
            ClaimOutcome::Gone => continue,
            ClaimOutcome::Full | ClaimOutcome::Unavailable | ClaimOutcome::Busy => {
                return Err(ClaimError::NoLongerFree(format!(
                    "agent `{id}` became unavailable or full"
                )));
            }
        }
    }
    Ok(None)
}
