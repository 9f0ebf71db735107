//! Push: offering waiting tickets to agents whose consoles are connected.
//!
//! A console holds `GET /v1/agents/{id}/offers` open (Server-Sent Events); while it does, the
//! agent is online. Each mover step, in each county, the most urgent eligible waiting tickets are
//! offered to online agents that are available, below capacity and hold no offer, chosen by
//! `agents.offer_strategy` (longest idle, or fewest active). An offer is a lease of
//! `offer_timeout_seconds`, taken by the same atomic script as a pull claim, so a ticket is never
//! offered to two agents at once. A timeout or a decline returns it to its place in line and it
//! is offered again; after `away_after_missed` misses in a row the agent is set away. The console
//! hears of its offers from the county's event stream, read on a connection of its own, so any
//! gateway replica can serve any console.

use std::collections::{BTreeMap, HashSet};

use crate::agents::{AgentStatus, AgentsSettings, ClaimRules, Step, eligible, order};
use crate::queues::{ClaimMode, ClaimOutcome, Store, StoreError};

/// What the offer round needs from the settings.
#[derive(Debug, Clone, Default)]
pub struct OfferConfig {
    /// Offer lease length, ms.
    pub timeout_ms: u64,
    /// `longest_idle` or `fewest_active`.
    pub strategy: String,
    /// Widening steps per service.
    pub widening: BTreeMap<String, Vec<Step>>,
    /// Skip widening steps nobody could serve.
    pub skip_empty_steps: bool,
    /// Aging of priority.
    pub aging_seconds: u64,
    /// Waiting tickets looked at per queue.
    pub scan: usize,
}

impl OfferConfig {
    /// From `[agents]`.
    pub fn from_settings(a: &AgentsSettings) -> OfferConfig {
        OfferConfig {
            timeout_ms: a.offer_timeout_seconds * 1000,
            strategy: a.offer_strategy.clone(),
            widening: a.widening.clone(),
            skip_empty_steps: a.skip_empty_steps,
            aging_seconds: a.aging_seconds,
            scan: a.claim_scan,
        }
    }
}

/// Offers what can be offered in one county now; returns how many offers were made.
pub async fn offer_round(
    store: &Store,
    county: &str,
    cfg: &OfferConfig,
) -> Result<usize, StoreError> {
    let online = store.online_agents(county).await?;
    let now = store.now_ms();
    let ready: Vec<_> = online
        .into_iter()
        .filter(|o| {
            o.agent.spec.status == AgentStatus::Available
                && o.agent.active < o.agent.spec.capacity
                && !o.offering
                && o.busy_until_ms <= now
        })
        .map(|o| (o.agent, o.idle_since_ms))
        .collect();
    if ready.is_empty() {
        return Ok(0);
    }
    let everyone = store.agents(Some(county)).await?;
    let mut taken: HashSet<String> = HashSet::new();
    let mut offered = 0;
    let mut kinds: Vec<_> = ready.iter().map(|(a, _)| a.spec.kind).collect();
    kinds.dedup();
    for kind in kinds {
        let steps = cfg
            .widening
            .get(kind.service())
            .cloned()
            .unwrap_or_default();
        let rules = ClaimRules {
            steps: &steps,
            skip_empty_steps: cfg.skip_empty_steps,
            aging_seconds: cfg.aging_seconds,
        };
        let (mut candidates, _) = store
            .candidates_page(county, kind.queue_kind(), 0, cfg.scan)
            .await?;
        order(&mut candidates, cfg.aging_seconds, now);
        for c in candidates {
            let best = ready
                .iter()
                .filter(|(a, _)| a.spec.kind == kind && !taken.contains(&a.id))
                .filter(|(a, _)| eligible(a, &c, &rules, &everyone, now))
                .min_by_key(|(a, idle_since)| {
                    if cfg.strategy == "fewest_active" {
                        (i64::from(a.active), *idle_since)
                    } else {
                        (*idle_since, i64::from(a.active))
                    }
                });
            let Some((agent, _)) = best else {
                continue;
            };
            if let ClaimOutcome::Leased { .. } = store
                .claim(county, &c, &agent.id, cfg.timeout_ms, ClaimMode::Offer)
                .await?
            {
                offered += 1;
                crate::metrics::queue_event(&c.queue, "offer");
                crate::metrics::queue_wait(&c.queue, (now - c.since_ms) as f64 / 1000.0);
            }
            taken.insert(agent.id.clone());
            if ready
                .iter()
                .all(|(a, _)| a.spec.kind != kind || taken.contains(&a.id))
            {
                break;
            }
        }
    }
    Ok(offered)
}
