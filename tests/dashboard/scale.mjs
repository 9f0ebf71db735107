// Drives the dashboard in Debian's headless Chromium against a gateway whose warning scale is
// not the default one (run by tests/dashboard.rs):
//   node scale.mjs <base_url> <supervisor_token> <screenshot_path> <partner_token>
// The gateway's scale, highest first, is red, orange, yellow, watch (a custom name), none, and
// its accept clock breaches after two seconds and raises the ticket one priority band.
// Checks (issue 16): the queue tile shows warning levels from the configured scale (names,
// order, colours served by the gateway) and priority bands apart from them, so a ticket raised
// a band is still counted at its own level; the 24-hour SLA compliance counts a clock breached
// and still running. Exits 0 when every check passed, 1 with the reason on stderr otherwise.
import { chromium } from 'playwright-core';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [base, supervisor, screenshot, partner] = process.argv.slice(2);
if (!base || !supervisor || !screenshot || !partner) {
  console.error('usage: node scale.mjs <base_url> <supervisor_token> <screenshot_path> <partner_token>');
  process.exit(2);
}

const QUEUE = 'mediation.320831.labour';
const GENEROUS_MS = 30000;
const SCALE = ['red', 'orange', 'yellow', 'watch', 'none'];
const ZH = { red: '红色', orange: '橙色', yellow: '黄色', watch: 'watch', none: '无' };
const EN = { red: 'Red', orange: 'Orange', yellow: 'Yellow', watch: 'watch', none: 'None' };

function log(...args) { console.log(`[scale ${new Date().toISOString()}]`, ...args); }
function fail(message) { throw new Error(message); }

async function api(method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: Object.assign({ authorization: `Bearer ${token}` }, body ? { 'content-type': 'application/json' } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const userDataDir = await mkdtemp(join(tmpdir(), 'hl-dashboard-scale-'));
let context;
const pageErrors = [];
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
    locale: 'zh-CN',
    timeout: 60000,
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(GENEROUS_MS);
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`console error: ${m.text()}`);
  });

  await page.goto(`${base}/dashboard`);
  await page.fill('#token', supervisor);
  await page.click('#signin-form button[type=submit]');
  const tile = page.locator(`[data-testid=queue-tile][data-queue="${QUEUE}"]`);
  await tile.waitFor();
  log('signed in');

  // A ticket whose accept clock breaches: the breach raises it one band.
  const posted = await api('POST', '/v1/tickets', partner, {
    source: '12345', external_id: `SCALE-${Date.now()}`, received_at: new Date().toISOString(), channel: 'phone',
    transfer: 'one_click', caller: { name: '王建国', phone: '13812348001' },
    region: { code: '320831', town: '城关镇', village: '东关村' }, title: '工地拖欠工资',
    text: '来电人反映在城关镇某工地打工，老板拖欠工资三个月共两万元，双方多次协商未果，今天在工地吵起来了，希望调解员帮忙协调讨要工资。',
    people_involved: 2,
  });
  if (posted.status !== 201) fail(`POST /v1/tickets answered ${posted.status}: ${JSON.stringify(posted.json)}`);
  const id = posted.json.id;
  await page.locator(`[data-testid=breached-row][data-id="${id}"]`).waitFor();
  const risk = await api('GET', '/v1/dashboard/risk', supervisor);
  const item = (risk.json.breached || []).find((r) => r.id === id);
  if (!item) fail(`${id} is not in the breached list: ${JSON.stringify(risk.json)}`);
  const level = item.warning_level;
  const position = SCALE.indexOf(level);
  if (position < 1) fail(`the test needs a ticket below the top level; ${id} is ${level}`);
  log(`${id} breached; its level is ${level}`);

  // Every ticket in QUEUE is at `level` (the one posted by the Rust test is the same text).
  const queues = await api('GET', '/v1/queues', supervisor);
  const q = queues.json.queues.find((x) => x.name === QUEUE);
  const waiting = q ? q.depth : 0;

  // The tile's warning levels: the configured scale in its order, each ticket at its own level.
  const expected = SCALE.map((l) => `${ZH[l]} ${l === level ? waiting : 0}`);
  const chips = tile.locator('.levels .level');
  try {
    await page.waitForFunction(({ q, want }) => {
      const tile = document.querySelector(`[data-testid=queue-tile][data-queue="${q}"]`);
      const got = tile ? [...tile.querySelectorAll('.levels .level')].map((c) => c.textContent) : [];
      return JSON.stringify(got) === JSON.stringify(want);
    }, { q: QUEUE, want: expected }, { timeout: GENEROUS_MS });
  } catch (_) {
    fail(`the tile's warning levels read ${JSON.stringify(await chips.allTextContents())}, expected ${JSON.stringify(expected)}`);
  }
  log('warning levels:', JSON.stringify(await chips.allTextContents()));

  // Colours come from the gateway's scale, not from the page.
  const config = await api('GET', '/v1/dashboard/config', supervisor);
  if (config.status !== 200) fail(`GET /v1/dashboard/config answered ${config.status}`);
  const served = config.json.warning_levels.map((l) => l.name);
  if (JSON.stringify(served) !== JSON.stringify(SCALE)) fail(`the gateway serves the scale ${JSON.stringify(served)}`);
  const colours = await chips.evaluateAll((cs) => cs.map((c) => getComputedStyle(c).borderTopColor));
  const hex = (rgb) => '#' + rgb.match(/\d+/g).slice(0, 3).map((n) => Number(n).toString(16).padStart(2, '0')).join('');
  config.json.warning_levels.forEach((l, i) => {
    if (hex(colours[i]) !== l.colour.toLowerCase()) fail(`level ${l.name} is drawn in ${colours[i]}, not ${l.colour}`);
  });
  if (new Set(colours).size < 3) fail(`the levels are not told apart by colour: ${JSON.stringify(colours)}`);

  // Bands apart: the raised ticket waits one band above its level's, and no band wears a level's name.
  const bands = await tile.locator('.bands .band').allTextContents();
  log('priority bands:', JSON.stringify(bands));
  if (bands.length !== SCALE.length) fail(`the tile shows ${bands.length} bands: ${JSON.stringify(bands)}`);
  const raised = bands[position - 1];
  if (!raised.endsWith(` ${waiting}`) || !raised.includes(String(position))) fail(`band ${position} should hold ${waiting}: ${JSON.stringify(bands)}`);
  for (const b of bands) {
    for (const name of [...Object.values(ZH), ...Object.values(EN)]) {
      if (name !== 'watch' && b.includes(name)) fail(`a band is labelled with a level name: ${b}`);
    }
  }

  // 24-hour SLA compliance counts the breached, still running clock: never "—" now.
  const sla = tile.locator('[data-testid=sla-24h]');
  const slaText = await sla.textContent().catch(() => null);
  if (!slaText || !/^0% \(0\/\d+\)$/.test(slaText)) fail(`the 24-hour compliance reads ${JSON.stringify(slaText)}`);
  log('24-hour compliance:', slaText);

  // The breached row names the ticket's level from the scale.
  const rowLevel = await page.locator(`[data-testid=breached-row][data-id="${id}"] .level`).first().textContent();
  if (rowLevel !== ZH[level]) fail(`the breached row shows level ${JSON.stringify(rowLevel)}`);

  await mkdir(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });

  // English: the same scale, English names where the gateway knows them.
  await page.click('#lang');
  await page.locator('h1', { hasText: 'Hotline tickets: live' }).waitFor();
  const english = SCALE.map((l) => `${EN[l]} ${l === level ? waiting : 0}`);
  const got = await tile.locator('.levels .level').allTextContents();
  if (JSON.stringify(got) !== JSON.stringify(english)) fail(`English levels read ${JSON.stringify(got)}`);
  const enBands = await tile.locator('.bands .band').allTextContents();
  if (!enBands[0].startsWith('Band 1')) fail(`English bands read ${JSON.stringify(enBands)}`);
  await page.screenshot({ path: screenshot.replace(/(\.png)?$/, '-en.png'), fullPage: true });
  await page.click('#lang');

  if (pageErrors.length) fail(`the page reported errors:\n${pageErrors.join('\n')}`);
  log('all checks passed');
} catch (e) {
  console.error(`dashboard scale check failed: ${e.message}`);
  if (pageErrors.length) console.error(pageErrors.join('\n'));
  const page = context && context.pages()[0];
  if (page) {
    const failed = screenshot.replace(/(\.png)?$/, '-failed.png');
    await mkdir(dirname(failed), { recursive: true }).catch(() => {});
    await page.screenshot({ path: failed, fullPage: true }).catch(() => {});
    console.error(`screenshot of the failure: ${failed}`);
  }
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}
