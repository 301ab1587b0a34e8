/**
 * What the database subcommands of `floodgate` (dlq, keys, webhook-sources) share: one
 * dispatcher (help, unknown actions, and the exit codes: 0 done, 1 the database or engine
 * could not be used, 2 bad usage), the split of a command's own flags from the settings
 * flags, and the database a short command opens.
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pino from 'pino';
import type { Config } from './config/config';
import { ConfigError } from './config/load-config';
import { resolveDatabase } from './sink/database';
import { isAlive, readPostmasterPid } from './sink/postmaster-pid';

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: Output = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

/** Bad usage: printed with the command's usage text, exit code 2. */
export class UsageError extends Error {}

export interface Subcommand {
  /** The word after `floodgate`, used in messages: `floodgate <name>: …`. */
  readonly name: string;
  readonly usage: string;
  readonly actions: Readonly<Record<string, (rest: readonly string[]) => Promise<number>>>;
  /** What to say when the command's table is missing (SQLSTATE 42P01). */
  readonly missingTableHint?: string;
}

/** Runs `argv[0]` of the command's actions and turns every error into a message and an exit code. */
export async function runSubcommand(command: Subcommand, argv: readonly string[], io: Output): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === 'help' || action === '--help' || action === '-h') {
    io.out(command.usage);
    return action === undefined ? 2 : 0;
  }
  const prefix = `floodgate ${command.name}:`;
  try {
    const run = Object.hasOwn(command.actions, action) ? command.actions[action] : undefined;
    if (run === undefined) throw new UsageError(`unknown ${command.name} action "${action}"`);
    return await run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${prefix} ${error.message}\n\n${command.usage}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      io.err(`${prefix} invalid configuration\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}\n`);
      return 2;
    }
    const code = (error as { code?: unknown }).code;
    if (code === '42P01' && command.missingTableHint !== undefined) {
      io.err(`${prefix} ${command.missingTableHint}\n`);
      return 1;
    }
    io.err(`${prefix} ${error instanceof Error ? error.message : String(error)}${typeof code === 'string' ? ` (${code})` : ''}\n`);
    return 1;
  }
}

/**
 * Splits argv into this command's flags (`--name value`, `--name=value`, or bare for
 * switches) and the rest, which go to the settings loader as they were given. parseArgs
 * runs leniently so that the settings' flags pass through: it reads an unknown flag as a
 * switch and its value as a positional, and both keep their place in the rest.
 */
export function takeFlags(argv: readonly string[], valued: readonly string[], switches: readonly string[]): { flags: Map<string, string>; rest: string[] } {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const name of valued) options[name] = { type: 'string' };
  for (const name of switches) options[name] = { type: 'boolean' };
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const flags = new Map<string, string>();
  const rest: string[] = [];
  // A group of single-dash letters (`-abc`) is one token per letter, all with one index.
  let lastRestIndex = -1;
  for (const token of tokens) {
    if (token.kind !== 'option' || !token.rawName.startsWith('--') || !Object.hasOwn(options, token.name)) {
      if (token.index !== lastRestIndex) rest.push(argv[token.index] as string);
      lastRestIndex = token.index;
      continue;
    }
    const name = token.rawName;
    if (switches.includes(token.name)) {
      if (token.value !== undefined) throw new UsageError(`${name} takes no value`);
      flags.set(name, 'true');
      continue;
    }
    // Lenient parseArgs takes the next argument even when it is another flag: refused.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
    if (flags.has(name)) throw new UsageError(`${name} is given more than once`);
    flags.set(name, token.value);
  }
  return { flags, rest };
}

/**
 * The database to read. Without DATABASE_URL that is the embedded PostgreSQL; when an
 * engine is already running it, resolveDatabase reuses that server but also arms an exit
 * hook (and a stop()) meant for a server it owns: both would shut the engine's database
 * down when this short command exits, so the hook is removed and stop() never called.
 */
export async function openDatabase(config: Config, env: NodeJS.ProcessEnv): Promise<{ connectionString: string; close(): Promise<void> }> {
  const logger = pino({ level: env.FLOODGATE_LOG_LEVEL === undefined ? 'warn' : config.logLevel, base: { service: 'floodgate-dlq' } }, pino.destination({ dest: 2, sync: true }));
  if (config.databaseUrl !== null) return { connectionString: config.databaseUrl, close: async () => undefined };
  const pid = readPostmasterPid(path.join(path.resolve(config.dataDir), 'postgres'));
  const alreadyRunning = pid !== null && isAlive(pid);
  const exitHooksBefore = new Set(process.listeners('exit'));
  const database = await resolveDatabase(config, logger);
  if (!alreadyRunning) return { connectionString: database.connectionString, close: () => database.stop() };
  for (const hook of process.listeners('exit')) if (!exitHooksBefore.has(hook)) process.off('exit', hook);
  return { connectionString: database.connectionString, close: async () => undefined };
}
