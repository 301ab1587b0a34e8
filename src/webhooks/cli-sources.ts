/**
 * `floodgate webhook-sources`: signed-webhook sources from a terminal, against the
 * database like `floodgate dlq list` (DATABASE_URL, or the embedded PostgreSQL under
 * FLOODGATE_DATA_DIR; settings flags such as --database-url apply). Running engines see a
 * change within two seconds (src/webhooks/source-cache.ts).
 *
 * Secrets are read from the command line as given and stored as given; nothing here
 * prints them back: `list` shows how many a source has, never their text.
 *
 * Exit codes: 0 done, 1 the database could not be used or the source does not exist, 2 bad usage.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openDatabase, runSubcommand, stdio, UsageError, type Output } from '../cli-command';
import { loadConfig, settingFlagOptions } from '../config/load-config';
import { migrateDatabase } from '../sink/migrations';
import { schemeNames, type SchemeName } from './schemes';
import { sourceProblems, WebhookSourceStore } from './source-store';

export const webhookSourcesUsage = `Usage:
  floodgate webhook-sources add NAME --scheme ${schemeNames.join('|')} --secret S [--secret S2 …] [--header NAME] [--json]
      Adds the source, or replaces the one of that name (rotate: give the old and the new secret).
      It receives POST /v1/webhooks/NAME. --header names the signature header (hmac-sha256 only).
  floodgate webhook-sources list [--json]
      The sources, with their scheme and number of secrets (never the secrets).
  floodgate webhook-sources remove NAME
`;

const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

const ownOptions = {
  scheme: { type: 'string' },
  secret: { type: 'string', multiple: true },
  header: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export function runWebhookSources(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  type Work = (store: WebhookSourceStore, values: OwnValues, positionals: string[]) => Promise<number>;
  const withSources = async (rest: readonly string[], work: Work): Promise<number> => {
    const { values, positionals, settingArgs } = parse(rest);
    const config = loadConfig({ env, argv: settingArgs });
    const database = await openDatabase(config, env);
    try {
      // The table may not exist yet on a database no engine has started against.
      await migrateDatabase(database.connectionString, silentLogger);
      const store = WebhookSourceStore.open(database.connectionString);
      try {
        return await work(store, values, positionals);
      } finally {
        await store.close();
      }
    } finally {
      await database.close();
    }
  };
  const actions = {
    add: (rest: readonly string[]) => withSources(rest, (store, values, positionals) => add(store, values, positionals, io)),
    list: (rest: readonly string[]) => withSources(rest, (store, values, positionals) => list(store, values.json === true, positionals, io)),
    remove: (rest: readonly string[]) => withSources(rest, (store, _values, positionals) => remove(store, positionals, io)),
  };
  return runSubcommand({ name: 'webhook-sources', usage: webhookSourcesUsage, actions }, argv, io);
}

type OwnValues = { scheme?: string; secret?: string[]; header?: string; json?: boolean };

/** This command's flags, its positionals, and the settings flags rebuilt for loadConfig. */
function parse(argv: readonly string[]): { values: OwnValues; positionals: string[]; settingArgs: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...settingFlagOptions, ...ownOptions }, strict: true, allowPositionals: true, tokens: true });
  } catch (error) {
    // parseArgs names the flag; a secret given as a value is never part of its message.
    throw new UsageError(error instanceof Error ? error.message.split('\n')[0] ?? 'bad arguments' : 'bad arguments');
  }
  const settingArgs: string[] = [];
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || Object.hasOwn(ownOptions, token.name)) continue;
    settingArgs.push(token.value === undefined ? `--${token.name}` : `--${token.name}=${token.value}`);
  }
  return { values: parsed.values as OwnValues, positionals: parsed.positionals, settingArgs };
}

async function add(store: WebhookSourceStore, values: OwnValues, positionals: readonly string[], io: Output): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('add takes exactly one NAME');
  const name = positionals[0] as string;
  const scheme = values.scheme ?? '';
  const secrets = values.secret ?? [];
  const header = values.header ?? null;
  const problems = sourceProblems(name, scheme, secrets, header);
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  const added = await store.put({ name, scheme: scheme as SchemeName, secrets, signatureHeader: header });
  const outcome = added ? 'added' : 'replaced';
  if (values.json === true) io.out(`${JSON.stringify({ name, scheme, secrets: secrets.length, outcome, path: `/v1/webhooks/${name}` })}\n`);
  else io.out(`${outcome} webhook source ${name} (${scheme}, ${secrets.length} secret${secrets.length === 1 ? '' : 's'}): POST /v1/webhooks/${name}\n`);
  return 0;
}

async function list(store: WebhookSourceStore, json: boolean, positionals: readonly string[], io: Output): Promise<number> {
  if (positionals.length > 0) throw new UsageError('list takes no NAME');
  const sources = await store.list();
  for (const source of sources) {
    const shown = { name: source.name, scheme: source.scheme, secrets: source.secrets.length, header: source.signatureHeader };
    io.out(json ? `${JSON.stringify(shown)}\n` : `${shown.name}  ${shown.scheme}  ${shown.secrets} secret(s)  ${shown.header}\n`);
  }
  if (!json && sources.length === 0) io.out('no webhook sources\n');
  return 0;
}

async function remove(store: WebhookSourceStore, positionals: readonly string[], io: Output): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('remove takes exactly one NAME');
  const name = positionals[0] as string;
  if (!(await store.remove(name))) {
    io.err(`floodgate webhook-sources: no webhook source named ${JSON.stringify(name.slice(0, 64))}\n`);
    return 1;
  }
  io.out(`removed webhook source ${name}\n`);
  return 0;
}
