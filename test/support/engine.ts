/**
 * Starts a real engine in this process for end-to-end tests: its own database on the
 * test server, a free port, real uWS sockets, real actor threads. Tests talk to it with
 * fetch over loopback and check PostgreSQL directly.
 */
import pg from 'pg';
import pino from 'pino';
import type { Config } from '../../src/config/config';
import { defaultConfig } from '../../src/config/load-config';
import { startEngine, type Engine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { createTestDatabase } from './database';

export interface TestEngine {
  readonly engine: Engine;
  readonly baseUrl: string;
  readonly databaseUrl: string;
  query<Row extends pg.QueryResultRow = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<Row[]>;
  countEvents(): Promise<number>;
  /** Stops the engine (drain) but keeps the database, for restart tests. */
  stopEngine(): Promise<void>;
  /** Starts a new engine on the same database. */
  restart(overrides?: Partial<Config>): Promise<TestEngine>;
  close(): Promise<void>;
}

export function testConfig(databaseUrl: string, overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...defaultConfig(), host: '127.0.0.1', port: 0, databaseUrl, logLevel: 'silent', ...overrides });
}

export async function startTestEngine(overrides: Partial<Config> = {}): Promise<TestEngine> {
  const database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  return launch(database, client, overrides);
}

async function launch(database: { url: string; drop(): Promise<void> }, client: pg.Client, overrides: Partial<Config>): Promise<TestEngine> {
  const level = (process.env.FLOODGATE_TEST_LOG_LEVEL ?? 'silent') as Config['logLevel'];
  const config = testConfig(database.url, { logLevel: level, ...overrides });
  const engine = await startEngine(config, createLogger(config.logLevel));
  let engineStopped = false;
  const stopEngine = async (): Promise<void> => {
    if (engineStopped) return;
    engineStopped = true;
    await engine.stop();
  };
  return {
    engine,
    baseUrl: `http://127.0.0.1:${engine.port}`,
    databaseUrl: database.url,
    query: async (sql, values) => (await client.query(sql, values)).rows,
    countEvents: async () => Number((await client.query('SELECT count(*)::int AS n FROM events')).rows[0].n),
    stopEngine,
    restart: async (next = overrides) => {
      await stopEngine();
      return launch(database, client, next);
    },
    close: async () => {
      await stopEngine();
      await client.end();
      await database.drop();
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: any;
  readonly text: string;
}

/** POSTs a body and returns status, headers and parsed JSON (or text). */
export function post(url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> {
  return request('POST', url, headers, body);
}

/** Any method; the JSON is null when the answer is not JSON. */
export async function request(method: string, url: string, headers: Record<string, string> = {}, body?: string | Uint8Array): Promise<Answer> {
  const response = await fetch(url, { method, body, headers });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, json, text };
}

export interface LoggedEngine {
  readonly engine: Engine;
  readonly base: string;
  /** Every JSON log line the engine wrote (level info and up), for tests that read them. */
  readonly logs: string[];
  /** Stops the engine and drops its database. */
  close(): Promise<void>;
}

/** An engine on a fresh database whose log lines are kept in memory. */
export async function startLoggedEngine(overrides: Partial<Config> = {}): Promise<LoggedEngine> {
  const database = await createTestDatabase();
  const logs: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const engine = await startEngine(testConfig(database.url, { logLevel: 'info', ...overrides }), log);
  const close = async (): Promise<void> => {
    await engine.stop();
    await database.drop();
  };
  return { engine, base: `http://127.0.0.1:${engine.port}`, logs, close };
}

/** A request to `base + path`; a body that is not a string goes as JSON, with its content type. */
export function callRoute(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return request(method, `${base}${path}`, text === undefined ? headers : { 'content-type': 'application/json', ...headers }, text);
}

/** Starts logged engines and closes them all at once: `after(() => engines.closeAll())`. */
export function loggedEngines(): { start(overrides?: Partial<Config>): Promise<LoggedEngine>; closeAll(): Promise<void> } {
  const started: LoggedEngine[] = [];
  return {
    start: async (overrides = {}) => {
      const running = await startLoggedEngine(overrides);
      started.push(running);
      return running;
    },
    closeAll: async () => {
      for (const running of started.splice(0).reverse()) await running.close();
    },
  };
}
