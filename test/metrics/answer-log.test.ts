import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { AnswerLog, answerLinesPerSecondMax } from '../../src/metrics/answer-log';

function capture(level: pino.Level): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  // pino writes synchronously to a plain stream, so lines are there when log calls return.
  const logger = pino({ level, base: null }, stream);
  return { logger, lines: () => chunks.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const answered = (status: number, requestId: string) => ({ requestId, route: 'v1-bulk', status, code: status >= 500 ? 'ERR_INGEST_OVERLOADED' : 'ERR_INGEST_MALFORMED_BODY', durationMs: 1.23456 });

test('5xx answers are logged at warn with the request id; 4xx only when debug is on; 2xx never', () => {
  const info = capture('info');
  const log = new AnswerLog(info.logger, () => 0);
  log.answered(answered(503, 'req-5xx'));
  log.answered(answered(400, 'req-4xx'));
  assert.deepEqual(info.lines().map((line) => [line.level, line.requestId, line.status, line.code, line.msg]), [
    [40, 'req-5xx', 503, 'ERR_INGEST_OVERLOADED', 'request answered 503'],
  ]);
  assert.equal(info.lines()[0]?.durationMs, 1.235);

  const debug = capture('debug');
  new AnswerLog(debug.logger, () => 0).answered(answered(400, 'req-4xx'));
  assert.deepEqual(debug.lines().map((line) => [line.level, line.requestId]), [[20, 'req-4xx']]);
});

test(`at most ${answerLinesPerSecondMax} lines a second; the next line says how many were left out`, () => {
  let nowMs = 1_000;
  const { logger, lines } = capture('info');
  const log = new AnswerLog(logger, () => nowMs);
  for (let i = 0; i < answerLinesPerSecondMax + 25; i++) log.answered(answered(503, `req-${i}`));
  assert.equal(lines().length, answerLinesPerSecondMax);
  nowMs += 1_000;
  log.answered(answered(503, 'req-next'));
  const last = lines().at(-1);
  assert.equal(last?.requestId, 'req-next');
  assert.equal(last?.suppressedLines, 25);
  log.answered(answered(503, 'req-after'));
  assert.equal(lines().at(-1)?.suppressedLines, undefined);
});
