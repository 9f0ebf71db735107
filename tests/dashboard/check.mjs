// Drives the dashboard in Debian's headless Chromium (run by tests/dashboard.rs):
//   node check.mjs <base_url> <supervisor_token> <screenshot_path> <partner_token>
// Exits 0 when every check passed, 1 with the reason on stderr otherwise. The only timed
// assertion is the "updates within 2 s of a ticket being posted"; every other wait has a
// generous limit so that a slow shared machine does not make the test flaky.
import { chromium } from 'playwright-core';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [base, supervisor, screenshot, partner] = process.argv.slice(2);
if (!base || !supervisor || !screenshot || !partner) {
  console.error('usage: node check.mjs <base_url> <supervisor_token> <screenshot_path> <partner_token>');
  process.exit(2);
}

const QUEUE = 'mediation.320831.labour';
const UPDATE_LIMIT_MS = 2000;
const GENEROUS_MS = 30000;

function log(...args) { console.log(`[check ${new Date().toISOString()}]`, ...args); }
function fail(message) { throw new Error(message); }

// A wage dispute in county 320831, as the Rust tests' `ticket()`; it goes to QUEUE.
function ticket(externalId) {
  return {
    source: '12345', external_id: externalId, received_at: new Date().toISOString(), channel: 'phone',
    transfer: 'one_click', caller: { name: '王建国', phone: '13812348000' },
    region: { code: '320831', town: '城关镇', village: '东关村' }, title: '工地拖欠工资',
    text: '来电人反映在城关镇某工地打工，老板拖欠工资三个月共两万元，双方多次协商未果，今天在工地吵起来了，希望调解员帮忙协调讨要工资。',
    people_involved: 2,
  };
}

async function postTicket(externalId) {
  const res = await fetch(`${base}/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${partner}`, 'content-type': 'application/json' },
    body: JSON.stringify(ticket(externalId)),
  });
  const body = await res.json();
  if (res.status !== 201) fail(`POST /v1/tickets answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

const userDataDir = await mkdtemp(join(tmpdir(), 'hl-dashboard-chromium-'));
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
    // Refused requests (the wrong token below, a refused action) are logged by Chromium as
    // errors and are expected; script errors and Content-Security-Policy violations are not.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console error: ${m.text()}`);
    }
  });

  // 1. The page loads, Chinese first, and asks for a token.
  const res = await page.goto(`${base}/dashboard`);
  if (!res || res.status() !== 200) fail(`GET /dashboard answered ${res && res.status()}`);
  await page.locator('#token').waitFor({ state: 'visible' });
  const h1 = await page.locator('h1').textContent();
  if (h1 !== '热线工单监控') fail(`the title is ${JSON.stringify(h1)}, not Chinese`);
  log('page loaded, sign-in shown');

  // A wrong token is refused with the gateway's detail.
  await page.fill('#token', 'not-a-token');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').filter({ hasText: '令牌无效' }).waitFor();
  log('a wrong token is refused:', await page.locator('#signin-error').textContent());

  // 2. Sign in: the queues show, and the event stream connects.
  await page.fill('#token', supervisor);
  await page.click('#signin-form button[type=submit]');
  const tile = page.locator(`[data-testid=queue-tile][data-queue="${QUEUE}"]`);
  await tile.waitFor();
  await page.locator('#live[data-state=open]').waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem('hl-dash-token'));
  if (stored !== supervisor) fail('the token is not kept in sessionStorage');
  // Let the sign-in refreshes finish and the 1 s throttle window pass, so that nothing but an
  // event can make the page re-read the queues (it has no polling timer).
  await page.waitForTimeout(1500);
  const liveCount = (key) => page.evaluate((k) => Number(document.getElementById('live').dataset[k] || 0), key);
  const eventsBefore = await liveCount('events');
  const before = Number(await tile.getAttribute('data-depth'));
  log(`signed in; ${QUEUE} shows depth ${before}; event stream open`);

  // 3. A ticket posted through the API shows within 2 s.
  const posted = await postTicket(`DASH-${Date.now()}`);
  const t0 = Date.now();
  try {
    await page.locator(`[data-testid=queue-tile][data-queue="${QUEUE}"][data-depth="${before + 1}"]`)
      .waitFor({ timeout: UPDATE_LIMIT_MS });
  } catch (_) {
    fail(`the tile did not show depth ${before + 1} within ${UPDATE_LIMIT_MS} ms of posting ${posted.id}`);
  }
  if ((await liveCount('events')) <= eventsBefore) fail('the tile changed without an event: the page must not poll');
  log(`ticket ${posted.id} shown after ${Date.now() - t0} ms, on an event`);

  // 4. A breach shows, with its time over.
  const breached = page.locator('[data-testid=breached-row]').first();
  await breached.waitFor();
  const breachedText = await breached.textContent();
  log('breach shown:', breachedText);
  await page.locator('#chart-category-text').filter({ hasText: '劳动争议' }).waitFor();
  const levelChips = await tile.locator('.level').allTextContents();
  if (!levelChips.some((c) => c.startsWith('橙色')) || !levelChips.some((c) => c.startsWith('无'))) {
    fail(`the tile's warning levels read ${JSON.stringify(levelChips)}`);
  }

  // A deadline counted through a year without holiday data carries its 暂定 mark.
  const provisional = page.locator('[data-testid=risk-row] [data-testid=provisional]').first();
  await provisional.filter({ hasText: '暂定' }).waitFor();
  log('provisional mark shown:', await provisional.getAttribute('title'));

  // 5. An action goes through the API and reports the outcome (success or the problem detail).
  const id = await breached.getAttribute('data-id');
  await breached.locator('button[data-action=escalate]').click();
  await page.locator('#action-dialog[open]').waitFor();
  await page.fill('#action-reason', '浏览器测试：超时升级');
  await page.click('#action-submit');
  // Done when the dialog closes (success) or shows the problem's detail (failure).
  await page.waitForFunction(() => !document.querySelector('#action-dialog').open || document.querySelector('#action-error').textContent !== '');
  log('escalate:', (await page.locator('#action-msg').textContent()) || (await page.locator('#action-error').textContent()));
  if (await page.locator('#action-dialog[open]').count()) await page.click('#action-cancel');

  // Raise priority and reassign (a transfer to legal consultation) on the ticket posted above,
  // once it is listed; both must succeed through the API.
  const row = page.locator(`tr[data-id="${posted.id}"]`).first();
  for (const [action, service] of [['raise', null], ['transfer', 'legal_consultation']]) {
    await row.locator(`button[data-action=${action}]`).click();
    await page.locator('#action-dialog[open]').waitFor();
    if (service) await page.selectOption('#action-service', service);
    await page.fill('#action-reason', `浏览器测试：${action}`);
    await page.click('#action-submit');
    await page.waitForFunction(() => !document.querySelector('#action-dialog').open || document.querySelector('#action-error').textContent !== '');
    const error = await page.locator('#action-error').textContent();
    if (await page.locator('#action-dialog[open]').count()) fail(`${action} on ${posted.id} failed: ${error}`);
    log(`${action}:`, await page.locator('#action-msg').textContent());
  }

  await mkdir(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  log('screenshot saved:', screenshot);

  // 6. The region filter lists the counties seen and narrows the data and the event stream.
  const regions = await page.locator('#region option').evaluateAll((os) => os.map((o) => o.value));
  if (!regions.includes('320831')) fail(`the region filter offers ${JSON.stringify(regions)}`);
  const filtered = ['/v1/queues', '/v1/dashboard/risk', '/v1/dashboard/today', '/v1/events'].map((path) =>
    page.waitForRequest((r) => {
      const u = new URL(r.url());
      return u.pathname === path && u.searchParams.get('region') === '320831';
    }).catch(() => fail(`no request to ${path} with region=320831 after choosing it`)));
  await page.selectOption('#region', '320831');
  await Promise.all(filtered);
  await page.locator('#live[data-state=open]').waitFor();
  // The actions above may have emptied QUEUE; any tile of the county will do.
  await page.locator('[data-testid=queue-tile]').first().waitFor();
  log('region filter passes region=320831 to the data endpoints and the event stream');

  // 7. The English toggle.
  await page.click('#lang');
  await page.locator('h1', { hasText: 'Hotline tickets: live' }).waitFor();
  const lang = await page.evaluate(() => document.documentElement.lang);
  if (lang !== 'en') fail(`html lang is ${lang} after the toggle`);
  await page.locator('#chart-category-text').filter({ hasText: 'Labour' }).waitFor();
  await page.locator('#breached-h', { hasText: 'Breached' }).waitFor();
  await page.locator('[data-testid=queue-tile] .level', { hasText: 'Orange' }).first().waitFor();
  await page.locator('[data-testid=provisional]', { hasText: 'provisional' }).first().waitFor();
  const english = screenshot.replace(/(\.png)?$/, '-en.png');
  await page.screenshot({ path: english, fullPage: true });
  log('English toggle works; screenshot saved:', english);
  await page.click('#lang');
  await page.locator('h1', { hasText: '热线工单监控' }).waitFor();

  if (pageErrors.length) fail(`the page reported errors:\n${pageErrors.join('\n')}`);
  log('page live state:', JSON.stringify(await page.evaluate(() => ({ ...document.getElementById('live').dataset }))));
  log('all checks passed');
} catch (e) {
  console.error(`dashboard check failed: ${e.message}`);
  if (pageErrors.length) console.error(pageErrors.join('\n'));
  // What the API said at that moment, to tell a page fault from a gateway one.
  for (const path of ['/v1/dashboard/risk', '/v1/queues']) {
    const body = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${supervisor}` } })
      .then((r) => r.text(), (err) => String(err));
    console.error(`GET ${path}: ${body}`);
  }
  // What the page showed when it failed, beside the screenshot it would have saved.
  const page = context && context.pages()[0];
  if (page) {
    const live = await page.evaluate(() => ({ ...document.getElementById('live').dataset })).catch(String);
    console.error('page live state:', JSON.stringify(live));
    const failed = screenshot.replace(/(\.png)?$/, '-failed.png');
    await mkdir(dirname(failed), { recursive: true }).catch(() => {});
    await page.screenshot({ path: failed, fullPage: true }).then(() => console.error(`screenshot of the failure: ${failed}`), () => {});
  }
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}
