/**
 * Wraps an actor's RowWriter to measure each write attempt without the actor or the sink
 * knowing: its duration and row count, the commit latency of the rows it committed, and
 * whether the database connection worked.
 *
 * Commit latency is recorded once per run of rows sharing a receipt time (one envelope),
 * with a count, not once per row.
 */
import type { RowWriter } from '../actors/actor';
import { EventOutcome } from '../event';
import type { BatchRow, WriteReport } from '../sink/batch-writer';
import { errorCodeOf } from '../sink/retry-policy';
import type { ActorStats } from './actor-stats';
import { clockUs } from './clock';

export function recordingWriter(writer: RowWriter, stats: ActorStats): RowWriter {
  return {
    async write(rows: readonly BatchRow[], outcomes: Uint8Array): Promise<WriteReport> {
      const startedUs = clockUs();
      let report: WriteReport;
      try {
        report = await writer.write(rows, outcomes);
      } catch (error) {
        stats.writeAttempted(rows.length, clockUs() - startedUs, !isConnectionLoss(error));
        throw error;
      }
      const committedAtUs = clockUs();
      stats.writeAttempted(rows.length, committedAtUs - startedUs, true);
      if (report.committed > 0) recordCommitted(stats, rows, outcomes, committedAtUs);
      return report;
    },
  };
}

function recordCommitted(stats: ActorStats, rows: readonly BatchRow[], outcomes: Uint8Array, committedAtUs: number): void {
  let runReceivedAtUs = -1;
  let runCount = 0;
  for (let i = 0; i < rows.length; i++) {
    if (outcomes[i] !== EventOutcome.committed) continue;
    const receivedAtUs = (rows[i] as BatchRow).receivedAtUs;
    if (receivedAtUs === runReceivedAtUs) {
      runCount++;
      continue;
    }
    if (runCount > 0) stats.committed(runReceivedAtUs, committedAtUs, runCount);
    runReceivedAtUs = receivedAtUs;
    runCount = 1;
  }
  if (runCount > 0) stats.committed(runReceivedAtUs, committedAtUs, runCount);
}

/** Node's network error codes and SQLSTATEs that mean "no working connection". */
const connectionLossCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '53300', '3D000',
]);

/**
 * Class 08 is "connection exception" except 08P01 (protocol violation: our bytes were
 * wrong, the connection worked); class 28 is a refused login. The batch writer gives a
 * socket closed under a query the code 08006.
 */
function isConnectionLoss(error: unknown): boolean {
  const code = errorCodeOf(error);
  if (code === null) return false;
  return connectionLossCodes.has(code) || code.startsWith('28') || (code.startsWith('08') && code !== '08P01');
}
