/**
 * The analytics view of the page at GET / (./dashboard-page.ts puts these three strings into
 * its one <style>, its body and its one <script>, so the page stays a single document under
 * a hash-based Content-Security-Policy). It reads only the read API:
 *
 *   volume chart + numbers table   GET /v1/analytics/counts   (zero-filled buckets, `complete`)
 *   tiles + top types / sources    GET /v1/analytics/events/summary   (UTC days)
 *   type filter                    GET /v1/analytics/event-types
 *   raw-event tail                 GET /v1/events?order=desc  (pages with next_cursor)
 *
 * Event types, sources and attributes are client data: they only ever reach the page as
 * textContent or attribute values, never as markup. Like the live script, this one has no
 * template literals and no backslashes, so the TypeScript template string needs no escapes.
 * Every drawn number is also in a data- attribute or a table cell, so a test (and a user) can
 * read exactly what the chart shows.
 */

export const analyticsStyle = `
  nav.tabs { display: flex; gap: 4px; margin-bottom: 12px; }
  nav.tabs a { padding: 5px 14px; border-radius: 6px 6px 0 0; color: var(--muted); text-decoration: none; background: var(--panel); }
  nav.tabs a[aria-current="page"] { color: var(--text); border-bottom: 2px solid var(--accent); }
  [hidden] { display: none !important; }
  .controls { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: center; margin-bottom: 12px; font-size: 13px; }
  .controls select, .controls button { background: var(--panel); color: var(--text); border: 1px solid #2a333d; border-radius: 4px; padding: 3px 6px; }
  .panel { background: var(--panel); border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
  .panel-head { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
  .status { font-size: 12px; color: var(--muted); }
  .status.bad { color: var(--bad); }
  #volume-chart { width: 100%; height: 240px; display: block; margin-top: 6px; }
  #volume-chart text { fill: var(--muted); font-size: 11px; }
  #volume-chart .grid { stroke: #2a333d; }
  #volume-chart .incomplete { opacity: 0.55; }
  #volume-chart .column { fill: transparent; }
  #volume-chart .column:hover { fill: rgba(255, 255, 255, 0.06); }
  .legend .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
  .legend .hatched { background: repeating-linear-gradient(45deg, #8a96a3 0 2px, transparent 2px 5px); }
  .legend .entry { margin-right: 14px; font-size: 12px; white-space: nowrap; }
  table.numbers { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; margin-top: 6px; }
  table.numbers th, table.numbers td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #2a333d; }
  table.numbers th:first-child, table.numbers td:first-child { text-align: left; }
  table.numbers tr.incomplete td { color: var(--warn); }
  .tops { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
  ol.top { list-style: none; margin: 6px 0 0; padding: 0; }
  ol.top li { display: grid; grid-template-columns: 150px 1fr 80px; gap: 8px; align-items: center; margin: 3px 0; font-size: 13px; }
  ol.top li span:first-child { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  ol.top li span:last-child { text-align: right; font-variant-numeric: tabular-nums; }
  table.tail { width: 100%; border-collapse: collapse; font-size: 12px; margin-top: 6px; }
  table.tail th, table.tail td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #2a333d; vertical-align: top; }
  table.tail td.attributes { font-family: ui-monospace, monospace; color: var(--muted); max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
`;

export const analyticsMarkup = `
<section id="analytics-view" hidden>
  <form id="analytics-controls" class="controls">
    <label>range <select id="range">
      <option value="hour">last hour, per minute</option>
      <option value="day">last 24 h, per hour</option>
      <option value="month">last 30 days, per day</option>
    </select></label>
    <label>stack by <select id="group-by">
      <option value="event_type">event type</option>
      <option value="source">source</option>
    </select></label>
    <label>type <select id="filter-type"><option value="">all types</option></select></label>
    <label>source <select id="filter-source"><option value="">all sources</option></select></label>
    <label>time zone <select id="zone">
      <option value="UTC">UTC</option>
      <option value="browser" id="zone-browser">browser</option>
    </select></label>
    <button type="button" id="analytics-refresh">refresh</button>
    <span class="muted">as of <b id="as-of">–</b></span>
  </form>
  <div class="panel">
    <div class="panel-head"><b>events over time</b><span class="muted" id="volume-caption"></span><span class="status" id="volume-status"></span></div>
    <div class="legend" id="volume-legend"></div>
    <svg id="volume-chart" role="img" aria-label="events per bucket, stacked" data-state="empty"></svg>
    <details><summary class="muted">numbers</summary><table class="numbers" id="volume-table"></table></details>
  </div>
  <section class="tiles">
    <div class="tile"><div class="label">events (<span id="summary-days">–</span>)</div><div class="value" id="summary-total">–</div></div>
    <div class="tile"><div class="label">event types</div><div class="value" id="summary-types">–</div></div>
    <div class="tile"><div class="label">sources</div><div class="value" id="summary-sources">–</div></div>
  </section>
  <div class="tops">
    <div class="panel"><div class="panel-head"><b>top event types</b><span class="status" id="top-status"></span></div><ol class="top" id="top-types"></ol></div>
    <div class="panel"><div class="panel-head"><b>top sources</b></div><ol class="top" id="top-sources"></ol></div>
  </div>
  <div class="panel">
    <div class="panel-head">
      <b>latest events</b><span class="muted" id="tail-caption"></span>
      <button type="button" id="tail-newest" disabled>newest</button>
      <button type="button" id="tail-older" disabled>older</button>
      <span class="status" id="tail-status"></span>
    </div>
    <table class="tail" id="tail-table">
      <thead><tr><th>time</th><th>event type</th><th>source</th><th>actor</th><th>event id</th><th>attributes</th></tr></thead>
      <tbody></tbody>
    </table>
  </div>
</section>
`;

export const analyticsScript = `
  // ---- analytics view -------------------------------------------------------------------
  var svgNs = 'http://www.w3.org/2000/svg';
  var palette = ['#4fc1e9', '#a0d468', '#f6bb42', '#ed5565', '#ac92ec', '#48cfad', '#ec87c0', '#fc6e51'];
  var otherColor = '#656d78';
  var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  var tailLimit = 20, topShown = 10, refreshMs = 15000, retryMs = 5000;
  var ranges = {
    hour: { interval: 'minute', buckets: 60, label: 'per minute, last hour' },
    day: { interval: 'hour', buckets: 24, label: 'per hour, last 24 h' },
    month: { interval: 'day', buckets: 30, label: 'per day, last 30 days' }
  };
  var analytics = { generation: 0, retryTimers: {}, refreshTimer: null, lastCounts: null, tail: { query: null, cursors: [], page: 0, generation: 0 } };
  byId('zone-browser').textContent = 'browser (' + browserZone + ')';

  function element(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }
  function svgElement(tag, attributes) {
    var node = document.createElementNS(svgNs, tag);
    Object.keys(attributes).forEach(function (name) { node.setAttribute(name, String(attributes[name])); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function selectedZone() { return byId('zone').value === 'browser' ? browserZone : 'UTC'; }

  var formatters = {};
  /** 'YYYY-MM-DD HH:MM[:SS]' in the zone: what every time on this view is written as. */
  function stamp(ms, zone, seconds) {
    var key = zone + (seconds ? 's' : 'm');
    if (!formatters[key]) {
      var options = { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
      if (seconds) options.second = '2-digit';
      formatters[key] = new Intl.DateTimeFormat('en-CA', options);
    }
    var parts = {};
    formatters[key].formatToParts(new Date(ms)).forEach(function (part) { parts[part.type] = part.value; });
    return parts.year + '-' + parts.month + '-' + parts.day + ' ' + parts.hour + ':' + parts.minute + (seconds ? ':' + parts.second : '');
  }
  function bucketLabel(ms, interval, zone, short) {
    var full = stamp(ms, zone, false);
    if (interval === 'day') return short ? full.slice(5, 10) : full.slice(0, 10);
    return short ? full.slice(11) : full;
  }
  function utcDay(ms) { return new Date(ms).toISOString().slice(0, 10); }

  /**
   * The window [from, to) of whole buckets ending with the one now filling. Hour and day
   * starts are taken in the chosen zone: the browser's own zone through the local Date
   * constructor (which also gets half-hour offsets and DST right), UTC through Date.UTC.
   */
  function windowOf(rangeName, zone) {
    var range = ranges[rangeName], now = new Date(), end;
    if (range.interval === 'minute') end = Math.floor(now.getTime() / 60000) * 60000 + 60000;
    else if (zone === 'UTC') {
      end = range.interval === 'hour'
        ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() + 1)
        : Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    } else {
      end = range.interval === 'hour'
        ? new Date(now.getFullYear(), now.getMonth(), now.getDate(), now.getHours() + 1).getTime()
        : new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1).getTime();
    }
    var from;
    if (range.interval === 'day') {
      var last = new Date(end);
      from = zone === 'UTC'
        ? Date.UTC(last.getUTCFullYear(), last.getUTCMonth(), last.getUTCDate() - range.buckets)
        : new Date(last.getFullYear(), last.getMonth(), last.getDate() - range.buckets).getTime();
    } else {
      from = end - range.buckets * (range.interval === 'hour' ? 3600000 : 60000);
    }
    return { from: from, to: end, interval: range.interval, label: range.label };
  }

  /** GET path?params (empty values left out: the read API refuses unknown or empty filters). */
  function readJson(path, params) {
    var query = new URLSearchParams();
    Object.keys(params).forEach(function (name) {
      var value = params[name];
      if (value !== '' && value !== null && value !== undefined) query.set(name, String(value));
    });
    var url = path + (query.toString() === '' ? '' : '?' + query.toString());
    var key = sessionStorage.getItem(keyItem);
    return fetch(url, { cache: 'no-store', headers: key ? { authorization: 'Bearer ' + key } : {} }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        return { status: response.status, body: body, query: query.toString() };
      });
    }, function (error) {
      return { status: 0, body: null, query: query.toString(), message: error.message };
    });
  }

  /**
   * Shows why a read failed in its own panel (the rest of the view keeps what it has):
   * 401/403 asks for a key, 400 shows the engine's message, 503 and network errors call
   * retry after retryMs.
   */
  function showProblem(statusId, answer, what, retry) {
    var status = byId(statusId);
    var error = answer.body && answer.body.error ? answer.body.error : null;
    status.className = 'status bad';
    status.setAttribute('data-status', String(answer.status));
    if (answer.status === 401 || answer.status === 403) {
      status.textContent = what + ': needs a key with the read scope';
      askForKey(sessionStorage.getItem(keyItem) ? 'that key was refused (' + answer.status + '): it needs the read scope' : 'the analytics view needs a read key');
    } else if (answer.status === 400) {
      status.textContent = what + ': refused (400) ' + (error ? error.message : 'bad request');
    } else if (answer.status === 503 || answer.status === 0 || answer.status >= 500) {
      var reason = answer.status === 0 ? 'cannot reach the engine' : answer.status === 503 ? 'the database is busy or unavailable' : 'HTTP ' + answer.status;
      status.textContent = what + ': ' + reason + (error ? ' (' + error.message + ')' : '') + '; retrying in ' + (retryMs / 1000) + ' s';
      scheduleRetry(statusId, retry);
    } else {
      status.textContent = what + ': HTTP ' + answer.status + (error ? ' ' + error.message : '');
    }
  }
  function showFine(statusId, message) {
    var status = byId(statusId);
    status.className = 'status';
    status.removeAttribute('data-status');
    status.textContent = message;
  }
  function scheduleRetry(statusId, retry) {
    if (analytics.retryTimers[statusId]) return;
    analytics.retryTimers[statusId] = setTimeout(function () { analytics.retryTimers[statusId] = null; retry(); }, retryMs);
  }
  function reloadAll() { loadAnalytics(false); }

  function filters() {
    return { event_type: byId('filter-type').value, source: byId('filter-source').value };
  }

  /** Reloads every panel; the tail only when it shows its newest page, unless tailToo. */
  function loadAnalytics(tailToo) {
    var generation = ++analytics.generation;
    var zone = selectedZone(), span = windowOf(byId('range').value, zone), chosen = filters();
    var current = function () { return generation === analytics.generation; };
    showFine('volume-status', 'loading…');
    readJson('/v1/analytics/counts', {
      from: new Date(span.from).toISOString(), to: new Date(span.to).toISOString(), interval: span.interval,
      group_by: byId('group-by').value, event_type: chosen.event_type, source: chosen.source,
      tz: zone === 'UTC' ? '' : zone, series_limit: palette.length
    }).then(function (answer) {
      if (!current()) return;
      if (answer.status !== 200) return showProblem('volume-status', answer, 'volume', reloadAll);
      showFine('volume-status', '');
      analytics.lastCounts = { data: answer.body, query: answer.query, groupBy: byId('group-by').value };
      text('volume-caption', span.label + ', ' + (answer.body.tz || zone));
      text('as-of', stamp(Date.parse(answer.body.as_of), zone, true));
      drawVolume();
    });
    loadSummary(span, chosen, current);
    loadEventTypes(current);
    if (tailToo || analytics.tail.page === 0) startTail(span, chosen);
  }

  function loadEventTypes(current) {
    readJson('/v1/analytics/event-types', {}).then(function (answer) {
      if (!current()) return;
      if (answer.status !== 200) return showProblem('top-status', answer, 'event types', reloadAll);
      fillOptions(byId('filter-type'), answer.body, 'all types');
    });
  }

  /** Replaces a select's options with names, keeping the current choice even if it is gone. */
  function fillOptions(select, names, allLabel) {
    var chosen = select.value;
    var wanted = names.slice().sort();
    if (chosen !== '' && wanted.indexOf(chosen) < 0) wanted.push(chosen);
    clear(select);
    select.appendChild(element('option', '', allLabel));
    select.firstChild.value = '';
    wanted.forEach(function (name) { var option = element('option', '', name); option.value = name; select.appendChild(option); });
    select.value = chosen;
  }

  /** The summary route counts whole UTC days: those the window touches, named on the page. */
  function loadSummary(span, chosen, current) {
    var startDate = utcDay(span.from), endDate = utcDay(span.to - 1);
    var days = startDate === endDate ? 'UTC day ' + startDate : 'UTC days ' + startDate + ' to ' + endDate;
    readJson('/v1/analytics/events/summary', {
      start_date: startDate, end_date: endDate, top_n: 100, event_type: chosen.event_type, source: chosen.source
    }).then(function (answer) {
      if (!current()) return;
      if (answer.status !== 200) return showProblem('top-status', answer, 'summary', reloadAll);
      var summary = answer.body;
      showFine('top-status', days);
      text('summary-days', days);
      text('summary-total', number(summary.total_events));
      text('summary-types', number(summary.unique_event_types));
      text('summary-sources', number(summary.unique_sources));
      drawTop(byId('top-types'), summary.top_event_types, 'event_type');
      drawTop(byId('top-sources'), summary.top_sources, 'source');
      // The sources a filter can pick are the ones stored, never a list written here; while a
      // source is chosen the summary holds only that one, so the list is left as it was.
      if (chosen.source === '') fillOptions(byId('filter-source'), summary.top_sources.map(function (row) { return row.source; }), 'all sources');
    });
  }

  function drawTop(list, rows, field) {
    clear(list);
    var peak = rows.reduce(function (most, row) { return Math.max(most, row.total); }, 0);
    rows.slice(0, topShown).forEach(function (row) {
      var item = element('li'), bar = element('div', 'bar'), fill = element('div');
      item.setAttribute('data-name', row[field]);
      item.setAttribute('data-total', String(row.total));
      item.title = row[field];
      fill.style.width = (peak > 0 ? row.total / peak * 100 : 0).toFixed(1) + '%';
      bar.appendChild(fill);
      item.appendChild(element('span', '', row[field]));
      item.appendChild(bar);
      item.appendChild(element('span', '', number(row.total)));
      list.appendChild(item);
    });
    if (rows.length === 0) list.appendChild(element('li', 'muted', 'no events'));
  }

  /** The answer's series in drawing order (bottom of the stack first), "other" last. */
  function seriesOf(counts) {
    var field = counts.group_by[0];
    var list = counts.series.map(function (entry, index) {
      return { name: entry[field], counts: entry.counts, total: entry.total, color: palette[index % palette.length], other: false };
    });
    if (counts.other) list.push({ name: 'other (' + counts.other.series + ')', counts: counts.other.counts, total: counts.other.total, color: otherColor, other: true });
    return list;
  }

  /** The smallest "nice" whole number of at least value that divides into 4 grid steps. */
  function niceCeiling(value) {
    if (value <= 4) return 4;
    var magnitude = Math.pow(10, Math.floor(Math.log10(value / 4)));
    var steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map(function (step) { return step * magnitude; });
    var chosen = steps.filter(function (step) { return step >= value / 4 && step === Math.round(step); })[0];
    return (chosen || 10 * magnitude) * 4;
  }

  /**
   * Stacked bars, one column per bucket. The bucket still filling gets a hatched background
   * and lighter bars, so a half-counted minute does not read as a drop. Each bar carries its
   * bucket, series and count; each column a <title> for hover and its start and total.
   */
  function drawVolume() {
    var last = analytics.lastCounts, svg = byId('volume-chart');
    if (last === null || byId('analytics-view').hidden) return;
    var counts = last.data, series = seriesOf(counts), zone = counts.tz || selectedZone();
    var width = svg.clientWidth || 900, height = svg.clientHeight || 240;
    var plot = { left: 52, top: 8, width: width - 56, height: height - 30 };
    var peak = niceCeiling(counts.totals.reduce(function (most, total) { return Math.max(most, total); }, 0));
    var step = plot.width / Math.max(1, counts.buckets.length), barWidth = Math.max(1, step * 0.8);
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.appendChild(hatchPattern());
    drawGrid(svg, plot, peak);
    counts.buckets.forEach(function (bucket, index) {
      var x = plot.left + index * step, y = plot.top + plot.height;
      if (!bucket.complete) svg.appendChild(svgElement('rect', { x: x, y: plot.top, width: step, height: plot.height, fill: 'url(#hatch)', 'class': 'incomplete-mark', 'data-bucket': index }));
      series.forEach(function (entry) {
        var count = entry.counts[index];
        if (!(count > 0)) return;
        var barHeight = count / peak * plot.height;
        y -= barHeight;
        svg.appendChild(svgElement('rect', {
          x: x + (step - barWidth) / 2, y: y, width: barWidth, height: barHeight, fill: entry.color,
          'class': bucket.complete ? 'segment' : 'segment incomplete', 'data-bucket': index, 'data-series': entry.name,
          'data-other': entry.other, 'data-count': count
        }));
      });
    });
    drawBucketLabels(svg, counts, plot, step, zone, height);
    drawColumns(svg, counts, series, plot, step, zone);
    svg.setAttribute('data-state', 'drawn');
    svg.setAttribute('data-query', last.query);
    svg.setAttribute('data-buckets', String(counts.buckets.length));
    drawLegend(series, counts);
    drawTable(series, counts, zone);
  }

  function hatchPattern() {
    var defs = svgElement('defs', {});
    var pattern = svgElement('pattern', { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
    pattern.appendChild(svgElement('rect', { width: 2, height: 6, fill: '#8a96a3', 'fill-opacity': 0.45 }));
    defs.appendChild(pattern);
    return defs;
  }

  function drawGrid(svg, plot, peak) {
    for (var g = 0; g <= 4; g++) {
      var y = plot.top + plot.height - plot.height * g / 4;
      svg.appendChild(svgElement('line', { x1: plot.left, y1: y, x2: plot.left + plot.width, y2: y, 'class': 'grid' }));
      var label = svgElement('text', { x: plot.left - 6, y: y + 4, 'text-anchor': 'end' });
      label.textContent = number(peak * g / 4);
      svg.appendChild(label);
    }
  }

  function drawBucketLabels(svg, counts, plot, step, zone, height) {
    var every = Math.max(1, Math.ceil(counts.buckets.length / 8));
    counts.buckets.forEach(function (bucket, index) {
      if (index % every !== 0) return;
      var label = svgElement('text', { x: plot.left + (index + 0.5) * step, y: height - 6, 'text-anchor': 'middle' });
      label.textContent = bucketLabel(Date.parse(bucket.start), counts.interval, zone, true);
      svg.appendChild(label);
    });
  }

  /** Transparent full-height columns on top: the hover target and the bucket's own numbers. */
  function drawColumns(svg, counts, series, plot, step, zone) {
    counts.buckets.forEach(function (bucket, index) {
      var column = svgElement('rect', {
        x: plot.left + index * step, y: plot.top, width: step, height: plot.height, 'class': 'column',
        'data-bucket': index, 'data-start': bucket.start, 'data-complete': bucket.complete, 'data-total': counts.totals[index]
      });
      var parts = series.filter(function (entry) { return entry.counts[index] > 0; }).map(function (entry) { return entry.name + ' ' + number(entry.counts[index]); });
      var title = svgElement('title', {});
      title.textContent = bucketLabel(Date.parse(bucket.start), counts.interval, zone, false) + ' · ' + number(counts.totals[index]) + ' events' +
        (parts.length > 0 ? ': ' + parts.join(', ') : '') + (bucket.complete ? '' : ' · still filling');
      column.appendChild(title);
      svg.appendChild(column);
    });
  }

  function drawLegend(series, counts) {
    var legend = byId('volume-legend');
    clear(legend);
    series.forEach(function (entry) {
      var item = element('span', 'entry'), swatch = element('span', 'swatch');
      swatch.style.background = entry.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(entry.name + ' ' + number(entry.total)));
      legend.appendChild(item);
    });
    if (series.length === 0) legend.appendChild(element('span', 'entry muted', 'no events in this range'));
    if (counts.buckets.some(function (bucket) { return !bucket.complete; })) {
      var note = element('span', 'entry muted');
      note.id = 'incomplete-note';
      note.appendChild(element('span', 'swatch hatched'));
      note.appendChild(document.createTextNode('hatched and lighter: the bucket still filling'));
      legend.appendChild(note);
    }
  }

  function drawTable(series, counts, zone) {
    var table = byId('volume-table'), head = element('tr'), body = element('tbody');
    clear(table);
    head.appendChild(element('th', '', 'bucket (' + zone + ')'));
    series.forEach(function (entry) { head.appendChild(element('th', '', entry.name)); });
    head.appendChild(element('th', '', 'total'));
    table.appendChild(element('thead')).appendChild(head);
    counts.buckets.forEach(function (bucket, index) {
      var row = element('tr', bucket.complete ? '' : 'incomplete');
      row.setAttribute('data-start', bucket.start);
      row.setAttribute('data-complete', String(bucket.complete));
      row.appendChild(element('td', '', bucketLabel(Date.parse(bucket.start), counts.interval, zone, false) + (bucket.complete ? '' : ' (filling)')));
      series.forEach(function (entry) { row.appendChild(element('td', '', number(entry.counts[index]))); });
      row.appendChild(element('td', '', number(counts.totals[index])));
      body.appendChild(row);
    });
    table.appendChild(body);
  }

  /** The tail pages with the cursor, so its filters (window included) stay those of page one. */
  function startTail(span, chosen) {
    analytics.tail.query = {
      from: new Date(span.from).toISOString(), to: new Date(span.to).toISOString(),
      event_type: chosen.event_type, source: chosen.source, limit: tailLimit, order: 'desc'
    };
    analytics.tail.cursors = [null];
    analytics.tail.page = 0;
    loadTail();
  }

  function loadTail() {
    var tail = analytics.tail, generation = ++tail.generation, params = {};
    Object.keys(tail.query).forEach(function (name) { params[name] = tail.query[name]; });
    params.cursor = tail.cursors[tail.page];
    showFine('tail-status', 'loading…');
    readJson('/v1/events', params).then(function (answer) {
      if (generation !== tail.generation) return;
      if (answer.status !== 200) return showProblem('tail-status', answer, 'events', loadTail);
      showFine('tail-status', '');
      tail.cursors.length = tail.page + 1;
      tail.cursors.push(answer.body.next_cursor);
      drawTail(answer.body.data);
      byId('tail-table').setAttribute('data-page', String(tail.page + 1));
      byId('tail-table').setAttribute('data-query', answer.query);
      byId('tail-older').disabled = answer.body.next_cursor === null;
      byId('tail-newest').disabled = tail.page === 0;
      text('tail-caption', 'newest first · page ' + (tail.page + 1) + (answer.body.next_cursor === null ? ' (the last)' : ''));
    });
  }

  function drawTail(rows) {
    var body = byId('tail-table').tBodies[0], zone = selectedZone();
    clear(body);
    rows.forEach(function (row) {
      var line = element('tr'), at = Date.parse(row.timestamp), attributes = JSON.stringify(row.attributes);
      line.setAttribute('data-event-id', row.event_id);
      [stamp(at, zone, true) + '.' + String(1000 + at % 1000).slice(1), row.event_type, row.source, row.actor_id, row.event_id].forEach(function (value) {
        line.appendChild(element('td', '', value === null || value === undefined ? '–' : String(value)));
      });
      var cell = element('td', 'attributes', attributes);
      cell.title = attributes;
      line.appendChild(cell);
      body.appendChild(line);
    });
    if (rows.length === 0) {
      var empty = element('tr'), note = element('td', 'muted', 'no events in this range');
      note.colSpan = 6;
      empty.appendChild(note);
      body.appendChild(empty);
    }
  }

  byId('tail-older').addEventListener('click', function () {
    var tail = analytics.tail;
    if (!tail.cursors[tail.page + 1]) return;
    tail.page += 1;
    loadTail();
  });
  byId('tail-newest').addEventListener('click', function () { startTail(windowOf(byId('range').value, selectedZone()), filters()); });
  ['range', 'filter-type', 'filter-source', 'zone'].forEach(function (id) {
    byId(id).addEventListener('change', function () { loadAnalytics(true); });
  });
  byId('group-by').addEventListener('change', function () { loadAnalytics(false); });
  byId('analytics-refresh').addEventListener('click', function () { loadAnalytics(true); });
  window.addEventListener('resize', drawVolume);

  /**
   * #analytics opens the analytics view, #deliveries the deliveries view (dashboard-page.ts);
   * each refreshes itself while shown and no key is awaited.
   */
  function showView() {
    var name = location.hash === '#analytics' ? 'analytics' : location.hash === '#deliveries' ? 'deliveries' : 'live';
    showDeliveries(name === 'deliveries');
    byId('live-view').hidden = name !== 'live';
    byId('analytics-view').hidden = name !== 'analytics';
    byId('tab-live').setAttribute('aria-current', name === 'live' ? 'page' : 'false');
    byId('tab-analytics').setAttribute('aria-current', name === 'analytics' ? 'page' : 'false');
    if (name === 'analytics') {
      loadAnalytics(false);
      if (analytics.refreshTimer === null) analytics.refreshTimer = setInterval(function () { if (byId('key-form').hidden) loadAnalytics(false); }, refreshMs);
    } else if (analytics.refreshTimer !== null) {
      clearInterval(analytics.refreshTimer);
      analytics.refreshTimer = null;
    }
  }
  window.addEventListener('hashchange', showView);
  showView();
`;
