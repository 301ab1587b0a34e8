/**
 * A run's Markdown summary and SVG chart, both derived from the LoadResult that is also
 * written as JSON (the JSON is the record; these are for reading).
 */
import { formatCount, markdownTable, round } from '../common/results';
import type { LoadResult } from './load-run';
import type { LatencySummaryMs } from './timeline';
import type { PercentileReport } from '../../src/metrics/stats-report';
import { renderTimelineSvg } from './svg-chart';

function describeLoad(result: LoadResult): string {
  const { scenario } = result;
  const phases = scenario.phases
    .map((phase) => `${phase.label}: ${phase.durationS} s at ${phase.concurrency !== null ? `${phase.concurrency} users` : `${phase.ratePerS} req/s`}`)
    .join('; ');
  const think = scenario.thinkTimeMs > 0 ? `, ${scenario.thinkTimeMs} ms think time` : '';
  return `${scenario.model} model${think}; ${scenario.eventsPerRequest} event(s)/request, ${scenario.format} to ${scenario.route}; ${scenario.clients} client process(es); ${phases}`;
}

function cpuRows(result: LoadResult): string[][] {
  const cpu = result.cpuCores;
  if (cpu === null) return [];
  const threads = Object.entries(cpu.engineThreadCores)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([name, cores]) => `${name} ${cores.toFixed(2)}`)
    .join(', ');
  return [
    ['machine busy (all cores)', cpu.systemBusyCores.toFixed(2)],
    ['engine process', cpu.engineCores.toFixed(2)],
    ['  engine main thread', cpu.engineMainThreadCores.toFixed(2)],
    ['  other engine threads', threads === '' ? '-' : threads],
    ["PostgreSQL backends of this run's database", cpu.postgresRunCores.toFixed(2)],
    ['PostgreSQL other processes (WAL writer, checkpointer, other databases)', cpu.postgresOtherCores.toFixed(2)],
    ['load clients', cpu.clientCores.toFixed(2)],
    ['runner', cpu.runnerCores.toFixed(2)],
    ['kernel threads (writeback, softirq: partly this run)', cpu.kernelCores.toFixed(2)],
    ['other processes (not part of this run)', cpu.otherCores.toFixed(2)],
    ['unattributed (interrupts, short-lived processes)', cpu.unattributedCores.toFixed(2)],
    ['stolen by the hypervisor (steal: the VM got less CPU than its cores)', cpu.stealCores.toFixed(2)],
  ];
}

export function renderLoadMarkdown(result: LoadResult): string {
  const { totals, latencyMs: latency, verification: check } = result;
  const lines = [
    `# Load run: ${result.scenario.name} → ${result.run.target}${result.run.apiKeyScopes == null ? '' : ` (API key: ${result.run.apiKeyScopes.join(',')})`}`,
    '',
    result.scenario.description,
    '',
    `Load: ${describeLoad(result)}. Engine settings: ${JSON.stringify(result.scenario.engineEnv)}.`,
    `Started ${result.run.startedAt}; machine ${result.machine.cpuModel} × ${result.machine.cores}, ${result.machine.memoryGiB} GiB, Node ${result.machine.node}, PostgreSQL ${result.run.postgres}; load average at start ${result.machine.loadAverageAtStart.join(' / ')}; commit ${result.machine.gitCommit ?? '?'}${result.machine.gitDirty ? ' (work tree modified)' : ''}.`,
    '',
    markdownTable(['result', 'value'], [
      ['events acknowledged per second', formatCount(totals.eventsPerS)],
      ['requests per second', String(totals.requestsPerS)],
      ['latency p50 / p90 / p99 / p99.9 / max (ms)', slashed([latency.p50, latency.p90, latency.p99, latency.p999, latency.max])],
      ['of which the clients sent late by p50 / p99 / p99.9 / max (ms)', sendLagText(result.sendLagMs)],
      ['requests (answered by status)', `${formatCount(totals.requests)} (${Object.entries(totals.statuses).map(([status, count]) => `${status}: ${formatCount(count)}`).join(', ') || 'none'})`],
      ['timeouts / connection errors / unsent (open model)', `${totals.timeouts} / ${totals.errors} / ${totals.unsent}${totals.errorSamples.length > 0 ? ` (${totals.errorSamples.join('; ')})` : ''}`],
      ['events sent / acknowledged / rejected', `${formatCount(totals.eventsSent)} / ${formatCount(totals.eventsAcknowledged)} / ${formatCount(totals.eventsRejected)}`],
      ['rows stored / distinct ids / stored twice', `${formatCount(check.rowsStored)} / ${formatCount(check.distinctIds)} / ${check.duplicatesStored}`],
      ['acknowledged but not stored (must be 0)', String(check.lost)],
      ['check', check.ok ? 'ok: acknowledged == stored, no duplicates' : 'FAILED'],
      ...engineStatsRows(result),
      ['engine RSS max / at end (MiB)', result.engineRssMiB === null ? 'not sampled' : `${result.engineRssMiB.max} / ${result.engineRssMiB.last}`],
      ['engine stop (drain) time', `${result.run.stopMs} ms`],
    ]),
    '',
    '## Where the CPU went (cores, mean over the run)',
    '',
    markdownTable(['who', 'cores'], cpuRows(result)),
    '',
  ];
  if (result.phases.length > 1) {
    lines.push('## Phases', '', markdownTable(['phase', 'load', 'events/s', 'req/s', 'p50 ms', 'p99 ms', 'max ms'], result.phases.map((phase) => [
      phase.label,
      phase.concurrency !== null ? `${phase.concurrency} users` : `${phase.ratePerS} req/s`,
      formatCount(phase.eventsPerS),
      formatCount(phase.requestsPerS),
      String(phase.latencyMs.p50),
      String(phase.latencyMs.p99),
      String(phase.latencyMs.max),
    ])), '');
  }
  lines.push('<details><summary>Per second</summary>', '', markdownTable(['s', 'events', 'requests', 'p50 ms', 'p99 ms', 'failed', 'engine cores (main)', 'pg cores', 'client cores', 'other cores', 'RSS MiB'], result.timeline.map((point) => [
    String(point.second),
    formatCount(point.eventsAcknowledged),
    formatCount(point.requests),
    String(point.latencyMs.p50),
    String(point.latencyMs.p99),
    String(point.errors + point.timeouts + point.non2xx),
    point.cpu === null ? '-' : `${point.cpu.engineCores.toFixed(2)} (${point.cpu.engineMainThreadCores.toFixed(2)})`,
    point.cpu === null ? '-' : (point.cpu.postgresRunCores + point.cpu.postgresOtherCores).toFixed(2),
    point.clientCpuCores.toFixed(2),
    point.cpu === null ? '-' : point.cpu.otherCores.toFixed(2),
    point.cpu?.engineRssBytes == null ? '-' : String(round(point.cpu.engineRssBytes / 2 ** 20))
  ])), '', '</details>');
  return `${lines.join('\n')}\n`;
}

export function renderLoadSvg(result: LoadResult): string {
  // Seconds after the planned end only hold the last answers trickling in: leave them out.
  const points = result.timeline.filter((point) => point.second < Math.ceil(result.run.durationS));
  let atS = 0;
  const markers = result.phases.length > 1
    ? result.scenario.phases.map((phase) => {
        const marker = { atS, label: phase.label };
        atS += phase.durationS;
        return marker;
      })
    : [];
  return renderTimelineSvg({
    title: `${result.scenario.name} → ${result.run.target}: ${formatCount(result.totals.eventsPerS)} events/s, p99 ${result.latencyMs.p99} ms`,
    subtitle: `${describeLoad(result)}\n${result.run.startedAt} · load average at start ${result.machine.loadAverageAtStart.join(' / ')} · check ${result.verification.ok ? 'ok' : 'FAILED'}`,
    seconds: points.map((point) => point.second + 0.5),
    xMaxS: result.run.durationS,
    panels: [
      { title: 'events acknowledged per second', unit: 'events/s', series: [{ name: 'events/s', color: '#1f77b4', values: points.map((point) => point.eventsAcknowledged) }] },
      {
        title: 'latency per second',
        unit: 'ms',
        series: [
          { name: 'p50', color: '#2ca02c', values: points.map((point) => (point.latencyMs.count === 0 ? null : point.latencyMs.p50)) },
          { name: 'p99', color: '#d62728', values: points.map((point) => (point.latencyMs.count === 0 ? null : point.latencyMs.p99)) },
        ],
      },
    ],
    markers,
  });
}

/** The engine's own percentiles, when it reported them (p50 / p90 / p99 / p99.9 / max). */
function engineStatsRows(result: LoadResult): string[][] {
  const stats = result.engineStats;
  if (stats == null) return [];
  const text = (report: PercentileReport): string => (report.count === 0 ? 'none in the window' : slashed([report.p50, report.p90, report.p99, report.p999, report.max].map((value) => value ?? '-')));
  const window = `engine's last ${stats.windowS} s`;
  return [
    [`engine: request receipt → answer, p50 / p90 / p99 / p99.9 / max (ms, ${window}, ${stats.ackMode})`, text(stats.requestMs)],
    [`engine: commit latency p50 / p90 / p99 / p99.9 / max (ms, ${window})`, text(stats.commitMs)],
    [`engine: ring wait (push → actor) p50 / p90 / p99 / p99.9 / max (ms, ${window})`, text(stats.ringWaitMs)],
    [`engine: batch write (COPY + commit) p50 / p90 / p99 / p99.9 / max (ms, ${window})`, text(stats.flushMs)],
    [`engine: rows per batch p50 / p90 / p99 / p99.9 / max (${window})`, text(stats.batchRows)],
  ];
}

function slashed(values: readonly (number | string)[]): string {
  return values.join(' / ');
}

/** A run that sent nothing has no lag to show; say so rather than print zeros. */
function sendLagText(lag: LatencySummaryMs): string {
  return lag.count === 0 ? 'not recorded' : slashed([lag.p50, lag.p99, lag.p999, lag.max]);
}
