import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { FloodgateError } from '../../src/errors';
import type { Config } from '../../src/config/config';
import {
  ConfigError,
  crossFieldRules,
  defaultConfig,
  loadConfig,
  renderConfigTable,
  settings,
  type NumberSetting,
  type Setting,
} from '../../src/config/load-config';

type Env = Record<string, string | undefined>;

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const dayMs = 24 * 60 * 60 * 1000;

/** Loads and expects failure; returns the problems so each test can assert on them. */
function problemsOf(env: Env, argv: readonly string[] = []): string[] {
  try {
    loadConfig({ env, argv });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail(`expected a ConfigError for env ${JSON.stringify(env)} argv ${JSON.stringify(argv)}`);
}

function settingFor(key: keyof Config): Setting {
  const setting = settings.find((candidate) => candidate.key === key);
  assert.ok(setting !== undefined, `no setting for ${key}`);
  return setting;
}

function labelOf(setting: Setting): string {
  return `${setting.env} (${setting.flag})`;
}

/** Asserts exactly one problem, about this setting and this raw value. */
function assertOnlyProblemAbout(problems: readonly string[], setting: Setting, raw: string): void {
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.join('\n')}`);
  const problem = problems[0] ?? '';
  if (setting.kind === 'secret') {
    // A secret is never echoed, not even a malformed one: only its length is shown.
    assert.match(problem, new RegExp(`^${labelOf(setting).replace(/[()]/g, '\\$&')} = \\(a secret of \\d+ characters, not shown\\): expected `), problem);
    if (raw.trim().length >= 4) assert.ok(!problem.includes(raw.trim()), problem);
    return;
  }
  assert.ok(problem.startsWith(`${labelOf(setting)} = ${JSON.stringify(raw)}: expected `), problem);
}

describe('settings table', () => {
  // The names from the product brief, written out so a rename in the table fails here.
  const expectedEnvNames = [
    'PORT', 'FLOODGATE_HOST', 'DATABASE_URL', 'REDIS_URL', 'FLOODGATE_REDIS_DEDUPE_TTL_MS', 'FLOODGATE_ACK', 'FLOODGATE_DATA_DIR',
    'FLOODGATE_EMBEDDED_PG_PORT', 'FLOODGATE_ACTORS', 'FLOODGATE_ACTOR_NICE', 'FLOODGATE_RING_BYTES', 'FLOODGATE_BATCH_ROWS_MAX',
    'FLOODGATE_BATCH_WAIT_MS', 'FLOODGATE_DEDUPE_WINDOW_ENTRIES_MAX', 'FLOODGATE_RETRY_ATTEMPTS_MAX', 'FLOODGATE_WRITER_FLUSH_AFTER_BYTES', 'FLOODGATE_ROLLUPS',
    'FLOODGATE_READ_CONNECTIONS_MAX', 'FLOODGATE_READ_STATEMENT_TIMEOUT_MS',
    'FLOODGATE_RETENTION_DAYS', 'FLOODGATE_ROLLUP_RETENTION_DAYS',
    'FLOODGATE_DELIVERY_ACTORS', 'FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS', 'FLOODGATE_DELIVERY_CONNECT_TIMEOUT_MS',
    'FLOODGATE_DELIVERY_TIMEOUT_MS', 'FLOODGATE_DELIVERY_CONNECTIONS_PER_ORIGIN', 'FLOODGATE_DELIVERY_RESPONSE_BYTES_MAX',
    'FLOODGATE_DELIVERY_LEASE_MS', 'FLOODGATE_DELIVERY_RETRY_AFTER_MAX_MS', 'FLOODGATE_DELIVERY_SECRET_GRACE_MS',
    'FLOODGATE_DELIVERY_ATTEMPT_RETENTION_DAYS',
    'FLOODGATE_BODY_BYTES_MAX', 'FLOODGATE_BODY_DECODED_BYTES_MAX', 'FLOODGATE_EVENTS_PER_REQUEST_MAX',
    'FLOODGATE_EVENT_BYTES_MAX', 'FLOODGATE_ATTRIBUTES_BYTES_MAX', 'FLOODGATE_ATTRIBUTES_DEPTH_MAX',
    'FLOODGATE_TIMESTAMP_PAST_MS', 'FLOODGATE_TIMESTAMP_FUTURE_MS', 'FLOODGATE_BODY_TIMEOUT_MS',
    'FLOODGATE_ACK_TIMEOUT_MS', 'FLOODGATE_WS_BATCHES_IN_FLIGHT_MAX', 'FLOODGATE_WS_IDLE_TIMEOUT_MS', 'FLOODGATE_WS_BACKPRESSURE_BYTES_MAX', 'FLOODGATE_SEGMENT_SOURCE', 'FLOODGATE_DRAIN_TIMEOUT_MS', 'FLOODGATE_LOG_LEVEL', 'FLOODGATE_WEBHOOK_SECRET', 'FLOODGATE_ALLOW_UWS_FALLBACK',
    'FLOODGATE_AUTH', 'FLOODGATE_ADMIN_KEY', 'FLOODGATE_METRICS_TOKEN', 'FLOODGATE_CORS_ORIGINS',
    'FLOODGATE_OPEN_INGEST_EVENTS_PER_S', 'FLOODGATE_OPEN_INGEST_BURST_EVENTS', 'FLOODGATE_TRUSTED_PROXIES',
  ];

  test('has exactly the documented environment names, once each', () => {
    assert.deepEqual(settings.map((setting) => setting.env), expectedEnvNames);
  });

  test('covers every Config key exactly once', () => {
    const keys = settings.map((setting) => setting.key);
    assert.equal(new Set(keys).size, keys.length);
    assert.deepEqual([...keys].sort(), Object.keys(defaultConfig()).sort());
  });

  test('flags are unique, kebab-case and mirror the environment name', () => {
    const flags = settings.map((setting) => setting.flag);
    assert.equal(new Set(flags).size, flags.length);
    for (const setting of settings) {
      assert.match(setting.flag, /^--[a-z0-9]+(?:-[a-z0-9]+)*$/, setting.flag);
      const fromEnv = `--${setting.env.replace(/^FLOODGATE_/, '').toLowerCase().replaceAll('_', '-')}`;
      assert.equal(setting.flag, fromEnv, `${setting.env} should have flag ${fromEnv}`);
    }
  });

  test('every setting has a unit and a one-line description', () => {
    for (const setting of settings) {
      assert.ok(setting.unit.length > 0, setting.env);
      assert.ok(setting.description.length > 0 && !setting.description.includes('\n'), setting.env);
    }
  });

  test('numeric defaults sit inside their own ranges', () => {
    for (const setting of settings) {
      if (setting.kind !== 'integer' && setting.kind !== 'bytes' && setting.kind !== 'duration') continue;
      // An optional integer's default is unset (null), which no range applies to.
      if (setting.default === null) continue;
      assert.ok(setting.min <= setting.default && setting.default <= setting.max, setting.env);
    }
  });

  test('is frozen', () => {
    assert.ok(Object.isFrozen(settings));
    for (const setting of settings) assert.ok(Object.isFrozen(setting), setting.env);
  });
});

describe('defaults', () => {
  test('every setting has its documented default', () => {
    const expected: Config = {
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: null,
      redisUrl: null,
      redisDedupeTtlMs: 10 * 60 * 1000,
      ackMode: 'durable',
      dataDir: path.resolve(process.cwd(), '.floodgate'),
      embeddedPgPort: 54329,
      actorCount: 1,
      actorNice: 10,
      ringBytes: 16 * MiB,
      batchRowsMax: 5000,
      batchWaitMs: 0,
      dedupeWindowEntriesMax: 250_000,
      retryAttemptsMax: 5,
      writerFlushAfterBytes: 256 * KiB,
      rollups: 'on',
      readConnectionsMax: 8,
      readStatementTimeoutMs: 5000,
      retentionDays: null,
      rollupRetentionDays: null,
      deliveryActorCount: 1,
      deliveryAllowPrivateNetworks: false,
      deliveryConnectTimeoutMs: 5000,
      deliveryTimeoutMs: 15_000,
      deliveryConnectionsPerOrigin: 32,
      deliveryResponseBytesMax: 64 * KiB,
      deliveryLeaseMs: 60_000,
      deliveryRetryAfterMaxMs: 60 * 60 * 1000,
      deliverySecretGraceMs: dayMs,
      deliveryAttemptRetentionDays: 14,
      bodyBytesMax: 10 * MiB,
      bodyDecodedBytesMax: 32 * MiB,
      eventsPerRequestMax: 5000,
      eventBytesMax: 64 * KiB,
      attributesBytesMax: 32 * KiB,
      attributesDepthMax: 32,
      timestampPastMs: 30 * dayMs,
      timestampFutureMs: 60 * 60 * 1000,
      bodyTimeoutMs: 10_000,
      ackTimeoutMs: 30_000,
      wsBatchesInFlightMax: 64,
      wsIdleTimeoutMs: 120_000,
      wsBackpressureBytesMax: 1024 * 1024,
      segmentSource: 'segment',
      drainTimeoutMs: 30_000,
      logLevel: 'info',
      webhookSecret: null,
      allowUwsFallback: false,
      authMode: 'auto',
      adminKey: null,
      metricsToken: null,
      corsOrigins: '',
      openIngestEventsPerS: 0,
      openIngestBurstEvents: 0,
      trustedProxies: '',
    };
    assert.deepEqual(loadConfig({ env: {}, argv: [] }), expected);
    assert.deepEqual(defaultConfig(), expected);
  });

  test('dataDir is absolute even by default', () => {
    assert.ok(path.isAbsolute(defaultConfig().dataDir));
  });

  test('empty environment values count as unset', () => {
    const env: Env = {};
    for (const setting of settings) env[setting.env] = '';
    assert.deepEqual(loadConfig({ env, argv: [] }), defaultConfig());
  });

  test('unrelated environment variables are ignored', () => {
    const config = loadConfig({ env: { HOME: '/root', NODE_ENV: 'production', PGHOST: 'x', FLOODGATEX: '1' }, argv: [] });
    assert.deepEqual(config, defaultConfig());
  });
});

describe('the result', () => {
  test('is frozen', () => {
    const config = loadConfig({ env: { PORT: '9000' }, argv: [] });
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.equal(config.port, 9000);
    assert.ok(Object.isFrozen(defaultConfig()));
  });
});

/**
 * A non-default valid value for every setting, with the value it must produce. Written
 * out by hand (not derived from the table) so a wrong mapping in the table shows up.
 */
const sampleValues: { readonly [K in keyof Config]: readonly [string, Config[K]] } = {
  port: ['9000', 9000],
  host: ['127.0.0.1', '127.0.0.1'],
  databaseUrl: ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/test'],
  redisUrl: ['redis://127.0.0.1:6379/0', 'redis://127.0.0.1:6379/0'],
  redisDedupeTtlMs: ['5m', 5 * 60 * 1000],
  ackMode: ['async', 'async'],
  dataDir: ['/var/lib/floodgate', '/var/lib/floodgate'],
  embeddedPgPort: ['55432', 55432],
  actorCount: ['4', 4],
  actorNice: ['0', 0],
  ringBytes: ['32MiB', 32 * MiB],
  batchRowsMax: ['1000', 1000],
  batchWaitMs: ['20ms', 20],
  dedupeWindowEntriesMax: ['1000', 1000],
  retryAttemptsMax: ['0', 0],
  writerFlushAfterBytes: ['0', 0],
  rollups: ['off', 'off'],
  readConnectionsMax: ['32', 32],
  readStatementTimeoutMs: ['2s', 2000],
  retentionDays: ['90', 90],
  rollupRetentionDays: ['400', 400],
  deliveryActorCount: ['2', 2],
  deliveryAllowPrivateNetworks: ['true', true],
  deliveryConnectTimeoutMs: ['2s', 2000],
  deliveryTimeoutMs: ['5s', 5000],
  deliveryConnectionsPerOrigin: ['8', 8],
  deliveryResponseBytesMax: ['8KiB', 8 * KiB],
  deliveryLeaseMs: ['30s', 30_000],
  deliveryRetryAfterMaxMs: ['10m', 10 * 60 * 1000],
  deliverySecretGraceMs: ['1h', 60 * 60 * 1000],
  deliveryAttemptRetentionDays: ['30', 30],
  bodyBytesMax: ['1MiB', MiB],
  bodyDecodedBytesMax: ['2MiB', 2 * MiB],
  eventsPerRequestMax: ['100', 100],
  eventBytesMax: ['8KiB', 8 * KiB],
  attributesBytesMax: ['4KiB', 4 * KiB],
  attributesDepthMax: ['8', 8],
  timestampPastMs: ['7d', 7 * dayMs],
  timestampFutureMs: ['5m', 5 * 60 * 1000],
  bodyTimeoutMs: ['2s', 2000],
  ackTimeoutMs: ['1500', 1500],
  wsBatchesInFlightMax: ['8', 8],
  wsIdleTimeoutMs: ['30s', 30_000],
  wsBackpressureBytesMax: ['2MiB', 2 * 1024 * 1024],
  segmentSource: ['web-app', 'web-app'],
  drainTimeoutMs: ['0', 0],
  logLevel: ['debug', 'debug'],
  webhookSecret: ['day15-secret', 'day15-secret'],
  allowUwsFallback: ['yes', true],
  authMode: ['required', 'required'],
  adminKey: [`fgk_${'A'.repeat(43)}`, `fgk_${'A'.repeat(43)}`],
  metricsToken: ['scrape-token-0123456789', 'scrape-token-0123456789'],
  corsOrigins: ['https://App.example.com, http://localhost:3000', 'https://app.example.com,http://localhost:3000'],
  openIngestEventsPerS: ['500', 500],
  openIngestBurstEvents: ['1000', 1000],
  trustedProxies: ['10.0.0.0/8, ::1', '10.0.0.0/8, ::1'],
};

describe('every setting through the environment and through its flag', () => {
  const expected: Record<string, unknown> = {};
  const env: Env = {};
  const argv: string[] = [];
  for (const setting of settings) {
    const [text, value] = sampleValues[setting.key];
    expected[setting.key] = value;
    env[setting.env] = text;
    argv.push(`${setting.flag}=${text}`);
  }

  test('environment variables set every key', () => {
    assert.deepEqual(loadConfig({ env, argv: [] }), expected);
  });

  test('flags set every key', () => {
    assert.deepEqual(loadConfig({ env: {}, argv }), expected);
  });

  test('flags override the environment', () => {
    const config = loadConfig({
      env: { PORT: '1111', FLOODGATE_ACK: 'async', FLOODGATE_RING_BYTES: '8MiB', FLOODGATE_ALLOW_UWS_FALLBACK: 'true' },
      argv: ['--port', '2222', '--ack=durable', '--ring-bytes', '4MiB', '--allow-uws-fallback=no'],
    });
    assert.equal(config.port, 2222);
    assert.equal(config.ackMode, 'durable');
    assert.equal(config.ringBytes, 4 * MiB);
    assert.equal(config.allowUwsFallback, false);
  });

  test('an environment value overridden by a valid flag is not reported', () => {
    assert.equal(loadConfig({ env: { PORT: 'not-a-port' }, argv: ['--port=9001'] }).port, 9001);
  });
});

/** Extra settings that keep a boundary value clear of the cross-field rules. */
function companionsFor(key: keyof Config, value: number): Env {
  if (key === 'bodyBytesMax') return { FLOODGATE_BODY_DECODED_BYTES_MAX: String(Math.max(value, 32 * MiB)) };
  if (key === 'bodyDecodedBytesMax') return { FLOODGATE_BODY_BYTES_MAX: String(Math.min(value, 10 * MiB)) };
  if (key === 'eventBytesMax') {
    return { FLOODGATE_ATTRIBUTES_BYTES_MAX: String(Math.min(value, 32 * KiB)), FLOODGATE_RING_BYTES: String(4 * value + 64 * KiB) };
  }
  if (key === 'attributesBytesMax') {
    return { FLOODGATE_EVENT_BYTES_MAX: String(Math.max(value, 256)), FLOODGATE_RING_BYTES: String(4 * Math.max(value, 256) + 64 * KiB) };
  }
  if (key === 'openIngestBurstEvents') return { FLOODGATE_OPEN_INGEST_EVENTS_PER_S: '1' };
  // The lease must outlast a whole request: the longest connect and timeouts need a lease of an hour.
  if (key === 'deliveryConnectTimeoutMs' || key === 'deliveryTimeoutMs') return { FLOODGATE_DELIVERY_LEASE_MS: '1h' };
  if (key === 'deliveryLeaseMs') return { FLOODGATE_DELIVERY_CONNECT_TIMEOUT_MS: '100', FLOODGATE_DELIVERY_TIMEOUT_MS: '100' };
  // A retention of one day needs an accepted past of at most one day.
  if (key === 'retentionDays' || key === 'rollupRetentionDays') return { FLOODGATE_TIMESTAMP_PAST_MS: '1d' };
  return {};
}

describe('numeric ranges, for every numeric setting', () => {
  const numeric = settings.filter((setting): setting is Setting & NumberSetting =>
    setting.kind === 'integer' || setting.kind === 'bytes' || setting.kind === 'duration');

  for (const setting of numeric) {
    test(`${setting.env} accepts its bounds and rejects one past them`, () => {
      for (const bound of [setting.min, setting.max]) {
        const env = { ...companionsFor(setting.key, bound), [setting.env]: String(bound) };
        if (setting.key === 'ringBytes' && bound === setting.min) {
          // 64 KiB is the range's floor, but 4 × eventBytesMax + 64 KiB exceeds it for every
          // allowed eventBytesMax (≥ 256 bytes), so the cross-field rule always refuses it.
          const problems = problemsOf({ ...env, FLOODGATE_EVENT_BYTES_MAX: '256', FLOODGATE_ATTRIBUTES_BYTES_MAX: '2' });
          assert.equal(problems.length, 1);
          assert.match(problems[0] ?? '', /4 × eventBytesMax \+ 64 KiB = 65 KiB/);
          continue;
        }
        assert.equal(loadConfig({ env, argv: [] })[setting.key], bound);
        assert.equal(loadConfig({ env: companionsFor(setting.key, bound), argv: [`${setting.flag}=${bound}`] })[setting.key], bound);
      }
      for (const outside of [setting.min - 1, setting.max + 1]) {
        const raw = String(outside);
        const problem = problemsOf({ [setting.env]: raw })[0] ?? '';
        assertOnlyProblemAbout(problemsOf({ [setting.env]: raw }), setting, raw);
        assert.ok(problem.includes(String(setting.min)) && problem.includes(String(setting.max)), problem);
        assertOnlyProblemAbout(problemsOf({}, [setting.flag, raw]), setting, raw);
      }
    });
  }
});

describe('malformed values, for every setting', () => {
  const badByKind: Record<Setting['kind'], readonly string[]> = {
    integer: ['abc', '1e3', '12abc', '-0', '1.5', '0x10', '+5', '007', '   ', '9007199254740993'],
    bytes: ['abc', '16MB', '16mib', '1.5MiB', 'MiB', '16 MiB extra', '-64KiB', '1e6', '   ', '9999999999GiB'],
    duration: ['abc', '1.5s', '2w', '5 sec', '1S', '-1s', '1e3', '   ', '1h30m'],
    enum: ['nope', 'DURABLE', '   ', 'info,debug'],
    boolean: ['maybe', '2', 'on', 'ture', '   '],
    url: ['not a url', 'http://example.com/', 'mysql://127.0.0.1/db', '   '],
    string: ['   ', 'a\0b'],
    // Bad for both formats (api-key and token); the api-key's own rules are tested below.
    secret: ['   ', 'fgk_short', `fgk_${'A'.repeat(300)}`, 'has space in the middle', `fgk_${'A'.repeat(40)} \t!`],
  };

  for (const setting of settings) {
    // Any visible text of 1..1024 characters is a valid Day-15 secret: tested on its own below.
    if (setting.key === 'webhookSecret') continue;
    test(`${setting.env} rejects malformed values, naming the setting and the value`, () => {
      for (const raw of badByKind[setting.kind]) {
        assertOnlyProblemAbout(problemsOf({ [setting.env]: raw }), setting, raw);
        assertOnlyProblemAbout(problemsOf({}, [`${setting.flag}=${raw}`]), setting, raw);
      }
    });
  }

  test('FLOODGATE_WEBHOOK_SECRET rejects malformed values, naming the setting but never the value', () => {
    for (const raw of ['   ', 'a\0b', 'tab\there']) {
      const problems = problemsOf({ FLOODGATE_WEBHOOK_SECRET: raw });
      assert.equal(problems.length, 1);
      assert.match(problems[0] as string, /FLOODGATE_WEBHOOK_SECRET/);
      assert.ok(!(problems[0] as string).includes(raw), 'the secret is not echoed');
    }
  });

  test('FLOODGATE_ADMIN_KEY must be fgk_ and base64url, and is never echoed', () => {
    for (const raw of [`xyz_${'A'.repeat(43)}`, `fgk_${'A'.repeat(40)}!!`, `fgk_${'A'.repeat(31)}`]) {
      assertOnlyProblemAbout(problemsOf({ FLOODGATE_ADMIN_KEY: raw }), settingFor('adminKey'), raw);
    }
  });

  test('FLOODGATE_TRUSTED_PROXIES takes IPs and CIDR blocks only', () => {
    for (const raw of ['localhost', '10.0.0.0/33', '10.0.0.1,,garbage', '::/129', '10.0.0.0/8/8']) {
      assertOnlyProblemAbout(problemsOf({ FLOODGATE_TRUSTED_PROXIES: raw }), settingFor('trustedProxies'), raw);
    }
  });

  test('an explicitly empty flag value is an error, not a reset', () => {
    assertOnlyProblemAbout(problemsOf({}, ['--port=']), settingFor('port'), '');
    assertOnlyProblemAbout(problemsOf({}, ['--database-url=']), settingFor('databaseUrl'), '');
  });
});

describe('integers', () => {
  test('are decimal, trimmed, within the safe range', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_ACTORS: '  7\t' }, argv: [] }).actorCount, 7);
    assert.equal(loadConfig({ env: { PORT: '0' }, argv: [] }).port, 0);
  });

  test('the message names the setting, value, range and unit', () => {
    assert.deepEqual(problemsOf({ FLOODGATE_ACTORS: '33' }), [
      'FLOODGATE_ACTORS (--actors) = "33": expected a decimal integer between 1 and 32 (threads)',
    ]);
    assert.deepEqual(problemsOf({ PORT: '-1' }), [
      'PORT (--port) = "-1": expected a decimal integer between 0 and 65535 (port)',
    ]);
  });
});

describe('bytes', () => {
  const cases: readonly [string, number][] = [
    ['65536', 64 * KiB], ['64KiB', 64 * KiB], ['512 KiB', 512 * KiB], ['16MiB', 16 * MiB], ['1GiB', GiB],
    ['1048576B', MiB], [' 2MiB ', 2 * MiB],
  ];
  for (const [text, bytes] of cases) {
    test(`"${text}" is ${bytes} bytes`, () => {
      const env = { FLOODGATE_BODY_DECODED_BYTES_MAX: text, FLOODGATE_BODY_BYTES_MAX: '1KiB' };
      assert.equal(loadConfig({ env, argv: [] }).bodyDecodedBytesMax, bytes);
    });
  }

  test('the ring size must be a multiple of 8', () => {
    const setting = settingFor('ringBytes');
    const problems = problemsOf({ FLOODGATE_RING_BYTES: String(16 * MiB + 4) });
    assertOnlyProblemAbout(problems, setting, String(16 * MiB + 4));
    assert.match(problems[0] ?? '', /a multiple of 8 bytes/);
  });

  test('the writer flush size must be whole 8 KiB pages (PostgreSQL counts it in pages)', () => {
    const setting = settingFor('writerFlushAfterBytes');
    const problems = problemsOf({ FLOODGATE_WRITER_FLUSH_AFTER_BYTES: '100KiB' });
    assertOnlyProblemAbout(problems, setting, '100KiB');
    assert.match(problems[0] ?? '', /a multiple of 8192 bytes/);
    assert.equal(loadConfig({ env: { FLOODGATE_WRITER_FLUSH_AFTER_BYTES: '512KiB' }, argv: [] }).writerFlushAfterBytes, 512 * KiB);
  });

  test('the message shows the range in readable units and in bytes', () => {
    assert.deepEqual(problemsOf({ FLOODGATE_BODY_BYTES_MAX: '16MB' }), [
      'FLOODGATE_BODY_BYTES_MAX (--body-bytes-max) = "16MB": expected a size in bytes (e.g. 65536, 64KiB, 16MiB) ' +
        'between 1 KiB and 256 MiB (1024..268435456 bytes)',
    ]);
  });
});

describe('durations', () => {
  const cases: readonly [string, number][] = [
    ['0', 0], ['250', 250], ['250ms', 250], ['2s', 2000], ['5m', 300_000], ['1h', 3_600_000], ['30d', 30 * dayMs],
    ['3650d', 3650 * dayMs], ['10 s', 10_000],
  ];
  for (const [text, ms] of cases) {
    test(`"${text}" is ${ms} ms`, () => {
      assert.equal(loadConfig({ env: { FLOODGATE_TIMESTAMP_PAST_MS: text }, argv: [] }).timestampPastMs, ms);
    });
  }

  test('the message matches the documented form', () => {
    assert.deepEqual(problemsOf({ FLOODGATE_BATCH_WAIT_MS: 'abc' }), [
      'FLOODGATE_BATCH_WAIT_MS (--batch-wait-ms) = "abc": expected a duration in milliseconds (e.g. 5, 250ms, 2s) between 0 and 10000 ms',
    ]);
  });

  test('long limits are also shown in days', () => {
    const problem = problemsOf({ FLOODGATE_TIMESTAMP_FUTURE_MS: '3651d' })[0] ?? '';
    assert.match(problem, /between 0 and 315360000000 ms \(0 ms to 3650 d\)$/);
  });

  test('a suffix that pushes the value out of range is reported', () => {
    assertOnlyProblemAbout(problemsOf({ FLOODGATE_BATCH_WAIT_MS: '11s' }), settingFor('batchWaitMs'), '11s');
  });
});

describe('booleans', () => {
  const cases: readonly [string, boolean][] = [
    ['true', true], ['1', true], ['yes', true], ['TRUE', true], ['Yes', true],
    ['false', false], ['0', false], ['no', false], ['False', false],
  ];
  for (const [text, value] of cases) {
    test(`"${text}" is ${value}`, () => {
      assert.equal(loadConfig({ env: { FLOODGATE_ALLOW_UWS_FALLBACK: text }, argv: [] }).allowUwsFallback, value);
    });
  }

  test('a bare flag means true', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_ALLOW_UWS_FALLBACK: 'false' }, argv: ['--allow-uws-fallback'] }).allowUwsFallback, true);
  });

  test('a bare flag never swallows the next argument', () => {
    assert.deepEqual(problemsOf({}, ['--allow-uws-fallback', 'false']), [
      'unexpected argument "false": settings are given as --name=value or --name value',
    ]);
  });
});

describe('enums', () => {
  test('accept each listed value and list them when refusing', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      assert.equal(loadConfig({ env: { FLOODGATE_LOG_LEVEL: level }, argv: [] }).logLevel, level);
    }
    assert.equal(loadConfig({ env: { FLOODGATE_ACK: ' async ' }, argv: [] }).ackMode, 'async');
    assert.deepEqual(problemsOf({ FLOODGATE_ACK: 'fast' }), ['FLOODGATE_ACK (--ack) = "fast": expected one of durable, async']);
  });

  test('FLOODGATE_ROLLUPS: on by default, off only when asked, anything else refused', () => {
    assert.equal(loadConfig({ env: {}, argv: [] }).rollups, 'on');
    assert.equal(loadConfig({ env: {}, argv: ['--rollups', 'off'] }).rollups, 'off');
    assert.deepEqual(problemsOf({ FLOODGATE_ROLLUPS: 'false' }), ['FLOODGATE_ROLLUPS (--rollups) = "false": expected one of on, off']);
  });
});

describe('URLs', () => {
  test('accept both PostgreSQL and both Redis schemes and keep the text as given', () => {
    const url = 'postgresql://user:p%40ss@db.internal:6543/events?sslmode=require&application_name=floodgate';
    assert.equal(loadConfig({ env: { DATABASE_URL: url }, argv: [] }).databaseUrl, url);
    assert.equal(loadConfig({ env: { REDIS_URL: 'rediss://:token@cache:6380' }, argv: [] }).redisUrl, 'rediss://:token@cache:6380');
  });

  test('a flag value may itself contain "="', () => {
    const url = 'postgres://127.0.0.1/test?sslmode=disable';
    assert.equal(loadConfig({ env: {}, argv: [`--database-url=${url}`] }).databaseUrl, url);
  });

  test('the wrong scheme is refused and passwords never appear in the message', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://admin:hunter2@db/x', REDIS_URL: 'postgres://u:s3cret@r:6379' });
    assert.deepEqual(problems, [
      'DATABASE_URL (--database-url) = "mysql://admin:***@db/x": expected a URL starting with postgres:// or postgresql://',
      'REDIS_URL (--redis-url) = "postgres://u:***@r:6379": expected a URL starting with redis:// or rediss://',
    ]);
  });

  test('an unparseable URL with a password is redacted too', () => {
    const problem = problemsOf({ DATABASE_URL: 'postgres://admin:pa ss/word@[bad/x' })[0] ?? '';
    assert.ok(!problem.includes('pa ss') && !problem.includes('word@'), problem);
  });
});

describe('strings', () => {
  test('host takes names and IP literals but not ports, brackets or spaces', () => {
    for (const host of ['127.0.0.1', '::', '::1', 'localhost', 'engine-1.internal']) {
      assert.equal(loadConfig({ env: { FLOODGATE_HOST: host }, argv: [] }).host, host);
    }
    for (const host of ['bad host', 'a/b', '[::1]', 'localhost,other']) {
      assertOnlyProblemAbout(problemsOf({ FLOODGATE_HOST: host }), settingFor('host'), host);
    }
  });

  test('CORS origins: * or exact origins (lower-cased), never paths, wildcards in hosts or a blob', () => {
    const origins = (text: string) => loadConfig({ env: { FLOODGATE_CORS_ORIGINS: text }, argv: [] }).corsOrigins;
    assert.equal(origins('*'), '*');
    assert.equal(origins('https://a.example'), 'https://a.example');
    assert.equal(origins('http://[::1]:8080,https://B.example'), 'http://[::1]:8080,https://b.example');
    const tooMany = Array.from({ length: 33 }, (_, index) => `https://h${index}.example`).join(',');
    for (const text of ['https://a.example/', 'https://a.example/app', '*.example.com', 'https://*.example.com', 'a.example', 'ftp://a.example', 'null', '*,https://a.example', 'https://a.example,,']) {
      assertOnlyProblemAbout(problemsOf({ FLOODGATE_CORS_ORIGINS: text }), settingFor('corsOrigins'), text);
    }
    const problems = problemsOf({ FLOODGATE_CORS_ORIGINS: tooMany });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_CORS_ORIGINS .*up to 32 comma-separated origins/);
  });

  test('dataDir is resolved against the working directory', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_DATA_DIR: 'state/pg' }, argv: [] }).dataDir, path.resolve(process.cwd(), 'state/pg'));
    assert.equal(loadConfig({ env: {}, argv: ['--data-dir', '/srv/floodgate/'] }).dataDir, '/srv/floodgate');
  });

  test('very long bad values are cut in the message', () => {
    const raw = 'x'.repeat(10_000);
    const problem = problemsOf({ FLOODGATE_HOST: raw })[0] ?? '';
    assert.ok(problem.length < 400, `message is ${problem.length} characters`);
  });
});

describe('flags', () => {
  test('take "--name value" and "--name=value"', () => {
    const config = loadConfig({ env: {}, argv: ['--port', '9000', '--ack=async', '--batch-wait-ms', '2s'] });
    assert.equal(config.port, 9000);
    assert.equal(config.ackMode, 'async');
    assert.equal(config.batchWaitMs, 2000);
  });

  test('an unknown flag is refused, with a suggestion when one is close', () => {
    assert.deepEqual(problemsOf({}, ['--batch-row-max', '10']), ['unknown flag --batch-row-max (did you mean --batch-rows-max?)']);
    assert.deepEqual(problemsOf({}, ['--colour=blue']), ['unknown flag --colour']);
    assert.deepEqual(problemsOf({}, ['--help']), ['unknown flag --help']);
  });

  test('positional and single-dash arguments are refused', () => {
    assert.equal(problemsOf({}, ['serve']).length, 1);
    assert.match(problemsOf({}, ['-p', '9000'])[0] ?? '', /^unexpected argument "-p"/);
    assert.match(problemsOf({}, ['--'])[0] ?? '', /^unexpected argument "--"/);
  });

  test('a flag without its value is refused', () => {
    assert.deepEqual(problemsOf({}, ['--port']), ['PORT (--port): the flag needs a value (--port=value or --port value)']);
    assert.deepEqual(problemsOf({}, ['--port', '--ack=async']), [
      'PORT (--port): the flag needs a value (--port=value or --port value)',
    ]);
  });

  test('a flag given twice is refused rather than guessed', () => {
    assert.deepEqual(problemsOf({}, ['--port=1', '--port=2']), ['PORT (--port): the flag is given more than once']);
  });

  test('a negative number after a flag is read as its value', () => {
    assertOnlyProblemAbout(problemsOf({}, ['--batch-wait-ms', '-5']), settingFor('batchWaitMs'), '-5');
  });
});

describe('unknown environment variables', () => {
  test('a FLOODGATE_* name that is not a setting is refused, with a suggestion', () => {
    assert.deepEqual(problemsOf({ FLOODGATE_BATCH_ROW_MAX: '10' }), [
      'FLOODGATE_BATCH_ROW_MAX: unknown setting (did you mean FLOODGATE_BATCH_ROWS_MAX?)',
    ]);
    // PORT, DATABASE_URL and REDIS_URL carry no prefix; the prefixed spelling is a common slip.
    assert.deepEqual(problemsOf({ FLOODGATE_PORT: '9000' }), ['FLOODGATE_PORT: unknown setting (did you mean PORT?)']);
    assert.deepEqual(problemsOf({ FLOODGATE_COLOUR: 'blue' }), ['FLOODGATE_COLOUR: unknown setting']);
  });

  test('an empty one has no effect and is ignored', () => {
    assert.deepEqual(loadConfig({ env: { FLOODGATE_TYPO: '' }, argv: [] }), defaultConfig());
  });
});

describe('all problems at once', () => {
  test('every bad input is listed in one ConfigError', () => {
    let caught: unknown;
    try {
      loadConfig({
        env: { PORT: 'x', FLOODGATE_ACK: 'fast', FLOODGATE_NOPE: '1', FLOODGATE_RING_BYTES: '1MB' },
        argv: ['--actors=0', '--wat'],
      });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError);
    assert.ok(caught instanceof FloodgateError);
    assert.equal(caught.code, 'ERR_CONFIG_INVALID');
    assert.equal(caught.name, 'ConfigError');
    assert.equal(caught.problems.length, 6);
    for (const problem of caught.problems) assert.ok(caught.message.includes(problem), problem);
    assert.match(caught.message, /^invalid configuration \(6 problems\):/);
    assert.ok(Object.isFrozen(caught.problems));
  });
});

describe('cross-field rules', () => {
  test('the ring must hold 4 × eventBytesMax + 64 KiB', () => {
    const needed = 4 * 64 * KiB + 64 * KiB;
    assert.equal(loadConfig({ env: { FLOODGATE_RING_BYTES: String(needed) }, argv: [] }).ringBytes, needed);
    const problems = problemsOf({ FLOODGATE_RING_BYTES: String(needed - 8) });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_RING_BYTES \(--ring-bytes\) = 327672 bytes is too small for FLOODGATE_EVENT_BYTES_MAX \(--event-bytes-max\) = 64 KiB: a ring needs at least 4 × eventBytesMax \+ 64 KiB = 320 KiB \(327680 bytes\), because /);
    // Raising the event limit alone trips the same rule against the default ring.
    assert.match(problemsOf({ FLOODGATE_EVENT_BYTES_MAX: '8MiB' })[0] ?? '', /is too small for FLOODGATE_EVENT_BYTES_MAX/);
  });

  test('the decoded body limit may not be below the body limit', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_BODY_DECODED_BYTES_MAX: '10MiB' }, argv: [] }).bodyDecodedBytesMax, 10 * MiB);
    assert.deepEqual(problemsOf({ FLOODGATE_BODY_DECODED_BYTES_MAX: '8MiB' }), [
      'FLOODGATE_BODY_DECODED_BYTES_MAX (--body-decoded-bytes-max) = 8 MiB is smaller than FLOODGATE_BODY_BYTES_MAX ' +
        '(--body-bytes-max) = 10 MiB: an uncompressed body counts against both limits, so the smaller one would ' +
        'silently become the real body limit',
    ]);
  });

  test('attributes may not be allowed to exceed the event', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_ATTRIBUTES_BYTES_MAX: '64KiB' }, argv: [] }).attributesBytesMax, 64 * KiB);
    const problems = problemsOf({ FLOODGATE_ATTRIBUTES_BYTES_MAX: '65537' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_ATTRIBUTES_BYTES_MAX \(--attributes-bytes-max\) = 65537 bytes exceeds FLOODGATE_EVENT_BYTES_MAX/);
  });

  test('an open-ingest burst needs an open-ingest rate', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_OPEN_INGEST_EVENTS_PER_S: '10', FLOODGATE_OPEN_INGEST_BURST_EVENTS: '50' }, argv: [] }).openIngestBurstEvents, 50);
    const problems = problemsOf({ FLOODGATE_OPEN_INGEST_BURST_EVENTS: '50' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_OPEN_INGEST_BURST_EVENTS \(--open-ingest-burst-events\) = 50 is set but FLOODGATE_OPEN_INGEST_EVENTS_PER_S/);
  });

  test('the ack timeout must exceed the batch wait', () => {
    assert.equal(loadConfig({ env: { FLOODGATE_BATCH_WAIT_MS: '99', FLOODGATE_ACK_TIMEOUT_MS: '100' }, argv: [] }).ackTimeoutMs, 100);
    const problems = problemsOf({ FLOODGATE_BATCH_WAIT_MS: '100', FLOODGATE_ACK_TIMEOUT_MS: '100' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_ACK_TIMEOUT_MS \(--ack-timeout-ms\) = 100 ms must be greater than FLOODGATE_BATCH_WAIT_MS/);
  });

  test('the embedded PostgreSQL may not share the HTTP port, unless it is not used', () => {
    const problems = problemsOf({ PORT: '54329' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_EMBEDDED_PG_PORT \(--embedded-pg-port\) = 54329 equals PORT \(--port\)/);
    const external = loadConfig({ env: { PORT: '54329', DATABASE_URL: 'postgres://127.0.0.1/test' }, argv: [] });
    assert.equal(external.port, 54329);
  });

  test('a retention shorter than the accepted timestamp window is refused, naming both settings and values', () => {
    // The default window is 30 days: 30 days of retention is the shortest accepted.
    assert.equal(loadConfig({ env: { FLOODGATE_RETENTION_DAYS: '30' }, argv: [] }).retentionDays, 30);
    assert.deepEqual(problemsOf({ FLOODGATE_RETENTION_DAYS: '29' }), [
      'FLOODGATE_RETENTION_DAYS (--retention-days) = 29 days is shorter than FLOODGATE_TIMESTAMP_PAST_MS ' +
        '(--timestamp-past-ms) = 30 d (2592000000 ms): events that old are still accepted, so a late event could land ' +
        'in a day partition that retention drops (created again holding that event alone, then dropped again); keep at ' +
        'least 30 days, or accept a shorter past',
    ]);
    // A part of a day counts as a whole one, and a shorter window allows a shorter retention.
    assert.match(problemsOf({ FLOODGATE_RETENTION_DAYS: '2', FLOODGATE_TIMESTAMP_PAST_MS: '49h' })[0] ?? '', /= 49 h \(176400000 ms\): .*keep at least 3 days/);
    const short = loadConfig({ env: { FLOODGATE_RETENTION_DAYS: '1', FLOODGATE_TIMESTAMP_PAST_MS: '1d' }, argv: [] });
    assert.deepEqual([short.retentionDays, short.timestampPastMs], [1, dayMs]);
  });

  test('a rollup retention shorter than the accepted timestamp window is refused too', () => {
    assert.equal(loadConfig({ env: {}, argv: ['--rollup-retention-days', '30'] }).rollupRetentionDays, 30);
    const problems = problemsOf({ FLOODGATE_ROLLUP_RETENTION_DAYS: '7', FLOODGATE_RETENTION_DAYS: '7' });
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? '', /^FLOODGATE_RETENTION_DAYS \(--retention-days\) = 7 days is shorter than FLOODGATE_TIMESTAMP_PAST_MS/);
    assert.match(problems[1] ?? '', /^FLOODGATE_ROLLUP_RETENTION_DAYS \(--rollup-retention-days\) = 7 days is shorter than FLOODGATE_TIMESTAMP_PAST_MS \(--timestamp-past-ms\) = 30 d \(2592000000 ms\): .*counted in a rollup day that retention already emptied.*keep at least 30 days/);
  });

  test('retention unset keeps everything, whatever the window; 0 is not a way to say unset', () => {
    const config = loadConfig({ env: { FLOODGATE_RETENTION_DAYS: '', FLOODGATE_TIMESTAMP_PAST_MS: '3650d' }, argv: [] });
    assert.deepEqual([config.retentionDays, config.rollupRetentionDays], [null, null]);
    assert.deepEqual(problemsOf({ FLOODGATE_RETENTION_DAYS: '0' }), [
      'FLOODGATE_RETENTION_DAYS (--retention-days) = "0": expected a decimal integer between 1 and 36500 (days)',
    ]);
    // A malformed window is reported alone: the retention rule does not repeat it.
    assert.equal(problemsOf({ FLOODGATE_RETENTION_DAYS: '1', FLOODGATE_TIMESTAMP_PAST_MS: '1w' }).length, 1);
  });

  test('a rule is skipped when one of its settings is already reported', () => {
    const problems = problemsOf({ FLOODGATE_EVENT_BYTES_MAX: '64MB', FLOODGATE_RING_BYTES: '320KiB' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^FLOODGATE_EVENT_BYTES_MAX \(--event-bytes-max\) = "64MB"/);
  });

  test('several broken rules are all reported', () => {
    const problems = problemsOf({ FLOODGATE_RING_BYTES: '128KiB', FLOODGATE_BODY_DECODED_BYTES_MAX: '1KiB' });
    assert.equal(problems.length, 2);
  });

  test('a delivery lease shorter than a whole request is refused', () => {
    const problems = problemsOf({ FLOODGATE_DELIVERY_LEASE_MS: '10s' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /FLOODGATE_DELIVERY_LEASE_MS \(--delivery-lease-ms\) = 10000 ms must exceed .* = 35000 ms/);
  });

  test('every rule has a summary for docs/configuration.md', () => {
    assert.equal(crossFieldRules.length, 9);
    for (const rule of crossFieldRules) assert.ok(rule.summary.length > 0);
  });
});

describe('renderConfigTable', () => {
  const table = renderConfigTable();
  const lines = table.trimEnd().split('\n');

  test('has the header and one row per setting', () => {
    assert.equal(lines[0], '| Setting env | CLI flag | default | range/unit | meaning |');
    assert.equal(lines[1], '| --- | --- | --- | --- | --- |');
    assert.equal(lines.length, settings.length + 2);
  });

  test('lists every environment name and flag, in table order', () => {
    settings.forEach((setting, index) => {
      const row = lines[index + 2] ?? '';
      assert.ok(row.startsWith(`| \`${setting.env}\` | \`${setting.flag}\` | `), row);
    });
  });

  test('every row has exactly five cells (pipes inside cells are escaped)', () => {
    for (const line of lines) {
      const cellSeparators = line.match(/(?<!\\)\|/g) ?? [];
      assert.equal(cellSeparators.length, 6, line);
    }
    assert.ok(table.includes('durable \\| async'));
  });

  test('shows defaults and ranges in readable units', () => {
    assert.ok(lines.some((line) => line.startsWith('| `FLOODGATE_RING_BYTES` | `--ring-bytes` | 16 MiB | 64 KiB..1 GiB, multiple of 8')));
    assert.ok(lines.some((line) => line.startsWith('| `FLOODGATE_TIMESTAMP_PAST_MS` | `--timestamp-past-ms` | 30 d | 0 ms..3650 d')));
    assert.ok(lines.some((line) => line.startsWith('| `DATABASE_URL` | `--database-url` | unset |')));
    assert.ok(lines.some((line) => line.startsWith('| `FLOODGATE_RETENTION_DAYS` | `--retention-days` | unset | 1..36500 days |')));
  });
});
