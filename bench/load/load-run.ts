/**
 * One scenario run, start to finish:
 *
 *   target   scratch database + engine (or baseline) started here, or a given URL
 *     → clients   forked processes, all starting at the same instant
 *     → every second: clients report counters + histograms; /proc is sampled
 *       (engine CPU by thread, PostgreSQL, clients, everything else, engine RSS)
 *     → stats     the engine's own latency and commit percentiles (GET /v1/stats)
 *     → stop      the engine is sent SIGTERM and drains (async mode's queue included)
 *     → check     rows stored with the run's id prefix == events acknowledged, no id twice
 *     → result    returned to the caller (run-load.ts writes the files)
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { averageCpu, ProcSampler, type CpuSample } from '../common/proc-stats';
import { machineInfo, round, type MachineInfo } from '../common/results';
import { countRunRows, createScratchDatabase, prepareSchema, serverUrlFromEnv, serverVersion, type ScratchDatabase } from '../common/scratch-database';
import type { FromClient, ToClient } from './client-process';
import type { ClientConfig } from './load-client';
import { scenarioDurationS, type Scenario } from './scenario';
import { externalTarget, startBaseline, startFloodgate, type RunningTarget } from './targets';
import { encodeHistogram } from './interval-stats';
import type { Scope } from '../../src/auth/key-format';
import { benchAdminKey, createBenchKeys, type BenchKeys } from './api-key';
import { fetchEngineStats, type EngineStats } from './engine-stats';
import { summarizeLatency, TimelineBuilder, type Counters, type LatencySummaryMs, type PhaseSummary, type TimelinePoint } from './timeline';

export interface RunOptions {
  /** Run against this engine instead of starting one (databaseUrl is then required). */
  readonly url?: string;
  /** external target: its database (for the check); own target: the server to create the scratch database on. */
  readonly databaseUrl?: string;
  /** Connections of the baseline's pg pool. */
  readonly baselinePoolSize?: number;
  readonly progress?: (line: string) => void;
  /** Node options for an engine the runner starts (the profiler's --cpu-prof). */
  readonly engineNodeArgs?: readonly string[];
  /** Send an API key with these scopes (./api-key.ts); only for a Floodgate the runner starts. */
  readonly apiKeyScopes?: readonly Scope[];
}

export interface Verification {
  readonly rowsStored: number;
  readonly distinctIds: number;
  readonly duplicatesStored: number;
  /** Acknowledged events with no row: must be 0. */
  readonly lost: number;
  /** Rows nobody acknowledged: allowed only for requests that got no answer (timeouts, errors). */
  readonly storedUnacknowledged: number;
  readonly eventsWithoutAnswer: number;
  readonly ok: boolean;
}

export interface LoadResult {
  readonly scenario: Scenario;
  readonly run: { readonly idPrefix: string; readonly startedAt: string; readonly durationS: number; readonly target: RunningTarget['kind']; readonly stopMs: number; readonly postgres: string; readonly apiKeyScopes: readonly Scope[] | null };
  readonly machine: MachineInfo;
  readonly totals: Counters & { readonly eventsPerS: number; readonly requestsPerS: number };
  readonly latencyMs: LatencySummaryMs;
  /** HdrHistogram of every answered request's latency (µs), compressed base64. */
  readonly latencyHistogram: string;
  /** How late requests left the clients (see IntervalStats.sendLagHistogram); part of latencyMs. */
  readonly sendLagMs: LatencySummaryMs;
  readonly phases: readonly PhaseSummary[];
  readonly cpuCores: ReturnType<typeof averageCpu> | null;
  readonly engineRssMiB: { readonly max: number; readonly last: number } | null;
  /** What the engine itself measured (null for the baseline, or an engine without /v1/stats). */
  readonly engineStats: EngineStats | null;
  readonly timeline: readonly TimelinePoint[];
  readonly verification: Verification;
  readonly clientsLateMs: number;
}

const clientScript = path.join(__dirname, 'client-process.js');
const startDelayMs = 1000;
const settleTimeoutMs = 30_000;

export async function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<LoadResult> {
  const progress = options.progress ?? (() => undefined);
  const machine = machineInfo();
  const idPrefix = `lb${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36).padStart(2, '0')}`;
  const serverUrl = options.databaseUrl ?? serverUrlFromEnv();
  let scratch: ScratchDatabase | null = null;
  let target: RunningTarget | null = null;
  const apiKeyScopes = options.apiKeyScopes ?? null;
  if (apiKeyScopes !== null && (options.url !== undefined || scenario.target !== 'floodgate')) throw new Error('--api-key-scopes needs a Floodgate the runner starts (no --url, not the baseline)');
  // A bootstrap admin key makes the engine's key routes usable at once; it then creates the run's keys.
  const adminKey = apiKeyScopes === null ? null : benchAdminKey();
  let keys: BenchKeys | null = null;
  try {
    let databaseUrl = serverUrl;
    if (options.url === undefined) {
      scratch = await createScratchDatabase(serverUrl, idPrefix);
      databaseUrl = scratch.url;
      if (scenario.target === 'baseline') await prepareSchema(databaseUrl);
      progress(`starting ${scenario.target} on scratch database ${scratch.name}`);
      target = scenario.target === 'baseline' ? await startBaseline(databaseUrl, options.baselinePoolSize ?? 10) : await startFloodgate(databaseUrl, adminKey === null ? scenario.engineEnv : { ...scenario.engineEnv, FLOODGATE_ADMIN_KEY: adminKey }, options.engineNodeArgs);
      if (adminKey !== null && apiKeyScopes !== null) keys = await createBenchKeys(target.host, target.port, adminKey, apiKeyScopes);
    } else {
      if (options.databaseUrl === undefined) throw new Error('--url needs --database-url (the engine\'s database, for the check)');
      target = externalTarget(options.url);
    }
    const startedAt = new Date();
    const driven = await driveClients(scenario, target, idPrefix, databaseNameOf(databaseUrl), progress, keys?.loadAuthorization ?? null);
    const engineStats = await fetchEngineStats(target.host, target.port, keys?.statsAuthorization ?? null);
    const stopped = await target.stop();
    const verification = await verify(databaseUrl, idPrefix, driven.builder.totals, scenario, options.url !== undefined);
    const durationS = scenarioDurationS(scenario);
    const totals = driven.builder.totals;
    // Headline rates, latency and CPU leave warm-up phases out (scenario.ts); counts and the check cover everything.
    const measured = driven.builder.measured(scenario);
    const measuredS = Math.max(1, measured.seconds.length);
    const measuredSamples = measured.seconds.map((second) => driven.samples[second]).filter((sample): sample is CpuSample => sample !== undefined);
    const rss = driven.samples.map((sample) => sample.engineRssBytes).filter((bytes): bytes is number => bytes !== null);
    return {
      scenario,
      run: { idPrefix, startedAt: startedAt.toISOString(), durationS, target: target.kind, stopMs: stopped.stopMs, postgres: await serverVersion(serverUrl), apiKeyScopes },
      machine,
      totals: { ...totals, eventsPerS: Math.round(measured.counters.eventsAcknowledged / measuredS), requestsPerS: round(measured.counters.requests / measuredS, 1) },
      latencyMs: summarizeLatency(measured.latency),
      latencyHistogram: encodeHistogram(measured.latency),
      sendLagMs: summarizeLatency(measured.sendLag),
      phases: driven.builder.phases(scenario),
      cpuCores: measuredSamples.length === 0 ? null : averageCpu(measuredSamples),
      engineRssMiB: rss.length === 0 ? null : { max: round(Math.max(...rss) / 2 ** 20, 1), last: round((rss.at(-1) ?? 0) / 2 ** 20, 1) },
      engineStats,
      timeline: driven.timeline,
      verification,
      clientsLateMs: driven.lateMs,
    };
  } catch (error) {
    const tail = target?.logTail() ?? '';
    if (tail !== '' && error instanceof Error) error.message += `\n--- ${target?.kind} output ---\n${tail}`;
    throw error;
  } finally {
    await target?.stop();
    await scratch?.drop();
  }
}

function databaseNameOf(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
}

interface Driven {
  readonly builder: TimelineBuilder;
  readonly timeline: TimelinePoint[];
  readonly samples: CpuSample[];
  readonly lateMs: number;
}

/** Forks the clients, collects their seconds, samples /proc each second, prints progress. */
async function driveClients(scenario: Scenario, target: RunningTarget, idPrefix: string, databaseName: string, progress: (line: string) => void, authorization: string | null): Promise<Driven> {
  const builder = new TimelineBuilder();
  const children: ChildProcess[] = [];
  const sampler = new ProcSampler({ enginePid: target.pid, clientPids: () => children.map((child) => child.pid ?? -1), databaseName });
  const samples: CpuSample[] = [];
  const timeline: TimelinePoint[] = [];
  const startAtEpochMs = Date.now() + startDelayMs;
  const reported = new Set<number>();
  const emitted = new Set<number>();
  // A second is shown once every client reported it and its /proc sample exists, whichever comes last.
  const tryEmit = (second: number): void => {
    if (emitted.has(second) || !reported.has(second) || samples[second] === undefined) return;
    emitted.add(second);
    const point = builder.point(second, samples[second] ?? null);
    timeline.push(point);
    progress(progressLine(point));
  };
  let baselineTaken = false;
  const sampleTimer = alignedEverySecond(startAtEpochMs, () => {
    const sample = sampler.sample();
    // The sample at the start instant only resets the sampler; the next ones cover seconds 0, 1, 2…
    if (!baselineTaken) {
      baselineTaken = true;
      return;
    }
    samples.push(sample);
    tryEmit(samples.length - 1);
  });
  let lateMs = 0;
  try {
    const finished = Array.from({ length: scenario.clients }, (_, clientIndex) => {
      const child = fork(clientScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const config: ClientConfig = { clientIndex, host: target.host, port: target.port, scenario, idPrefix, startAtEpochMs, authorization };
      child.send({ type: 'start', config } satisfies ToClient);
      return new Promise<void>((resolve, reject) => {
        child.on('message', (message: FromClient) => {
          if (message.type === 'tick') {
            if (builder.add(message.stats) === scenario.clients) {
              reported.add(message.stats.second);
              tryEmit(message.stats.second);
            }
          } else if (message.type === 'done') {
            lateMs = Math.max(lateMs, message.lateMs);
          } else reject(new Error(`load client ${clientIndex} failed: ${message.message}`));
        });
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load client ${clientIndex} exited with code ${code}`))));
      });
    });
    await Promise.all(finished);
  } finally {
    sampleTimer.stop();
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
  // Seconds not shown yet (the last, partial ones) complete the timeline here.
  for (const second of builder.seconds()) if (!emitted.has(second)) timeline.push(builder.point(second, samples[second] ?? null));
  timeline.sort((a, b) => a.second - b.second);
  return { builder, timeline, samples, lateMs };
}

function alignedEverySecond(startAtEpochMs: number, tick: () => void): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let count = 0;
  const arm = (): void => {
    count += 1;
    timer = setTimeout(() => {
      tick();
      arm();
    }, Math.max(0, startAtEpochMs + count * 1000 - Date.now()));
  };
  timer = setTimeout(() => {
    tick();
    arm();
  }, Math.max(0, startAtEpochMs - Date.now()));
  return { stop: () => clearTimeout(timer) };
}

function progressLine(point: TimelinePoint): string {
  const cpu = point.cpu;
  const cores = (value: number): string => value.toFixed(2);
  const cpuText = cpu === null ? '' : `  cpu: engine ${cores(cpu.engineCores)} (main ${cores(cpu.engineMainThreadCores)}) pg ${cores(cpu.postgresRunCores + cpu.postgresOtherCores)} clients ${cores(cpu.clientCores)} kernel ${cores(cpu.kernelCores)} other ${cores(cpu.otherCores)} steal ${cores(cpu.stealCores)}${cpu.engineRssBytes === null ? '' : `  rss ${Math.round(cpu.engineRssBytes / 2 ** 20)} MiB`}`;
  const failures = point.errors + point.timeouts + point.non2xx;
  return `[${String(point.second + 1).padStart(4)} s] ${point.eventsAcknowledged.toLocaleString('en-US').padStart(9)} ev/s ${String(point.requests).padStart(6)} req/s  p50 ${point.latencyMs.p50.toFixed(1)} ms  p99 ${point.latencyMs.p99.toFixed(1)} ms${failures > 0 ? `  failed ${failures}` : ''}${cpuText}`;
}

/**
 * Counts the run's rows. A started engine has already drained (SIGTERM), so its count is
 * final; an external engine in async mode may still be writing, so the count is polled
 * until it reaches the acknowledged number or stops moving.
 */
async function verify(databaseUrl: string, idPrefix: string, totals: Counters, scenario: Scenario, external: boolean): Promise<Verification> {
  let stored = await countRunRows(databaseUrl, idPrefix);
  if (external) {
    const deadlineMs = Date.now() + settleTimeoutMs;
    let stableSince = Date.now();
    while (stored.distinctIds < totals.eventsAcknowledged && Date.now() < deadlineMs && Date.now() - stableSince < 3000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const next = await countRunRows(databaseUrl, idPrefix);
      if (next.rows !== stored.rows) stableSince = Date.now();
      stored = next;
    }
  }
  const eventsWithoutAnswer = (totals.timeouts + totals.errors) * scenario.eventsPerRequest;
  const lost = Math.max(0, totals.eventsAcknowledged - stored.distinctIds);
  const storedUnacknowledged = Math.max(0, stored.distinctIds - totals.eventsAcknowledged);
  const duplicatesStored = stored.rows - stored.distinctIds;
  return {
    rowsStored: stored.rows,
    distinctIds: stored.distinctIds,
    duplicatesStored,
    lost,
    storedUnacknowledged,
    eventsWithoutAnswer,
    ok: lost === 0 && duplicatesStored === 0 && storedUnacknowledged <= eventsWithoutAnswer && totals.duplicatesReported === 0,
  };
}
