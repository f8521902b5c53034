// console.mjs - the orderd console in a real headless browser (Debian's
// chromium driven by playwright-core; no browser is downloaded). Run by
// tests/integration/0810_console_browser.c against a worker that has
// built the shop of tests/integration/0800_common.h; it exits non-zero on
// the first failed expectation, saying which.
//
// Environment (set by the driver):
//   CONSOLE_URL            http://127.0.0.1:PORT of the worker's console
//   CONSOLE_REPORT         file with `orderd report --format json` of the shop
//   CONSOLE_ORDER_NUMBER   the number of order O2 (refunded, six history rows)
//   CONSOLE_MORE_FILE      JSON command lines for `orderd send` (more work)
//   ORDERD_BIN             the orderd binary (its ORDERD_* settings inherited)
//   CONSOLE_SCREENSHOTS    directory for the three screenshots (optional)
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

const base = process.env.CONSOLE_URL;
const report = JSON.parse(readFileSync(process.env.CONSOLE_REPORT, 'utf8'));
const shots = process.env.CONSOLE_SCREENSHOTS || '';
const errors = [];

function expect(ok, what) {
  if (!ok) throw new Error('expected: ' + what);
}

/* polls fn (async, returning a truthy value when done) every 100 ms for at
 * most ms; returns its value or fails with what */
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting: ' + what);
    await new Promise(r => setTimeout(r, 100)); // polling interval
  }
}

const text = (page, sel) => page.locator(sel).first().textContent();

const profile = mkdtempSync(join(tmpdir(), 'orderd-console-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', e => errors.push(String(e)));
  // a dead letter's markup must never run: no dialog may open
  page.on('dialog', d => { errors.push('dialog opened: ' + d.message()); d.dismiss(); });
  page.setDefaultTimeout(20000);

  // ---- overview ----
  await page.goto(base + '/');
  await until(async () => Number(await page.getAttribute('body', 'data-updates')) >= 1,
    15000, 'the overview to load /api/status');
  const parts = await page.$$eval('#partitions tbody tr[data-topic]',
    rows => rows.map(r => ({ topic: r.dataset.topic, partition: r.dataset.partition,
      lag: r.dataset.lag, holder: r.cells[6].textContent })));
  expect(parts.length === 2, 'two partitions listed, got ' + JSON.stringify(parts));
  for (const p of parts) {
    expect(p.lag === '0', 'lag 0 on partition ' + p.partition + ': ' + JSON.stringify(p));
    expect(/orderd-executor-\d/.test(p.holder), 'a holder for partition ' + p.partition);
  }
  expect(await page.locator('#rejections tr[data-reason="amount_mismatch"]').count() === 1,
    'the amount_mismatch rejection listed');
  expect(await page.locator('#rejections tr[data-reason="insufficient_stock"]').count() === 1,
    'the insufficient_stock rejection listed');
  expect((await text(page, '#ready')) === 'ready', 'the worker shown ready');
  // the chart: drawn by the page, one line per outcome, with points
  await until(async () => Number(await page.getAttribute('#chart .series-applied',
    'data-points')) >= 1, 15000, 'the chart to have a point');
  expect(await page.locator('#chart polyline.series').count() === 5,
    'five series in the chart');
  const box = await page.locator('#chart').boundingBox();
  expect(box && box.width > 300 && box.height > 100, 'the chart has a size');

  // it keeps updating when the worker processes more
  const before = Number(await text(page, '#c-applied'));
  const updates = Number(await page.getAttribute('body', 'data-updates'));
  execFileSync(process.env.ORDERD_BIN, ['send'],
    { input: readFileSync(process.env.CONSOLE_MORE_FILE), stdio: ['pipe', 'ignore', 'inherit'] });
  await until(async () => Number(await text(page, '#c-applied')) >= before + 3,
    30000, 'the applied count to grow past ' + before);
  expect(Number(await page.getAttribute('body', 'data-updates')) > updates,
    'the overview refreshed itself');
  if (shots) await page.screenshot({ path: join(shots, 'console-overview.png'), fullPage: true });

  // ---- an order as a receipt ----
  await page.goto(base + '/orders/' + process.env.CONSOLE_ORDER_NUMBER);
  expect((await text(page, '#order-status')) === 'refunded', 'order O2 refunded');
  const items = await page.$$eval('#items tbody tr', rows => rows.map(r => r.innerText));
  expect(items.length === 1 && items[0].includes('Blue cup') && items[0].includes('2.50 EUR'),
    'the receipt line: ' + JSON.stringify(items));
  expect((await text(page, '#items tr.total')).includes('2.50 EUR'), 'the total');
  const hist = await page.$$eval('#history tbody tr', rows => rows.map(r => r.cells[0].textContent));
  expect(isDeepStrictEqual(hist, ['(new) → pending', 'pending → paid', 'paid → processing',
    'processing → shipped', 'shipped → delivered', 'delivered → refunded']),
  'the status history: ' + JSON.stringify(hist));
  expect(await page.locator('#results tbody tr').count() === 6, 'six result events');
  if (shots) await page.screenshot({ path: join(shots, 'console-order.png'), fullPage: true });

  // ---- dead letters: the hostile payload is text ----
  await page.goto(base + '/dlq');
  const payloads = await page.$$eval('#dlq td.payload code', cs => cs.map(c => c.textContent));
  expect(payloads.includes('<script>alert("dlq")</script>&<b>not json'),
    'the poison payload shown as text: ' + JSON.stringify(payloads));
  expect(await page.locator('#dlq script, #dlq b').count() === 0,
    'no markup from the payload in the page');

  // ---- analytics: the same numbers as orderd report ----
  const q = new URLSearchParams({ by: 'day', from: report.from, to: report.to });
  await page.goto(base + '/analytics?' + q.toString());
  await until(async () => Number(await page.getAttribute('body', 'data-updates')) >= 1,
    15000, 'the analytics to load');
  const shown = JSON.parse(await page.getAttribute('#totals-row', 'data-report'));
  expect(isDeepStrictEqual(shown, report.totals), 'the page shows the report\'s totals');
  expect((await text(page, '#totals-row .orders')) === '7', '7 orders');
  expect((await text(page, '#totals-row .gross')) === '37.50 EUR, 2000 JPY', 'gross revenue');
  expect((await text(page, '#totals-row .refunds')) === '17.50 EUR, 0 JPY', 'refunds');
  expect((await text(page, '#totals-row .net')) === '20.00 EUR, 2000 JPY', 'net revenue');
  expect((await text(page, '#totals-row .cancel-rate')) === '28.57%', 'cancellation rate');
  expect((await text(page, '#totals-row .expiry-rate')) === '14.28%', 'expiry rate');
  const periods = await page.$$eval('#periods tbody tr[data-period]', rows => rows.length);
  expect(periods === report.periods.length, 'one row per period');
  const top = await page.$$eval('#top tbody tr', rows => rows.map(r => r.cells[0].textContent));
  expect(isDeepStrictEqual(top, report.top_products.map(p => String(p.product_id))),
    'top products in the report\'s order: ' + JSON.stringify(top));
  const vendors = await page.$$eval('#vendors tbody tr', rows => rows.length);
  expect(vendors === report.vendors.length, 'one row per vendor, period and currency');
  if (shots) await page.screenshot({ path: join(shots, 'console-analytics.png'), fullPage: true });

  expect(errors.length === 0, 'no JavaScript errors: ' + JSON.stringify(errors));
  console.log('console browser test: all expectations met');
} catch (e) {
  failed = true;
  console.error('console browser test failed: ' + e.message);
  if (errors.length) console.error('browser errors: ' + JSON.stringify(errors));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
