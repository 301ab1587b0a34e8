/**
 * The dashboard served at GET /: one self-contained page (inline CSS and script, no
 * external assets, no build step) with three views. The live view (the default) polls
 * GET /v1/stats once a second and draws the last two minutes on canvases; the analytics
 * view (`/#analytics`, ./analytics-view.ts) draws the stored events from the read API; the
 * deliveries view (`/#deliveries`, below) lists the subscriptions with their health. Each
 * reads only what its endpoints return, so anything it shows can also be scripted.
 *
 * The script avoids template literals so this TypeScript template string needs no escapes.
 * It has no style="" attributes either (classes instead): the Content-Security-Policy
 * below allows the one inline <style> and the one inline <script> by their hashes, and
 * nothing else.
 */
import { createHash } from 'node:crypto';
import { analyticsMarkup, analyticsScript, analyticsStyle } from './analytics-view';

/*
 * The deliveries view: GET /v1/subscriptions (first page, subscriptionsShownMax), then
 * GET /v1/subscriptions/{id}/health for each, every refreshMs while shown. Both routes need
 * the admin scope, so the view asks for an admin key on a 401/403 (kept in sessionStorage
 * beside the read key, sent only to this origin). URLs, filters and errors are client data:
 * they reach the page as textContent only. Each row carries the numbers it shows in data-
 * attributes, so a test reads exactly what is drawn.
 */
const deliveriesStyle = `
  table.subscriptions td.bad { color: var(--bad); }
  table.subscriptions td.warn { color: var(--warn); }
  table.subscriptions td.ok { color: var(--ok); }
  table.subscriptions td.url, table.subscriptions td.error { max-width: 320px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
`;

const deliveriesMarkup = `
<section id="deliveries-view" hidden>
  <div class="panel">
    <div class="panel-head">
      <b>subscriptions</b><span class="muted" id="deliveries-caption"></span>
      <button type="button" id="deliveries-refresh">refresh</button>
      <span class="status" id="deliveries-status"></span>
    </div>
    <form id="admin-key-form" class="controls" hidden>
      <label>admin key <input id="admin-key-input" type="password" autocomplete="off" placeholder="fgk_…" size="50"></label>
      <button type="submit">show</button>
    </form>
    <table class="tail subscriptions" id="deliveries-table">
      <thead><tr><th>id</th><th>url</th><th>filters</th><th>state</th><th>breaker</th><th>success 5 m / 1 h</th><th>attempt p50 / p95 ms</th>
      <th>commit → delivered p50 / p95 ms</th><th>in flight</th><th>backlog</th><th>oldest pending</th><th>next retry</th><th>last error</th></tr></thead>
      <tbody></tbody>
    </table>
  </div>
</section>
`;

const deliveriesScript = `
  // ---- deliveries view ------------------------------------------------------------------
  var adminKeyItem = 'floodgate.adminKey';
  var deliveries = { generation: 0, timer: null, shown: false, refreshMs: 10000, subscriptionsShownMax: 100 };
  function adminJson(path) {
    var key = sessionStorage.getItem(adminKeyItem);
    return fetch(path, { cache: 'no-store', headers: key ? { authorization: 'Bearer ' + key } : {} }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) { return { status: response.status, body: body }; });
    }, function (error) { return { status: 0, body: null, message: error.message }; });
  }
  function deliveriesProblem(answer) {
    var status = byId('deliveries-status');
    status.className = 'status bad';
    status.setAttribute('data-status', String(answer.status));
    if (answer.status === 401 || answer.status === 403) {
      var had = sessionStorage.getItem(adminKeyItem);
      sessionStorage.removeItem(adminKeyItem);
      status.textContent = had ? 'that key was refused (' + answer.status + '): it needs the admin scope' : 'subscriptions need an admin key';
      byId('admin-key-form').hidden = false;
      byId('admin-key-input').focus();
    } else {
      var error = answer.body && answer.body.error ? ' (' + answer.body.error.message + ')' : '';
      status.textContent = (answer.status === 0 ? 'cannot reach the engine' : 'HTTP ' + answer.status) + error;
    }
  }
  function percent(rate) { return rate === null || rate === undefined ? '–' : (rate * 100).toFixed(rate === 1 ? 0 : 1) + '%'; }
  function pair(values) { return values ? ms(values.p50) + ' / ' + ms(values.p95) : '– / –'; }
  function cell(row, content, className) {
    var td = document.createElement('td');
    td.textContent = content;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  function subscriptionRow(subscription, health) {
    var row = document.createElement('tr');
    row.setAttribute('data-subscription', subscription.id);
    cell(row, subscription.id);
    cell(row, subscription.url, 'url').title = subscription.url;
    var types = subscription.event_types ? subscription.event_types.join(', ') : 'all types';
    cell(row, types + (subscription.sources ? ' from ' + subscription.sources.join(', ') : ''));
    cell(row, subscription.enabled ? 'enabled' : 'disabled' + (subscription.disabled_reason ? ': ' + subscription.disabled_reason : ''), subscription.enabled ? 'ok' : 'warn');
    if (!health) {
      cell(row, 'health unavailable', 'bad').colSpan = 9;
      row.setAttribute('data-health', 'missing');
      return row;
    }
    cell(row, health.breaker || '–', health.breaker === 'open' ? 'bad' : health.breaker === 'half-open' ? 'warn' : '');
    cell(row, percent(health.success_rate_5m) + ' / ' + percent(health.success_rate_1h), health.success_rate_5m !== null && health.success_rate_5m < 0.9 ? 'bad' : '');
    cell(row, pair(health.attempt_ms));
    cell(row, pair(health.commit_to_delivered_ms));
    cell(row, health.in_flight === null || health.in_flight === undefined ? '–' : number(health.in_flight));
    cell(row, number(health.backlog));
    cell(row, health.oldest_pending_age_s === null ? '–' : duration(health.oldest_pending_age_s));
    cell(row, health.next_retry_at ? new Date(health.next_retry_at).toLocaleTimeString('en-GB') : '–');
    var last = health.last_error;
    var error = last ? [last.class, last.status_code, last.error].filter(function (part) { return part !== null && part !== undefined && part !== ''; }).join(' ') : '';
    cell(row, last ? error : 'none', last ? 'error bad' : 'error').title = last ? last.at + ': ' + error : '';
    row.setAttribute('data-health', 'shown');
    row.setAttribute('data-backlog', String(health.backlog));
    row.setAttribute('data-breaker', String(health.breaker));
    row.setAttribute('data-success-rate-1h', String(health.success_rate_1h));
    row.setAttribute('data-last-error-status', last ? String(last.status_code) : '');
    return row;
  }
  function loadDeliveries() {
    var generation = ++deliveries.generation;
    adminJson('/v1/subscriptions?limit=' + deliveries.subscriptionsShownMax).then(function (list) {
      if (generation !== deliveries.generation) return;
      if (list.status !== 200) return deliveriesProblem(list);
      var subscriptions = list.body.subscriptions;
      return Promise.all(subscriptions.map(function (subscription) {
        return adminJson('/v1/subscriptions/' + encodeURIComponent(subscription.id) + '/health');
      })).then(function (answers) {
        if (generation !== deliveries.generation) return;
        var refused = answers.filter(function (answer) { return answer.status === 401 || answer.status === 403; })[0];
        if (refused) return deliveriesProblem(refused);
        var body = byId('deliveries-table').tBodies[0];
        while (body.firstChild) body.removeChild(body.firstChild);
        subscriptions.forEach(function (subscription, i) {
          body.appendChild(subscriptionRow(subscription, answers[i].status === 200 ? answers[i].body : null));
        });
        var status = byId('deliveries-status');
        status.className = 'status';
        status.removeAttribute('data-status');
        status.textContent = '';
        text('deliveries-caption', subscriptions.length + ' subscription(s)' + (list.body.next_after ? ', the first ' + subscriptions.length + ' shown' : '') + ' · as of ' + new Date().toLocaleTimeString('en-GB'));
        byId('deliveries-table').setAttribute('data-state', 'drawn');
      });
    });
  }
  byId('admin-key-form').addEventListener('submit', function (submitted) {
    submitted.preventDefault();
    sessionStorage.setItem(adminKeyItem, byId('admin-key-input').value.trim());
    byId('admin-key-input').value = '';
    byId('admin-key-form').hidden = true;
    loadDeliveries();
  });
  byId('deliveries-refresh').addEventListener('click', loadDeliveries);
  /** Called by showView: loads at once and every refreshMs while shown and no key is awaited. */
  function showDeliveries(shown) {
    byId('deliveries-view').hidden = !shown;
    byId('tab-deliveries').setAttribute('aria-current', shown ? 'page' : 'false');
    if (shown && deliveries.timer === null) {
      loadDeliveries();
      deliveries.timer = setInterval(function () { if (byId('admin-key-form').hidden) loadDeliveries(); }, deliveries.refreshMs);
    } else if (!shown && deliveries.timer !== null) {
      clearInterval(deliveries.timer);
      deliveries.timer = null;
    }
  }
`;

export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Floodgate</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #0f1419; --panel: #1a2129; --text: #e6e9ed; --muted: #8a96a3; --accent: #4fc1e9; --ok: #8cc152; --bad: #ed5565; --warn: #f6bb42; }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 16px 20px; background: var(--bg); color: var(--text); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; margin-bottom: 14px; }
  h1 { font-size: 20px; margin: 0; }
  .badge { padding: 2px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: var(--panel); }
  .badge.ok { color: var(--ok); } .badge.bad { color: var(--bad); }
  .muted { color: var(--muted); font-size: 12px; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin-bottom: 14px; }
  .tile { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
  .tile .label { color: var(--muted); font-size: 12px; }
  .tile .value { font-size: 24px; font-variant-numeric: tabular-nums; font-weight: 600; }
  .tile .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 10px; margin-bottom: 14px; }
  .chart { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
  .chart canvas { width: 100%; height: 160px; display: block; }
  .legend span { margin-right: 12px; font-size: 12px; }
  .swatch-committed { color: #4fc1e9; } .swatch-received { color: #8a96a3; } .swatch-request { color: #f6bb42; } .swatch-commit { color: #ed5565; }
  .rings { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
  .ring { display: grid; grid-template-columns: 70px 1fr 150px; gap: 10px; align-items: center; margin: 4px 0; font-variant-numeric: tabular-nums; }
  .bar { height: 10px; background: #2a333d; border-radius: 5px; overflow: hidden; }
  .bar > div { height: 100%; background: var(--accent); width: 0; }
  #error { color: var(--bad); }
  #key-form[hidden] { display: none; }
${analyticsStyle}${deliveriesStyle}</style>
</head>
<body>
<header>
  <h1>Floodgate</h1>
  <span class="badge" id="circuit">circuit …</span>
  <span class="badge" id="database">database …</span>
  <span class="muted">ack <b id="ack-mode">…</b> · up <b id="uptime">…</b> · updated <b id="updated">never</b></span>
  <span id="error"></span>
  <form id="key-form" hidden>
    <label>read key <input id="key-input" type="password" autocomplete="off" placeholder="fgk_…" size="50"></label>
    <button type="submit">show</button>
  </form>
</header>
<nav class="tabs"><a id="tab-live" href="#live" aria-current="page">live</a><a id="tab-analytics" href="#analytics">analytics</a><a id="tab-deliveries" href="#deliveries">deliveries</a></nav>
<div id="live-view">
<section class="tiles">
  <div class="tile"><div class="label">committed events/s (1 s)</div><div class="value" id="committed-rate">–</div><div class="sub">10 s avg <span id="committed-rate-10s">–</span></div></div>
  <div class="tile"><div class="label">request latency p50 / p99</div><div class="value"><span id="request-p50">–</span> / <span id="request-p99">–</span></div><div class="sub">ms · p99.9 <span id="request-p999">–</span></div></div>
  <div class="tile"><div class="label">commit latency p50 / p99</div><div class="value"><span id="commit-p50">–</span> / <span id="commit-p99">–</span></div><div class="sub">ms · p99.9 <span id="commit-p999">–</span></div></div>
  <div class="tile"><div class="label">committed (total)</div><div class="value" id="committed-total">–</div><div class="sub">received <span id="received-total">–</span></div></div>
  <div class="tile"><div class="label">duplicates</div><div class="value" id="duplicates-total">–</div><div class="sub">dead-lettered <span id="dead-lettered-total">–</span></div></div>
  <div class="tile"><div class="label">rejected</div><div class="value" id="rejected-total">–</div><div class="sub" id="rejected-codes">–</div></div>
  <div class="tile"><div class="label">queue depth (events)</div><div class="value" id="queue-depth">–</div><div class="sub">pending requests <span id="pending-requests">–</span></div></div>
</section>
<section class="charts">
  <div class="chart">
    <div class="legend"><span class="swatch-committed">■ committed/s</span><span class="swatch-received">■ received/s</span><span class="muted">last 2 min</span></div>
    <canvas id="rate-chart" data-points="0"></canvas>
  </div>
  <div class="chart">
    <div class="legend"><span class="swatch-request">■ request p99 ms</span><span class="swatch-commit">■ commit p99 ms</span><span class="muted">over the last 50-60 s, sampled each second</span></div>
    <canvas id="latency-chart" data-points="0"></canvas>
  </div>
</section>
<section class="rings">
  <div class="label muted">ring occupancy per actor</div>
  <div id="rings"></div>
</section>
</div>
${analyticsMarkup}
${deliveriesMarkup}
<script>
(function () {
  'use strict';
  var pointsMax = 120;
  var history = { committed: [], received: [], requestP99: [], commitP99: [] };
  function byId(id) { return document.getElementById(id); }
  function text(id, value) { byId(id).textContent = value; }
  function number(value) { return value === null || value === undefined ? '–' : Math.round(value).toLocaleString('en-US'); }
  function ms(value) { return value === null || value === undefined ? '–' : (value < 10 ? value.toFixed(2) : value.toFixed(1)); }
  function duration(seconds) {
    var s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h > 0 ? h + 'h ' : '') + (h > 0 || m > 0 ? m + 'm ' : '') + (s % 60) + 's';
  }
  function push(list, value) { list.push(value === null || value === undefined ? NaN : value); if (list.length > pointsMax) list.shift(); }
  function draw(canvas, series) {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio; canvas.height = height * ratio;
    var context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    var top = 0;
    series.forEach(function (line) { line.values.forEach(function (v) { if (v > top) top = v; }); });
    top = top > 0 ? top * 1.15 : 1;
    context.strokeStyle = '#2a333d'; context.fillStyle = '#8a96a3'; context.font = '11px sans-serif';
    for (var g = 0; g <= 4; g++) {
      var y = height - 14 - (height - 24) * g / 4;
      context.beginPath(); context.moveTo(40, y); context.lineTo(width, y); context.stroke();
      context.fillText(top * g / 4 >= 100 ? Math.round(top * g / 4) : (top * g / 4).toFixed(1), 0, y + 4);
    }
    var points = 0;
    series.forEach(function (line) {
      context.strokeStyle = line.color; context.lineWidth = 2; context.beginPath();
      var started = false;
      line.values.forEach(function (v, i) {
        if (isNaN(v)) { started = false; return; }
        var x = 40 + (width - 40) * (i + pointsMax - line.values.length) / (pointsMax - 1);
        var y = height - 14 - (height - 24) * v / top;
        if (started) context.lineTo(x, y); else context.moveTo(x, y);
        started = true; points++;
      });
      context.stroke();
    });
    canvas.setAttribute('data-points', String(points));
  }
  function renderRings(rings) {
    var container = byId('rings');
    while (container.children.length > rings.length) container.removeChild(container.lastChild);
    rings.forEach(function (ring, i) {
      var row = container.children[i];
      if (!row) {
        row = document.createElement('div'); row.className = 'ring';
        row.innerHTML = '<span></span><div class="bar"><div></div></div><span class="muted"></span>';
        container.appendChild(row);
      }
      row.children[0].textContent = 'actor ' + ring.actor;
      row.children[1].firstChild.style.width = Math.min(100, ring.occupancy * 100).toFixed(2) + '%';
      row.children[2].textContent = (ring.occupancy * 100).toFixed(3) + '% of ' + (ring.capacity_bytes / 1048576).toFixed(0) + ' MiB';
      row.setAttribute('data-occupancy', String(ring.occupancy));
    });
  }
  function render(stats) {
    var circuit = byId('circuit');
    circuit.textContent = 'circuit ' + stats.circuit;
    circuit.className = 'badge ' + (stats.circuit === 'closed' ? 'ok' : 'bad');
    var database = byId('database');
    database.textContent = 'database ' + (stats.database.up ? 'up' : 'down');
    database.className = 'badge ' + (stats.database.up ? 'ok' : 'bad');
    text('ack-mode', stats.ack_mode);
    text('uptime', duration(stats.uptime_s));
    text('committed-rate', number(stats.rates.committed_per_s_1s));
    text('committed-rate-10s', number(stats.rates.committed_per_s_10s));
    text('request-p50', ms(stats.request_duration_ms.p50));
    text('request-p99', ms(stats.request_duration_ms.p99));
    text('request-p999', ms(stats.request_duration_ms.p999));
    text('commit-p50', ms(stats.commit_latency_ms.p50));
    text('commit-p99', ms(stats.commit_latency_ms.p99));
    text('commit-p999', ms(stats.commit_latency_ms.p999));
    text('committed-total', number(stats.totals.committed));
    text('received-total', number(stats.totals.received));
    text('duplicates-total', number(stats.totals.duplicates));
    text('dead-lettered-total', number(stats.totals.dead_lettered));
    text('rejected-total', number(stats.totals.rejected));
    var codes = Object.keys(stats.rejected_by_code).map(function (code) { return code.replace('ERR_', '') + ' ' + stats.rejected_by_code[code]; });
    text('rejected-codes', codes.length > 0 ? codes.join(', ') : 'none');
    text('queue-depth', number(stats.queue_depth));
    text('pending-requests', number(stats.pending_requests));
    renderRings(stats.rings);
    push(history.committed, stats.rates.committed_per_s_1s);
    push(history.received, stats.rates.received_per_s_1s);
    push(history.requestP99, stats.request_duration_ms.p99);
    push(history.commitP99, stats.commit_latency_ms.p99);
    draw(byId('rate-chart'), [{ values: history.received, color: '#8a96a3' }, { values: history.committed, color: '#4fc1e9' }]);
    draw(byId('latency-chart'), [{ values: history.requestP99, color: '#f6bb42' }, { values: history.commitP99, color: '#ed5565' }]);
    text('updated', new Date().toLocaleTimeString('en-GB'));
    text('error', '');
  }
  // /v1/stats needs a read key once keys exist: the page asks for one on a 401 and keeps
  // it in sessionStorage, so it lives as long as the tab and is sent only to this origin.
  var keyItem = 'floodgate.readKey';
  function askForKey(message) {
    sessionStorage.removeItem(keyItem);
    text('error', message);
    byId('key-form').hidden = false;
    byId('key-input').focus();
  }
  byId('key-form').addEventListener('submit', function (submitted) {
    submitted.preventDefault();
    sessionStorage.setItem(keyItem, byId('key-input').value.trim());
    byId('key-input').value = '';
    byId('key-form').hidden = true;
    text('error', '');
    poll();
    if (!byId('analytics-view').hidden) loadAnalytics(true);
  });
  function poll() {
    var key = sessionStorage.getItem(keyItem);
    var headers = key ? { authorization: 'Bearer ' + key } : {};
    fetch('/v1/stats', { cache: 'no-store', headers: headers })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) return response.status;
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json().then(render);
      })
      .catch(function (error) { text('error', 'cannot reach /v1/stats: ' + error.message); })
      .then(function (refused) {
        if (refused === undefined) setTimeout(poll, 1000);
        else askForKey(key ? 'that key was refused (' + refused + '): it needs the read scope' : '/v1/stats needs a read key');
      });
  }
  poll();
${deliveriesScript}${analyticsScript}})();
</script>
</body>
</html>
`;

/** The base64 SHA-256 of the text between `<tag>` and `</tag>`, as CSP's hash sources name it. */
function inlineHash(html: string, tag: 'script' | 'style'): string {
  const start = html.indexOf(`<${tag}>`) + tag.length + 2;
  const end = html.indexOf(`</${tag}>`, start);
  if (start < tag.length + 2 || end < 0) throw new Error(`the dashboard page has no inline <${tag}>`);
  return `'sha256-${createHash('sha256').update(html.slice(start, end), 'utf8').digest('base64')}'`;
}

/**
 * Headers for GET /, computed once. The page loads nothing from elsewhere and talks only to
 * its own origin (connect-src 'self' for /v1/stats and the read and admin routes), so everything else is refused; a hash
 * rather than 'unsafe-inline' means an injected script would not run. frame-ancestors and
 * X-Frame-Options (for older browsers) keep it out of other sites' frames.
 * X-Content-Type-Options: nosniff is on every answer (src/ingress/http-reply.ts).
 */
export const dashboardHeaders: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${inlineHash(dashboardHtml, 'script')}`,
    `style-src ${inlineHash(dashboardHtml, 'style')}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
});
