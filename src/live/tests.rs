use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use chrono::TimeZone;

use super::*;
use crate::agents::AgentSpec;

fn settings(hours: &[(&str, &[&str])]) -> LiveSettings {
    LiveSettings {
        accept_timeout_seconds: 20,
        selection: "longest_idle".into(),
        heartbeat_timeout_seconds: 15,
        wrap_up_seconds: 60,
        max_call_seconds: 3600,
        default_handle_seconds: 300,
        handle_time_weight: 0.2,
        time_zone: "Asia/Shanghai".into(),
        duty_hours: hours
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

#[test]
fn duty_hours_say_on_off_and_when_duty_opens_again() {
    let d = DutyHours::from_settings(&settings(&[
        ("legal_consultation", &["00:00-24:00"]),
        ("mediation", &["08:00-12:00", "14:00-20:00"]),
    ]))
    .unwrap();
    assert_eq!(
        d.duty("legal_consultation", shanghai(2026, 2, 17, 3, 0)),
        Duty::On
    );
    assert_eq!(d.duty("mediation", shanghai(2026, 11, 24, 9, 0)), Duty::On);
    assert_eq!(
        d.duty("mediation", shanghai(2026, 11, 24, 12, 30)),
        Duty::Off {
            opens_at: shanghai(2026, 11, 24, 14, 0)
        }
    );
    assert_eq!(
        d.duty("mediation", shanghai(2026, 11, 24, 20, 0)),
        Duty::Off {
            opens_at: shanghai(2026, 11, 25, 8, 0)
        }
    );
    assert_eq!(
        d.duty("triage", shanghai(2026, 11, 24, 9, 0)),
        Duty::NotOffered
    );
}

#[test]
fn bad_duty_hours_name_the_key() {
    let err = DutyHours::from_settings(&settings(&[("mediation", &["20:00-08:00"])])).unwrap_err();
    assert_eq!(err.0, "live.duty_hours.mediation[0]");
    let err = DutyHours::from_settings(&settings(&[("triage", &["08:00-20:00"])])).unwrap_err();
    assert_eq!(err.0, "live.duty_hours.triage");
    let err =
        DutyHours::from_settings(&settings(&[("mediation", &["08:00-12:00", "11:00-13:00"])]))
            .unwrap_err();
    assert_eq!(err.0, "live.duty_hours.mediation[1]");
    let mut s = settings(&[]);
    s.time_zone = "Mars/Olympus".into();
    assert_eq!(
        DutyHours::from_settings(&s).unwrap_err().0,
        "live.time_zone"
    );
}

#[test]
fn the_estimate_follows_the_published_formula() {
    // Position 3, 5-minute calls, 2 lawyers: 3 × 300 / 2 = 450 s.
    assert_eq!(estimate_wait_ms(3, 300_000, 2), Some(450_000));
    // Rounded up, never down.
    assert_eq!(estimate_wait_ms(1, 1_000, 3), Some(334));
    // Nobody signed in: no number at all rather than a made-up one.
    assert_eq!(estimate_wait_ms(1, 300_000, 0), None);
    assert_eq!(estimate_wait_ms(0, 300_000, 1), Some(300_000));
}

#[test]
fn ewma_starts_at_the_first_sample_and_moves_by_the_weight() {
    assert_eq!(ewma(None, 100.0, 0.2), 100.0);
    assert!((ewma(Some(100.0), 200.0, 0.2) - 120.0).abs() < 1e-9);
}

fn online(id: &str, tier: Tier, region: &str, idle: i64, active: u32) -> OnlineAgent {
    OnlineAgent {
        agent: Agent {
            id: id.into(),
            spec: AgentSpec {
                name: format!("{id}律师"),
                kind: AgentKind::Lawyer,
                skills: Vec::new(),
                regions: vec![region.into()],
                tier,
                capacity: 3,
                status: AgentStatus::Available,
                contact: Some("8012".into()),
            },
            active,
            handled: 0,
            missed: 0,
            avg_handle_seconds: 0.0,
        },
        idle_since_ms: idle,
        offering: false,
        busy_until_ms: 0,
    }
}

fn caller() -> Candidate {
    Candidate {
        id: "320831-1".into(),
        queue: "legal.320831".into(),
        band: 3,
        seq: 1,
        since_ms: 0,
        category: "labour".into(),
        region_path: "320831/城关镇/东关村/3".into(),
        min_tier: None,
    }
}

#[test]
fn the_nearest_tier_goes_first_then_the_longest_idle() {
    let agents = vec![
        online("county-idle", Tier::County, "320831", 1, 0),
        online(
            "grid-busy-recently",
            Tier::Grid,
            "320831/城关镇/东关村/3",
            500,
            0,
        ),
        online("grid-idle", Tier::Grid, "320831/城关镇/东关村/3", 100, 2),
        online("other-town", Tier::Town, "320831/高沟镇", 1, 0),
    ];
    let order: Vec<_> = rank(&agents, &caller(), "longest_idle", 1_000)
        .iter()
        .map(|o| o.agent.id.as_str())
        .collect();
    assert_eq!(order, ["grid-idle", "grid-busy-recently", "county-idle"]);
    let order: Vec<_> = rank(&agents, &caller(), "fewest_active", 1_000)
        .iter()
        .map(|o| o.agent.id.as_str())
        .collect();
    assert_eq!(order, ["grid-busy-recently", "grid-idle", "county-idle"]);
}

#[test]
fn busy_away_and_full_agents_are_not_free_and_offering_ones_come_last() {
    let mut a = vec![
        online("on-call", Tier::Grid, "320831", 0, 0),
        online("offering", Tier::Grid, "320831", 0, 1),
        online("away", Tier::Grid, "320831", 0, 0),
        online("full", Tier::Grid, "320831", 0, 3),
        online("county", Tier::County, "320831", 0, 0),
    ];
    a[0].busy_until_ms = 5_000;
    a[1].offering = true;
    a[2].agent.spec.status = AgentStatus::Away;
    let ids = |now| -> Vec<String> {
        rank(&a, &caller(), "longest_idle", now)
            .iter()
            .map(|o| o.agent.id.clone())
            .collect()
    };
    // A pushed offer of queued work can be withdrawn for a caller, but only as a last resort.
    assert_eq!(ids(1_000), ["county", "offering"]);
    // On a call, they still count for the estimate: they will be free again.
    assert_eq!(agents_on_duty(&a, &caller()), 4);
    // After the wrap-up, the agent on the call is free again, nearest tier first.
    assert_eq!(ids(6_000), ["on-call", "county", "offering"]);
}

/// A small deterministic generator (xorshift64*), so the simulated day is the same every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
}

/// What a simulated day of live calls measured.
struct Day {
    waited: usize,
    mean_wait: f64,
    mean_abs_error: f64,
    mean_error: f64,
}

/// Simulates a 12-hour duty day of one county's lawyer line: arrivals are Poisson with a morning
/// peak, handle times are Erlang-2 (call plus wrap-up, mean `handle` s, less spread than
/// exponential, as real calls are), `agents` lawyers answer in order of arrival. Each caller who
/// finds nobody free is told `estimate_wait_ms(position, moving average of finished calls,
/// agents)`; the real wait is measured. The same formula and moving average as the gateway.
fn simulate(seed: u64, agents: usize, handle: f64) -> Day {
    let mut rng = Rng(seed);
    let mut free_at: Vec<f64> = vec![0.0; agents];
    let mut finished: BinaryHeap<std::cmp::Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut starts: VecDeque<f64> = VecDeque::new();
    let mut avg: Option<f64> = None;
    let (mut t, mut n, mut sum_wait, mut sum_abs, mut sum_err) = (0.0, 0, 0.0, 0.0, 0.0);
    let day = 12.0 * 3600.0;
    while t < day {
        // Load around 90 % of capacity at the 10:00 peak, about 50 % in the afternoon.
        let hour = t / 3600.0;
        let load = if (1.0..4.0).contains(&hour) { 0.9 } else { 0.5 };
        t += rng.exp(handle / (agents as f64 * load));
        while let Some(std::cmp::Reverse((end, dur))) = finished.peek().copied() {
            if end as f64 > t * 1000.0 {
                break;
            }
            finished.pop();
            avg = Some(ewma(avg, dur as f64, 0.2));
        }
        while starts.front().is_some_and(|s| *s <= t) {
            starts.pop_front();
        }
        let (k, earliest) = free_at
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::MAX), |b, (i, f)| if f < b.1 { (i, f) } else { b });
        let start = earliest.max(t);
        let position = starts.len() as u64 + 1;
        let duration = rng.exp(handle / 2.0) + rng.exp(handle / 2.0);
        free_at[k] = start + duration;
        finished.push(std::cmp::Reverse((
            ((start + duration) * 1000.0) as u64,
            (duration * 1000.0) as u64,
        )));
        if start > t {
            starts.push_back(start);
            let told = estimate_wait_ms(position, avg.unwrap_or(handle * 1000.0) as i64, agents)
                .unwrap_or(0) as f64
                / 1000.0;
            let real = start - t;
            n += 1;
            sum_wait += real;
            sum_abs += (told - real).abs();
            sum_err += told - real;
        }
    }
    Day {
        waited: n,
        mean_wait: sum_wait / n.max(1) as f64,
        mean_abs_error: sum_abs / n.max(1) as f64,
        mean_error: sum_err / n.max(1) as f64,
    }
}

/// The stated error of the estimate (README, "Estimated wait"): over simulated days of 6 lawyers
/// with 5-minute calls, the mean absolute error is below 40 % of the mean wait and the estimate
/// is unbiased within 15 % of it (measured: 25–30 % and +5 to +10 %). A single caller's wait is random (with every agent busy, the
/// wait for position p has a spread of about √p × handle / agents), so the bound is on averages.
#[test]
fn on_a_simulated_day_the_estimate_is_within_the_stated_error() {
    for seed in [7, 11, 2026] {
        let day = simulate(seed, 6, 300.0);
        assert!(day.waited > 50, "seed {seed}: only {} waited", day.waited);
        let mae = day.mean_abs_error / day.mean_wait;
        let bias = day.mean_error / day.mean_wait;
        println!(
            "seed {seed}: {} callers waited, mean wait {:.0} s, mean |error| {:.0} s ({:.0} %), bias {:+.0} %",
            day.waited,
            day.mean_wait,
            day.mean_abs_error,
            mae * 100.0,
            bias * 100.0
        );
        assert!(mae < 0.4, "seed {seed}: mean |error| {:.0} %", mae * 100.0);
        assert!(
            bias.abs() < 0.15,
            "seed {seed}: bias {:+.0} %",
            bias * 100.0
        );
    }
}
