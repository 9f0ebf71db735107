'use strict';
// BullMQ, the most used Redis-backed job queue, measured on the same machine and in the same run
// as hotline-gateway, so our figures have a peer. Started by `--scenario peer` of the Rust load
// generator (load-tests/src/peer.rs), which installs this folder into a temp dir, starts a
// redis-server configured like ours (AOF everysec, noeviction) on a free loopback port, and reads
// the one JSON line this prints on stdout. Everything is bounded in time and in count, and only
// 127.0.0.1 is contacted.
//
//   node bench.js --port P --duration S --samples FILE [--in-flight 50] [--worker-concurrency 50]
//                 [--delayed 20000] [--lead-ms 10000] [--max-jobs N] [--drain-timeout-s 60]
//
// Phases, each on its own queue name so none sees another's jobs:
//   add_alone       prioritized Queue.add, `--in-flight` calls outstanding, no worker;
//   add_and_worker  the same producers plus a Worker (`--worker-concurrency`) whose processor does
//                   nothing: jobs completed per second, and add-to-start latency (processor start
//                   minus job.timestamp) while the producers keep the queue saturated;
//   delayed         `--delayed` jobs all due at one instant (`--lead-ms` after the phase starts),
//                   lateness = processor start minus due time: BullMQ's way of doing SLA timers.

const fs = require('fs');
const { performance } = require('perf_hooks');
const { Queue, Worker } = require('bullmq');

/** The value after `--name`, or `fallback`. */
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback === undefined) {
      throw new Error(`--${name} is required`);
    }
    return fallback;
  }
  return process.argv[i + 1];
}

const port = Number(arg('port'));
const durationMs = Number(arg('duration', '20')) * 1000;
const inFlight = Number(arg('in-flight', '50'));
const workerConcurrency = Number(arg('worker-concurrency', '50'));
const delayedCount = Number(arg('delayed', '20000'));
const leadMs = Number(arg('lead-ms', '10000'));
const maxJobs = Number(arg('max-jobs', '20000000'));
const drainTimeoutMs = Number(arg('drain-timeout-s', '60')) * 1000;
// Realistic ticket bodies written by the Rust side (same generator as the `steady` scenario),
// each with the priority band the gateway would give it, so payloads are comparable.
const samples = JSON.parse(fs.readFileSync(arg('samples'), 'utf8'));
if (!Array.isArray(samples) || samples.length === 0) {
  throw new Error('the samples file holds no tickets');
}

// The only host ever contacted. maxRetriesPerRequest null is what BullMQ asks of worker
// connections, so a slow Redis blocks rather than failing the worker.
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };

/** Percentiles of an array of milliseconds, rounded to 0.01 ms. */
function percentiles(values) {
  if (values.length === 0) {
    return { count: 0 };
  }
  const a = Float64Array.from(values).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(p * a.length) - 1))];
  const r = (x) => Math.round(x * 100) / 100;
  return {
    count: a.length,
    p50: r(q(0.5)),
    p90: r(q(0.9)),
    p99: r(q(0.99)),
    p99_9: r(q(0.999)),
    max: r(a[a.length - 1]),
  };
}

/** A short error kind for the error counts. */
function kind(e) {
  const m = String((e && e.message) || e);
  return m.split(/[:\n]/)[0].slice(0, 60);
}

/**
 * `inFlight` producers adding prioritized jobs until `deadline` or `limit` jobs; the latency of
 * each add call is recorded.
 */
async function produce(queue, deadline, limit) {
  const stats = { attempted: 0, added: 0, errors: {}, latency: [] };
  async function one() {
    while (Date.now() < deadline && stats.attempted < limit) {
      const s = samples[stats.attempted++ % samples.length];
      const t0 = performance.now();
      try {
        await queue.add('ticket', s.ticket, { priority: s.priority });
        stats.added++;
        stats.latency.push(performance.now() - t0);
      } catch (e) {
        const k = kind(e);
        stats.errors[k] = (stats.errors[k] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, one));
  return stats;
}

/** Job counts of every state, for the lost/duplicated check. */
async function counts(queue) {
  return queue.getJobCounts(
    'completed',
    'failed',
    'active',
    'wait',
    'prioritized',
    'delayed',
    'paused',
    'waiting-children',
  );
}

/** Sleeps `ms`. */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function addAlone() {
  const queue = new Queue('hl-peer-add', { connection });
  await queue.waitUntilReady();
  const t0 = performance.now();
  const stats = await produce(queue, Date.now() + durationMs, maxJobs);
  const wall = (performance.now() - t0) / 1000;
  const c = await counts(queue);
  const stored = c.prioritized + c.wait;
  await queue.close();
  return {
    in_flight: inFlight,
    added: stats.added,
    wall_seconds: Math.round(wall * 1000) / 1000,
    add_per_s: Math.round((stats.added / wall) * 10) / 10,
    add_call_latency_ms: percentiles(stats.latency),
    errors: stats.errors,
    verification: { acknowledged: stats.added, stored, lost: Math.max(0, stats.added - stored), duplicated: Math.max(0, stored - stats.added) },
  };
}

async function addAndWorker() {
  const name = 'hl-peer-work';
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  const startLatency = [];
  const seen = new Set();
  let processedTwice = 0;
  let completed = 0;
  const worker = new Worker(
    name,
    async (job) => {
      startLatency.push(Date.now() - job.timestamp);
      if (seen.has(job.id)) {
        processedTwice++;
      }
      seen.add(job.id);
      return null;
    },
    { connection, concurrency: workerConcurrency },
  );
  worker.on('completed', () => {
    completed++;
  });
  await worker.waitUntilReady();
  const t0 = performance.now();
  const stats = await produce(queue, Date.now() + durationMs, maxJobs);
  const wall = (performance.now() - t0) / 1000;
  const completedInWindow = completed;
  // close() lets jobs already started finish; what is still waiting stays in Redis.
  await worker.close();
  const c = await counts(queue);
  await queue.close();
  const stored = c.completed + c.failed + c.active + c.wait + c.prioritized + c.delayed;
  return {
    in_flight: inFlight,
    worker_concurrency: workerConcurrency,
    added: stats.added,
    wall_seconds: Math.round(wall * 1000) / 1000,
    add_per_s: Math.round((stats.added / wall) * 10) / 10,
    completed_per_s: Math.round((completedInWindow / wall) * 10) / 10,
    completed_in_window: completedInWindow,
    waiting_at_end: c.wait + c.prioritized,
    add_to_start_ms: percentiles(startLatency),
    errors: stats.errors,
    job_counts: c,
    verification: {
      acknowledged: stats.added,
      stored,
      lost: Math.max(0, stats.added - stored),
      duplicated: Math.max(0, stored - stats.added),
      processed_twice: processedTwice,
      failed: c.failed,
    },
  };
}

async function delayed() {
  const name = 'hl-peer-timers';
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  const lateness = [];
  const seen = new Set();
  let processedTwice = 0;
  const worker = new Worker(
    name,
    async (job) => {
      lateness.push(Date.now() - job.data.due_ms);
      if (seen.has(job.id)) {
        processedTwice++;
      }
      seen.add(job.id);
      return null;
    },
    { connection, concurrency: workerConcurrency },
  );
  await worker.waitUntilReady();
  const due = Date.now() + leadMs;
  const scheduleStart = performance.now();
  let next = 0;
  let added = 0;
  const errors = {};
  async function one() {
    while (next < delayedCount) {
      const i = next++;
      const s = samples[i % samples.length];
      try {
        await queue.add(
          'breach',
          { due_ms: due, ticket: s.ticket },
          { delay: Math.max(0, due - Date.now()), priority: s.priority },
        );
        added++;
      } catch (e) {
        const k = kind(e);
        errors[k] = (errors[k] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, one));
  const scheduledInMs = performance.now() - scheduleStart;
  const scheduledBeforeDue = Date.now() < due;
  const deadline = due + drainTimeoutMs;
  while (seen.size < added && Date.now() < deadline) {
    await sleep(20);
  }
  await worker.close();
  const c = await counts(queue);
  await queue.close();
  return {
    jobs: delayedCount,
    added,
    lead_ms: leadMs,
    worker_concurrency: workerConcurrency,
    scheduling_ms: Math.round(scheduledInMs),
    all_scheduled_before_due: scheduledBeforeDue,
    lateness_ms: percentiles(lateness),
    errors,
    job_counts: c,
    verification: { scheduled: added, fired_once: seen.size, lost: Math.max(0, added - seen.size), fired_twice: processedTwice },
  };
}

async function main() {
  const bullmqVersion = require('bullmq/package.json').version;
  const bytes = samples.map((s) => Buffer.byteLength(JSON.stringify(s.ticket)));
  const out = {
    peer: 'bullmq',
    bullmq_version: bullmqVersion,
    node_version: process.version,
    duration_s: durationMs / 1000,
    payload_bytes: {
      mean: Math.round(bytes.reduce((a, b) => a + b, 0) / bytes.length),
      min: Math.min(...bytes),
      max: Math.max(...bytes),
    },
  };
  process.stderr.write(`peer: add alone, ${durationMs / 1000} s, ${inFlight} in flight ...\n`);
  out.add_alone = await addAlone();
  process.stderr.write(`peer: add and worker, ${durationMs / 1000} s ...\n`);
  out.add_and_worker = await addAndWorker();
  process.stderr.write(`peer: ${delayedCount} delayed jobs due at one instant ...\n`);
  out.delayed = await delayed();
  const v = [out.add_alone.verification, out.add_and_worker.verification];
  out.ok =
    v.every((x) => x.lost === 0 && x.duplicated === 0) &&
    out.add_and_worker.verification.processed_twice === 0 &&
    out.delayed.verification.lost === 0 &&
    out.delayed.verification.fired_twice === 0;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// A hard stop, whatever happens: the phases plus the drain can never take longer than this.
const hardStop = setTimeout(
  () => {
    process.stderr.write('peer: hard time limit reached\n');
    process.exit(3);
  },
  2 * durationMs + leadMs + drainTimeoutMs + 120000,
);
hardStop.unref();

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`peer: ${(e && e.stack) || e}\n`);
    process.exit(2);
  },
);
