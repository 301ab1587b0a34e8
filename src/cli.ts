#!/usr/bin/env node
/**
 * The `floodgate` command.
 *
 *   floodgate [serve] [--flag value …]   start the engine (default)
 *   floodgate migrate [--flag value …]   apply the schema migrations and exit
 *   floodgate dlq list|replay …          dead letters (src/cli-dlq.ts)
 *   floodgate rollups verify|rebuild …   rollup tables against events (src/rollups/rollups-cli.ts)
 *   floodgate deliveries verify …        delivery records against events (src/delivery/deliveries-verify.ts)
 *   floodgate keys create|list|revoke …  API keys (src/auth/cli-keys.ts)
 *   floodgate webhook-sources add|list|remove …  signed-webhook sources (src/webhooks/cli-sources.ts)
 *   floodgate subscriptions create|list|show|update|delete|rotate-secret …  (src/delivery/cli-subscriptions.ts)
 *   floodgate help                       list commands and settings
 *
 * Settings come from environment variables and matching flags (src/config/load-config.ts).
 * SIGTERM and SIGINT drain: stop accepting, write everything queued, answer what is
 * pending, exit 0. A second signal during the drain exits at once with code 1.
 */
import { parseArgs } from 'node:util';
import { runDlq } from './cli-dlq';
import { runRollups } from './rollups/rollups-cli';
import { runDeliveries } from './delivery/deliveries-verify';
import { runKeys } from './auth/cli-keys';
import { runWebhookSources } from './webhooks/cli-sources';
import { runSubscriptions } from './delivery/cli-subscriptions';
import { ConfigError, loadConfig, renderConfigTable, settingFlagOptions } from './config/load-config';
import { startEngine } from './engine';
import { createLogger, type Logger } from './log';
import { resolveDatabase } from './sink/database';
import { migrateDatabase } from './sink/migrations';

const usage = `Usage: floodgate [serve|migrate|dlq|rollups|deliveries|keys|webhook-sources|subscriptions|help] [--setting value ...]

  serve            start the engine (default); embedded PostgreSQL when DATABASE_URL is unset
  migrate          apply database migrations and exit
  dlq              list (from the database) or replay (through the running engine) dead letters; floodgate dlq help
  rollups          verify the rollup tables against the events, or rebuild a range; floodgate rollups help
  deliveries       verify that every subscription's delivery records match the stored events; floodgate deliveries help
  keys             create, list or revoke API keys (in the database); floodgate keys help
  webhook-sources  add, list or remove signed-webhook sources (in the database); floodgate webhook-sources help
  subscriptions    create, list, show, update, delete delivery subscriptions or rotate their secrets; floodgate subscriptions help
  help             show this text and the settings

Settings (environment variable, or the flag beside it):
`;

/*
 * No V8 heap flags: with the dedupe window off the heap (src/actors/dedupe-window.ts), a
 * cap on heap growth only made major GCs more frequent and the engine slower
 * (docs/decisions/0018-no-heap-growth-flag.md).
 */

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const flags = command === first ? rest : argv;
  if (command === 'dlq') return runDlq(flags, process.env);
  if (command === 'rollups') return runRollups(flags, process.env);
  if (command === 'deliveries') return runDeliveries(flags, process.env);
  if (command === 'webhook-sources') return runWebhookSources(flags, process.env);
  if (command === 'keys') return runKeys(flags, process.env);
  if (command === 'subscriptions') return runSubscriptions(flags, process.env);
  if (command === 'help' || asksForHelp(flags)) {
    process.stdout.write(`${usage}\n${renderConfigTable()}\n`);
    return 0;
  }
  if (command !== 'serve' && command !== 'migrate') {
    process.stderr.write(`floodgate: unknown command "${command}"\n\n${usage}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig({ env: process.env, argv: flags });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`floodgate: invalid configuration\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);
  return command === 'migrate' ? migrate(config, log) : serve(config, log);
}

/**
 * --help or -h among the settings' flags; a setting's value that happens to read `-h`
 * (`--data-dir -h`) is a value, not a request for help. Everything else is loadConfig's.
 */
function asksForHelp(flags: readonly string[]): boolean {
  const options = { ...settingFlagOptions, help: { type: 'boolean', short: 'h' } } as const;
  const { tokens } = parseArgs({ args: [...flags], options, strict: false, allowPositionals: true, tokens: true });
  return tokens.some((token) => token.kind === 'option' && token.name === 'help');
}

async function migrate(config: Parameters<typeof startEngine>[0], log: Logger): Promise<number> {
  const database = await resolveDatabase(config, log);
  try {
    await migrateDatabase(database.connectionString, log);
    log.info({ embedded: database.embedded }, 'migrations applied');
    return 0;
  } finally {
    await database.stop();
  }
}

/**
 * The signal handlers are installed before the engine starts: "floodgate ready" is logged
 * inside startEngine, and a supervisor (or a test) that sends SIGTERM as soon as it reads
 * that line must get a drain, not Node's default exit by signal.
 */
async function serve(config: Parameters<typeof startEngine>[0], log: Logger): Promise<number> {
  let signalled: NodeJS.Signals | null = null;
  let onSignal = (signal: NodeJS.Signals): void => {
    signalled = signal;
  };
  const handler = (signal: NodeJS.Signals): void => onSignal(signal);
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  const engine = await startEngine(config, log);
  return new Promise<number>((resolve) => {
    let stopping = false;
    onSignal = (signal) => {
      if (stopping) {
        log.warn({ signal }, 'second signal during drain: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'signal received');
      engine.stop().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, 'drain failed');
          resolve(1);
        },
      );
    };
    if (signalled !== null) onSignal(signalled);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const code = (error as { code?: unknown }).code;
    process.stderr.write(`floodgate: ${error instanceof Error ? error.message : String(error)}${code ? ` (${String(code)})` : ''}\n`);
    process.exit(1);
  },
);
