/* console.js - the overview and analytics pages of the orderd console.
 * Served by orderd itself (compiled into the binary); no library, nothing
 * fetched from elsewhere. Every value from the server goes into the page
 * as text (textContent), never as markup. */
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const SERIES = [
  ['applied', '#2b7a3d'], ['rejected', '#b8860b'], ['duplicate', '#5470c6'],
  ['deferred', '#8e44ad'], ['dlq', '#c0392b']];

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    if (c instanceof Node) {
      const td = el('td');
      td.appendChild(c);
      tr.appendChild(td);
    } else if (typeof c === 'object' && c !== null) {
      const td = el('td', c.text, c.cls);
      if (c.data) for (const k in c.data) td.dataset[k] = c.data[k];
      tr.appendChild(td);
    } else {
      tr.appendChild(el('td', c));
    }
  }
  return tr;
}

function fill(tbodySel, rows, empty, span) {
  const tb = document.querySelector(tbodySel);
  tb.replaceChildren();
  for (const r of rows) tb.appendChild(r);
  if (rows.length === 0 && empty) {
    const td = el('td', empty);
    td.colSpan = span;
    const tr = document.createElement('tr');
    tr.appendChild(td);
    tb.appendChild(tr);
  }
}

/* minor units as major units with the currency's exponent, exactly (no
 * floating point): 123456, 2, "EUR" -> "1234.56 EUR" */
function money(minor, exponent, currency) {
  const neg = minor < 0;
  let s = String(Math.abs(minor));
  if (exponent > 0) {
    s = s.padStart(exponent + 1, '0');
    s = s.slice(0, s.length - exponent) + '.' + s.slice(s.length - exponent);
  }
  return (neg ? '-' : '') + s + ' ' + currency;
}

function pct(r) { return (r * 100).toFixed(2) + '%'; }

function duration(s) {
  if (s === null || s === undefined) return '-';
  if (s < 120) return s.toFixed(1) + ' s';
  if (s < 7200) return (s / 60).toFixed(1) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}

function stamp(ok, text) {
  const u = document.getElementById('updated');
  u.textContent = text;
  u.className = ok ? 'note' : 'note stale';
}

async function getJSON(url) {
  const r = await fetch(url, {credentials: 'same-origin', cache: 'no-store'});
  if (!r.ok) throw new Error(url + ': ' + r.status + ' ' + (await r.text()));
  return r.json();
}

/* ---- overview ---- */

/* per-second rates between consecutive samples, per outcome */
function rates(samples) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = (b.t_ms - a.t_ms) / 1000;
    if (dt <= 0) continue;
    const p = {t: b.t_ms};
    for (const [k] of SERIES) p[k] = Math.max(0, (b[k] - a[k]) / dt);
    out.push(p);
  }
  return out;
}

function drawChart(samples) {
  const svg = document.getElementById('chart');
  /* drawn in the element's own pixels: text keeps its size at any width */
  const W = Math.max(300, Math.round(svg.clientWidth || 800));
  const H = 220, L = 48, R = 10, T = 10, B = 24;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const pts = rates(samples);
  svg.replaceChildren();
  const axis = document.createElementNS(SVG, 'path');
  axis.setAttribute('d', `M${L} ${T} V${H - B} H${W - R}`);
  axis.setAttribute('class', 'axis');
  svg.appendChild(axis);
  let max = 1;
  for (const p of pts) for (const [k] of SERIES) max = Math.max(max, p[k]);
  const t0 = pts.length ? pts[0].t : 0;
  const t1 = pts.length ? pts[pts.length - 1].t : 1;
  const x = t => L + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (W - L - R);
  const y = v => H - B - (v / max) * (H - B - T);
  const label = (tx, ty, text, anchor) => {
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', tx);
    t.setAttribute('y', ty);
    t.setAttribute('text-anchor', anchor);
    t.textContent = text;
    svg.appendChild(t);
  };
  label(L - 4, T + 10, max.toFixed(max < 10 ? 1 : 0) + '/s', 'end');
  label(L - 4, H - B, '0', 'end');
  if (pts.length) {
    label(L, H - 6, new Date(t0).toISOString().slice(11, 19) + 'Z', 'start');
    label(W - R, H - 6, new Date(t1).toISOString().slice(11, 19) + 'Z', 'end');
  }
  for (const [k, color] of SERIES) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points',
        pts.map(p => x(p.t).toFixed(1) + ',' + y(p[k]).toFixed(1)).join(' '));
    line.setAttribute('class', 'series series-' + k);
    line.setAttribute('stroke', color);
    line.setAttribute('fill', 'none');
    line.dataset.points = String(pts.length);
    svg.appendChild(line);
  }
  const legend = document.getElementById('legend');
  legend.replaceChildren();
  const last = pts.length ? pts[pts.length - 1] : null;
  for (const [k, color] of SERIES) {
    const s = el('span', k + (last ? ' ' + last[k].toFixed(1) + '/s' : ''));
    s.style.borderColor = color;
    legend.appendChild(s);
  }
}

function renderStatus(s) {
  const ready = document.getElementById('ready');
  ready.textContent = s.ready ? 'ready' : 'not ready';
  ready.className = 'status ' + (s.ready ? 'status-ok' : 'status-bad');
  const why = document.getElementById('readiness');
  why.replaceChildren(...s.readiness.map(r => el('li', r)));
  document.getElementById('process').textContent = s.process;
  document.getElementById('group').textContent = s.group;
  for (const k of ['applied', 'rejected', 'duplicate'])
    document.getElementById('c-' + k).textContent = s.counters[k];
  document.getElementById('parked').textContent = s.parked.count +
      (s.parked.count ? ' (oldest ' + duration(s.parked.oldest_s) + ')' : '');
  document.getElementById('outbox').textContent = s.outbox.backlog < 0 ?
      'not sampled yet' :
      s.outbox.backlog + (s.outbox.backlog ?
          ' (oldest ' + duration(s.outbox.oldest_ms / 1000) + ')' : '');
  document.getElementById('dlq').textContent = s.dlq.in_outbox +
      ' in the outbox, ' + s.dlq.this_process + ' by this process';
  fill('#partitions tbody', s.partitions.map(p => {
    const tr = row([p.topic, {text: p.partition, cls: 'num'},
      {text: p.stored_offset ?? '-', cls: 'num'}, p.stored_at ?? '-',
      {text: p.log_end ?? '-', cls: 'num'},
      {text: p.lag ?? '-', cls: 'num lag'},
      p.holder ? p.holder.process + ' ' + p.holder.executor :
          'not this process']);
    tr.dataset.topic = p.topic;
    tr.dataset.partition = p.partition;
    tr.dataset.lag = p.lag ?? '';
    return tr;
  }), 'no partition yet', 7);
  fill('#rejections tbody', s.rejections.map(r => {
    const tr = row([r.reason, r.type, {text: r.count, cls: 'num'}]);
    tr.dataset.reason = r.reason;
    return tr;
  }), 'none', 3);
  document.getElementById('sched-leader').textContent =
      s.scheduler.leader ?? 'no process holds the scheduler lock';
  document.getElementById('sched-here').textContent =
      s.scheduler.this_process_leads ? 'yes' : 'no';
  document.getElementById('sched-tick').textContent =
      s.scheduler.last_tick ?? '-';
  drawChart(s.samples);
}

function overview() {
  let n = 0;
  const tick = async () => {
    try {
      renderStatus(await getJSON('/api/status'));
      n++;
      stamp(true, 'updated ' + new Date().toISOString().slice(11, 19) +
          'Z (#' + n + ')');
      document.body.dataset.updates = String(n);
    } catch (e) {
      stamp(false, 'not updated: ' + e.message);
    }
    setTimeout(tick, 2000);
  };
  document.getElementById('find').addEventListener('submit', ev => {
    ev.preventDefault();
    const ref = document.getElementById('find-ref').value.trim();
    if (ref) location.href = '/orders/' + encodeURIComponent(ref);
  });
  tick();
}

/* ---- analytics ---- */

function moneyList(rev, field) {
  if (!rev.length) return '-';
  return rev.map(r => money(r[field], r.exponent, r.currency)).join(', ');
}

function mix(status) {
  return Object.entries(status).filter(([, n]) => n > 0)
      .map(([k, n]) => k + ' ' + n).join(', ') || '-';
}

function periodCells(p) {
  const t = p.time_to_payment;
  return [{text: p.orders, cls: 'num orders'}, mix(p.status),
    {text: moneyList(p.revenue, 'gross_cents'), cls: 'num gross'},
    {text: moneyList(p.revenue, 'refunds_cents'), cls: 'num refunds'},
    {text: moneyList(p.revenue, 'net_cents'), cls: 'num net'},
    {text: pct(p.cancellation_rate), cls: 'num cancel-rate'},
    {text: pct(p.expiry_rate), cls: 'num expiry-rate'},
    {text: t ? duration(t.median_s) + ' (' + t.paid + ' paid)' : '-',
     cls: 'num'}];
}

function renderReport(r) {
  document.getElementById('window').textContent = 'From ' + r.from +
      ' to ' + r.to + ', by ' + r.by + (r.vendor ? ', vendor ' + r.vendor : '');
  const tot = row(periodCells(r.totals));
  tot.id = 'totals-row';
  tot.dataset.report = JSON.stringify(r.totals);
  fill('#totals tbody', [tot]);
  fill('#periods tbody', r.periods.map(p => {
    const tr = row([p.period, ...periodCells(p)]);
    tr.dataset.period = p.period;
    return tr;
  }), 'no orders in this window', 9);
  fill('#top tbody', r.top_products.map(p => row([
    {text: p.product_id, cls: 'num'}, p.name, {text: p.quantity, cls: 'num'},
    {text: money(p.revenue_cents, p.exponent, p.currency), cls: 'num'}])),
  'none', 4);
  fill('#vendors tbody', r.vendors.map(v => row([v.period, v.vendor_id,
    {text: v.orders, cls: 'num'}, {text: v.paid_orders, cls: 'num'},
    {text: money(v.gross_cents, v.exponent, v.currency), cls: 'num'},
    {text: money(v.refunds_cents, v.exponent, v.currency), cls: 'num'},
    {text: pct(v.cancellation_rate), cls: 'num'},
    {text: pct(v.expiry_rate), cls: 'num'}])), 'none', 8);
}

function analytics() {
  const q = new URLSearchParams(location.search);
  for (const k of ['by', 'from', 'to', 'vendor'])
    if (q.get(k)) document.getElementById(k).value = q.get(k);
  let n = 0;
  const load = async () => {
    const p = new URLSearchParams();
    for (const k of ['by', 'from', 'to', 'vendor']) {
      const v = document.getElementById(k).value.trim();
      if (v) p.set(k, v);
    }
    try {
      renderReport(await getJSON('/api/analytics?' + p.toString()));
      n++;
      stamp(true, 'updated ' + new Date().toISOString().slice(11, 19) +
          'Z (#' + n + ')');
      document.body.dataset.updates = String(n);
    } catch (e) {
      stamp(false, 'not updated: ' + e.message);
    }
  };
  document.getElementById('filter').addEventListener('submit', ev => {
    ev.preventDefault();
    load();
  });
  load();
  setInterval(load, 10000);
}

if (document.body.dataset.page === 'overview') overview();
else if (document.body.dataset.page === 'analytics') analytics();
