/**
 * A client that behaves as Floodgate asks clients to: every batch is resent until it gets
 * a 2xx (connection refused or reset, 503, a timeout — all mean "retry"). Fault tests use
 * it to check the promise end to end: with the batches' events known in advance, the
 * database must end up holding each of them exactly once.
 */
import http from 'node:http';

export interface RetryStats {
  /** Events the engine acknowledged with a 2xx (accepted + duplicates). */
  acknowledged: number;
  attempts: number;
  /** Answers by status; 0 counts connection errors. */
  statuses: Record<number, number>;
  /** How long the engine took to answer each 503 (ms). */
  refusalLatenciesMs: number[];
  retryAfterSeen: boolean;
}

export interface RetryingClientOptions {
  readonly url: () => string;
  readonly bodies: readonly string[];
  readonly concurrency: number;
  readonly retryDelayMs?: number;
  readonly requestTimeoutMs?: number;
  /** Gives up (throws) if a single batch is still unacknowledged after this long. */
  readonly batchDeadlineMs?: number;
  readonly headers?: Record<string, string>;
  /** Shared with the caller while sending, so a fault can be injected at a given progress. */
  readonly stats?: RetryStats;
}

export function emptyStats(): RetryStats {
  return { acknowledged: 0, attempts: 0, statuses: {}, refusalLatenciesMs: [], retryAfterSeen: false };
}

export async function sendAllWithRetries(options: RetryingClientOptions): Promise<RetryStats> {
  const stats = options.stats ?? emptyStats();
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.bodies.length) {
          const body = options.bodies[next++] as string;
          await sendUntilAcknowledged(agent, body, options, stats);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return stats;
}

async function sendUntilAcknowledged(agent: http.Agent, body: string, options: RetryingClientOptions, stats: RetryStats): Promise<void> {
  const startedAt = Date.now();
  for (;;) {
    stats.attempts++;
    const sentAt = performance.now();
    const answer = await postOnce(agent, options.url(), body, options.headers ?? {}, options.requestTimeoutMs ?? 10_000).catch(() => null);
    const status = answer?.status ?? 0;
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    if (answer !== null && status >= 200 && status < 300) {
      const parsed = JSON.parse(answer.text) as { accepted: number; duplicates: number };
      stats.acknowledged += parsed.accepted + parsed.duplicates;
      return;
    }
    if (status === 503) {
      stats.refusalLatenciesMs.push(performance.now() - sentAt);
      if (answer?.retryAfter) stats.retryAfterSeen = true;
    } else if (answer !== null) {
      throw new Error(`unexpected answer ${status}: ${answer.text}`);
    }
    if (Date.now() - startedAt > (options.batchDeadlineMs ?? 60_000)) throw new Error('a batch stayed unacknowledged past its deadline');
    await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 50));
  }
}

function postOnce(agent: http.Agent, url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/json', ...headers } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text, retryAfter: response.headers['retry-after'] }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
    request.end(body);
  });
}
