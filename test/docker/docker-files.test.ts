/**
 * Keeps docker/Dockerfile, docker/compose.yaml, package.json and the settings table in
 * agreement: a setting renamed or a port changed on one side only fails here.
 *
 * compose.yaml is read with the `yaml` package (a development dependency): a test that
 * guards the file must not misread it through a parser of its own.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { loadConfig, settings } from '../../src/config/load-config';

/** dist/test/docker/ → repository root. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const dockerDir = path.join(repoRoot, 'docker');

type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };
type YamlMap = { [key: string]: YamlValue };

/**
 * The whole file as plain values. Any error or warning the library reports (a duplicate
 * key, a tab in the indentation, an unresolved alias…) fails here, naming the problem,
 * rather than leaving a half-read file for the assertions below.
 */
function readYaml(file: string): YamlMap {
  const document = parseDocument(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const problems = [...document.errors, ...document.warnings].map((problem) => problem.message);
  assert.deepEqual(problems, [], `${path.relative(repoRoot, file)} should be valid YAML`);
  return asMap(document.toJS() as YamlValue, path.relative(repoRoot, file));
}

interface DockerInstruction {
  readonly name: string;
  readonly args: string;
}

/** Joins `\` continuations, drops comments, splits each instruction into name and arguments. */
function parseDockerfile(source: string): DockerInstruction[] {
  const instructions: DockerInstruction[] = [];
  let pending = '';
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = `${pending}${line}`.trim();
    pending = '';
    if (whole === '') continue;
    const match = /^(\S+)\s*(.*)$/.exec(whole);
    if (match === null) continue;
    instructions.push({ name: (match[1] ?? '').toUpperCase(), args: match[2] ?? '' });
  }
  assert.equal(pending, '', 'the Dockerfile ends inside a line continuation');
  return instructions;
}

/** Instructions of the last build stage: what the running image is made of. */
function finalStage(instructions: readonly DockerInstruction[]): DockerInstruction[] {
  const lastFrom = instructions.map((instruction) => instruction.name).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

function asMap(value: YamlValue | undefined, what: string): YamlMap {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what} should be a map`);
  return value;
}

function asList(value: YamlValue | undefined, what: string): YamlValue[] {
  assert.ok(Array.isArray(value), `${what} should be a list`);
  return value;
}

/** Compose durations such as `40s`, `1m30s`, `500ms`. */
function composeDurationMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const rest = text.replace(/(\d+)(ms|s|m|h)/g, (_, amount: string, unit: string) => {
    total += Number(amount) * (units[unit] ?? Number.NaN);
    return '';
  });
  assert.equal(rest, '', `not a compose duration: ${text}`);
  return total;
}

const dockerfile = parseDockerfile(readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8'));
const compose = readYaml(path.join(dockerDir, 'compose.yaml'));
const packageJson = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  bin?: Record<string, string>;
  scripts?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
const services = asMap(compose['services'], 'services');
const engine = asMap(services['floodgate'], 'services.floodgate');
const engineEnv = asMap(engine['environment'], 'services.floodgate.environment');
const finalInstructions = finalStage(dockerfile);

function exposedPorts(): string[] {
  return finalInstructions.filter((instruction) => instruction.name === 'EXPOSE').flatMap((instruction) => instruction.args.split(/\s+/));
}

function healthcheckCommand(): string[] {
  const healthchecks = finalInstructions.filter((instruction) => instruction.name === 'HEALTHCHECK');
  assert.equal(healthchecks.length, 1, 'the image needs exactly one HEALTHCHECK');
  const args = healthchecks[0]?.args ?? '';
  const match = /\bCMD\s+(\[.*\])$/.exec(args);
  assert.ok(match !== null, `HEALTHCHECK should use the exec form: ${args}`);
  return JSON.parse(match[1] ?? '[]') as string[];
}

describe('docker/Dockerfile', () => {
  test('every stage starts from node:20-bookworm-slim', () => {
    const bases = dockerfile.filter((instruction) => instruction.name === 'FROM').map((instruction) => instruction.args.split(/\s+/)[0]);
    assert.ok(bases.length >= 1);
    for (const base of bases) assert.equal(base, 'node:20-bookworm-slim');
  });

  test('installs with an npm that honours allowScripts, after the sources are in place', () => {
    const runs = dockerfile.filter((instruction) => instruction.name === 'RUN').map((instruction) => instruction.args);
    const npmPin = runs.map((run) => /npm install --global npm@(\d+)\.(\d+)\.(\d+)/.exec(run)).find((match) => match !== null);
    assert.ok(npmPin, 'the Dockerfile should pin npm');
    const [major, minor] = [Number(npmPin[1]), Number(npmPin[2])];
    assert.ok(major > 11 || (major === 11 && minor >= 16), `npm ${major}.${minor} predates allowScripts`);
    assert.ok(packageJson.allowScripts !== undefined, 'package.json should carry the allowScripts policy');

    // `npm ci` runs the root "prepare" script: it must be the build, and the sources must be
    // copied before it or the build inside `npm ci` fails on an empty tree.
    assert.match(packageJson.scripts?.['prepare'] ?? '', /npm run build/);
    assert.match(packageJson.scripts?.['build'] ?? '', /\btsc\b/);
    const ciAt = dockerfile.findIndex((instruction) => instruction.name === 'RUN' && /\bnpm ci\b/.test(instruction.args));
    assert.ok(ciAt >= 0, 'the image should install with npm ci');
    const sourcesAt = dockerfile.findIndex((instruction) =>
      instruction.name === 'COPY' && /^(?:\.|src\/?)\s/.test(instruction.args));
    assert.ok(sourcesAt >= 0 && sourcesAt < ciAt, 'the sources should be copied before npm ci');
  });

  test('runs the CLI from package.json bin as `serve`', () => {
    const cmds = finalInstructions.filter((instruction) => instruction.name === 'CMD');
    assert.equal(cmds.length, 1);
    const command = JSON.parse(cmds[0]?.args ?? '') as unknown;
    assert.deepEqual(command, ['node', 'dist/src/cli.js', 'serve']);
    assert.equal(packageJson.bin?.['floodgate'], 'dist/src/cli.js');
    // tsconfig compiles src/cli.ts (rootDir ".") to dist/src/cli.js (outDir "dist").
    const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: { rootDir: string; outDir: string };
    };
    assert.equal(tsconfig.compilerOptions.rootDir, '.');
    assert.equal(tsconfig.compilerOptions.outDir, 'dist');
    assert.ok(existsSync(path.join(repoRoot, 'src', 'cli.ts')), 'src/cli.ts should exist');
  });

  test('runs as a user other than root', () => {
    const users = finalInstructions.filter((instruction) => instruction.name === 'USER').map((instruction) => instruction.args);
    assert.ok(users.length > 0, 'the final stage should set USER');
    const user = (users.at(-1) ?? '').split(':')[0];
    assert.ok(user !== 'root' && user !== '0' && user !== '', `runs as ${user}`);
  });

  test('exposes the port the engine listens on', () => {
    const portEnv = finalInstructions
      .filter((instruction) => instruction.name === 'ENV')
      .map((instruction) => /(?:^|\s)PORT=(\d+)/.exec(instruction.args)?.[1])
      .find((value) => value !== undefined);
    assert.deepEqual(exposedPorts(), ['8080']);
    assert.equal(portEnv, '8080');
    const portSetting = settings.find((setting) => setting.env === 'PORT');
    assert.equal(portSetting?.default, 8080, 'the engine default port should match EXPOSE');
  });

  test('checks health with node on GET /healthz of the same port', () => {
    const command = healthcheckCommand();
    assert.equal(command[0], 'node');
    assert.equal(command[1], '-e');
    const script = command[2] ?? '';
    assert.match(script, /path: '\/healthz'/);
    assert.match(script, /process\.env\.PORT \|\| (\d+)/);
    assert.equal(/process\.env\.PORT \|\| (\d+)/.exec(script)?.[1], exposedPorts()[0]);
  });
});

/** Runs the image's health check script against `port`; resolves with its exit code. */
function runHealthcheck(port: number): Promise<number> {
  const [, flag, script] = healthcheckCommand();
  return new Promise((resolve) => {
    execFile(process.execPath, [flag ?? '-e', script ?? ''], { env: { PORT: String(port) }, timeout: 10_000 }, (error) => {
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1);
    });
  });
}

async function withServer(status: number, run: (port: number, paths: string[]) => Promise<void>): Promise<void> {
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    paths.push(`${request.method ?? ''} ${request.url ?? ''}`);
    response.writeHead(status).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run((server.address() as AddressInfo).port, paths);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('the HEALTHCHECK script, run for real', () => {
  test('passes when GET /healthz answers 200', async () => {
    await withServer(200, async (port, paths) => {
      assert.equal(await runHealthcheck(port), 0);
      assert.deepEqual(paths, ['GET /healthz']);
    });
  });

  test('fails when /healthz answers 503', async () => {
    await withServer(503, async (port) => {
      assert.equal(await runHealthcheck(port), 1);
    });
  });

  test('fails when nothing listens', async () => {
    let freePort = 0;
    await withServer(200, async (port) => {
      freePort = port;
    });
    assert.equal(await runHealthcheck(freePort), 1);
  });
});

describe('docker/compose.yaml', () => {
  test('has the postgres, redis and floodgate services with their images', () => {
    assert.deepEqual(Object.keys(services).sort(), ['floodgate', 'postgres', 'redis']);
    assert.equal(asMap(services['postgres'], 'postgres')['image'], 'postgres:16');
    assert.equal(asMap(services['redis'], 'redis')['image'], 'redis:7');
  });

  test('builds floodgate from docker/Dockerfile with the repository root as context', () => {
    const build = asMap(engine['build'], 'floodgate.build');
    const context = path.resolve(dockerDir, String(build['context']));
    assert.equal(context, repoRoot);
    assert.ok(existsSync(path.join(context, String(build['dockerfile']))));
    assert.ok(existsSync(path.join(context, '.dockerignore')), 'the context root needs the .dockerignore');
  });

  test('sets only real settings in the floodgate environment, and they load', () => {
    const known = new Set(settings.map((setting) => setting.env));
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(engineEnv)) {
      assert.ok(known.has(name), `${name} is not a Floodgate setting`);
      env[name] = String(value);
    }
    const config = loadConfig({ env, argv: [] });
    assert.equal(config.ackMode, 'durable');
    assert.notEqual(config.databaseUrl, null);
    assert.notEqual(config.redisUrl, null);
  });

  test('publishes the port the engine listens on and the image exposes', () => {
    const ports = asList(engine['ports'], 'floodgate.ports').map(String);
    assert.deepEqual(ports, ['8080:8080']);
    const containerPort = ports[0]?.split(':').at(-1);
    assert.equal(String(engineEnv['PORT']), containerPort);
    assert.deepEqual(exposedPorts(), [containerPort]);
  });

  test('DATABASE_URL points at the postgres service with its credentials', () => {
    const url = new URL(String(engineEnv['DATABASE_URL']));
    const postgres = asMap(services['postgres'], 'postgres');
    const postgresEnv = asMap(postgres['environment'], 'postgres.environment');
    assert.ok(Object.hasOwn(services, url.hostname), `no service named ${url.hostname}`);
    assert.equal(url.hostname, 'postgres');
    assert.equal(url.port === '' ? '5432' : url.port, '5432');
    assert.equal(decodeURIComponent(url.username), postgresEnv['POSTGRES_USER']);
    assert.equal(decodeURIComponent(url.password), postgresEnv['POSTGRES_PASSWORD']);
    assert.equal(url.pathname.slice(1), postgresEnv['POSTGRES_DB']);
  });

  test('REDIS_URL points at the redis service', () => {
    const url = new URL(String(engineEnv['REDIS_URL']));
    assert.ok(Object.hasOwn(services, url.hostname), `no service named ${url.hostname}`);
    assert.equal(url.hostname, 'redis');
  });

  test('floodgate waits for healthy dependencies that exist and have health checks', () => {
    const dependsOn = asMap(engine['depends_on'], 'floodgate.depends_on');
    assert.deepEqual(Object.keys(dependsOn).sort(), ['postgres', 'redis']);
    for (const [name, condition] of Object.entries(dependsOn)) {
      assert.ok(Object.hasOwn(services, name), `depends on missing service ${name}`);
      assert.equal(asMap(condition, `depends_on.${name}`)['condition'], 'service_healthy');
      const healthcheck = asMap(asMap(services[name], name)['healthcheck'], `${name}.healthcheck`);
      assert.ok(asList(healthcheck['test'], `${name}.healthcheck.test`).length > 0);
    }
  });

  test('the health checks use pg_isready and redis-cli ping', () => {
    const postgresTest = asList(asMap(asMap(services['postgres'], 'postgres')['healthcheck'], 'hc')['test'], 'test').join(' ');
    const redisTest = asList(asMap(asMap(services['redis'], 'redis')['healthcheck'], 'hc')['test'], 'test').join(' ');
    assert.match(postgresTest, /pg_isready/);
    assert.match(redisTest, /redis-cli ping/);
  });

  test('postgres keeps its data in a declared named volume', () => {
    const volumes = asList(asMap(services['postgres'], 'postgres')['volumes'], 'postgres.volumes').map(String);
    const [volumeName, mountPath] = (volumes[0] ?? '').split(':');
    assert.equal(mountPath, '/var/lib/postgresql/data');
    assert.ok(Object.hasOwn(asMap(compose['volumes'], 'volumes'), volumeName ?? ''), `volume ${volumeName} is not declared`);
  });

  test('the stop grace period outlasts the drain timeout', () => {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(engineEnv)) env[name] = String(value);
    const drainTimeoutMs = loadConfig({ env, argv: [] }).drainTimeoutMs;
    const graceMs = composeDurationMs(String(engine['stop_grace_period']));
    assert.ok(graceMs > drainTimeoutMs, `stop_grace_period ${graceMs} ms ≤ drain timeout ${drainTimeoutMs} ms`);
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  test('keeps host builds and installs out of the context', () => {
    for (const pattern of ['node_modules', 'dist', '.git', '.floodgate']) assert.ok(patterns.includes(pattern), pattern);
  });

  test('keeps what the build needs', () => {
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'docker']) {
      assert.ok(!patterns.some((pattern) => pattern === needed || pattern === `${needed}/` || pattern === '*'), needed);
    }
  });

  test('keeps tests, benchmarks, scripts and docs out of the image', () => {
    for (const pattern of ['test', 'bench', 'scripts', 'docs']) assert.ok(patterns.includes(pattern), pattern);
  });

  test('leaves the image\'s build (npm ci → prepare → npm run build) only src to compile', () => {
    assert.equal(packageJson.scripts?.['build'], 'tsc -p tsconfig.json');
    const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.json'), 'utf8')) as { include?: string[]; files?: string[] };
    assert.equal(tsconfig.files, undefined, 'tsconfig.json should list folders in include, not files');
    const roots = (tsconfig.include ?? []).map((pattern) => pattern.split('/')[0] ?? '');
    assert.ok(roots.includes('src'));
    for (const root of roots) {
      if (root !== 'src') assert.ok(patterns.includes(root), `the image's build compiles ${root}/ unless .dockerignore leaves it out`);
    }
  });

  test('src imports nothing outside src, so it compiles without the folders left out', () => {
    const srcDir = path.join(repoRoot, 'src');
    const outside: string[] = [];
    for (const file of typeScriptFiles(srcDir)) {
      for (const match of readFileSync(file, 'utf8').matchAll(relativeImport)) {
        const target = path.resolve(path.dirname(file), match[1] ?? '');
        if (target !== srcDir && !target.startsWith(srcDir + path.sep)) outside.push(`${path.relative(repoRoot, file)} → ${match[1]}`);
      }
    }
    assert.deepEqual(outside, []);
  });
});

/** `from '…'`, `import '…'`, `import('…')` and `require('…')` of a relative path. */
const relativeImport = /(?:\bfrom|\bimport|\brequire)\s*\(?\s*['"](\.{1,2}\/[^'"]*)['"]/g;

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return typeScriptFiles(full);
    return entry.isFile() && entry.name.endsWith('.ts') ? [full] : [];
  });
}

/**
 * docker/grafana: the provisioning files and dashboards Grafana loads, read with the same
 * YAML parser and JSON.parse. Each panel must name a datasource that is provisioned, and
 * each PostgreSQL panel must read tables the migrations create. The SQL itself runs against
 * a real database, macros substituted, in test/e2e/analytics-dashboard.test.ts.
 */
describe('docker/grafana', () => {
  const grafanaDir = path.join(dockerDir, 'grafana');
  const overlay = readYaml(path.join(grafanaDir, 'compose.yaml'));
  const grafana = asMap(asMap(overlay['services'], 'overlay services')['grafana'], 'services.grafana');
  const grafanaEnv = asMap(grafana['environment'], 'services.grafana.environment');
  const datasourceFiles = readdirSync(path.join(grafanaDir, 'provisioning', 'datasources')).filter((name) => name.endsWith('.yaml'));
  const datasources = datasourceFiles.flatMap((name) => {
    const file = readYaml(path.join(grafanaDir, 'provisioning', 'datasources', name));
    assert.equal(file['apiVersion'], 1, `${name}: apiVersion`);
    return asList(file['datasources'], `${name}: datasources`).map((entry) => asMap(entry, `${name}: a datasource`));
  });
  const dashboardFiles = readdirSync(path.join(grafanaDir, 'dashboards')).filter((name) => name.endsWith('.json'));
  const migrationsSource = readFileSync(path.join(repoRoot, 'src', 'sink', 'migrations.ts'), 'utf8');
  const tables = new Set([...migrationsSource.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/g)].map((match) => match[1] ?? ''));

  test('the PostgreSQL datasource takes host, user, database and password from the environment', () => {
    const postgres = datasources.find((entry) => entry['uid'] === 'floodgate-postgres');
    assert.ok(postgres !== undefined, 'a datasource with uid floodgate-postgres');
    assert.equal(postgres['type'], 'grafana-postgresql-datasource');
    const jsonData = asMap(postgres['jsonData'], 'jsonData');
    const secure = asMap(postgres['secureJsonData'], 'secureJsonData');
    const placeholders = { url: postgres['url'], user: postgres['user'], database: jsonData['database'], password: secure['password'] };
    const defaults: Record<string, string> = {};
    for (const [field, value] of Object.entries(placeholders)) {
      // A literal here would be a credential in the repository; only ${NAME} is allowed.
      const name = /^\$\{(\w+)\}$/.exec(String(value))?.[1];
      assert.ok(name !== undefined, `${field} should be an environment placeholder, not ${String(value)}`);
      const set = grafanaEnv[name];
      assert.ok(set !== undefined, `docker/grafana/compose.yaml does not give Grafana ${name}`);
      const fallback = /^\$\{\w+:-([^}]*)\}$/.exec(String(set))?.[1];
      assert.ok(fallback !== undefined, `${name} should be passed on from the shell with a default: ${String(set)}`);
      defaults[field] = fallback;
    }
    // The defaults are the postgres service of docker/compose.yaml, so the overlay works as is.
    const postgresEnv = asMap(asMap(services['postgres'], 'postgres')['environment'], 'postgres.environment');
    assert.equal(defaults['url'], 'postgres:5432');
    assert.ok(Object.hasOwn(services, (defaults['url'] ?? '').split(':')[0] ?? ''));
    assert.equal(defaults['user'], postgresEnv['POSTGRES_USER']);
    assert.equal(defaults['database'], postgresEnv['POSTGRES_DB']);
    assert.equal(defaults['password'], postgresEnv['POSTGRES_PASSWORD']);
    assert.ok(asList(grafana['depends_on'], 'grafana.depends_on').includes('postgres'));
  });

  test('datasource uids are unique and every dashboard folder Grafana reads is mounted', () => {
    const uids = datasources.map((entry) => String(entry['uid']));
    assert.deepEqual([...new Set(uids)].sort(), [...uids].sort());
    const provider = asMap(asList(readYaml(path.join(grafanaDir, 'provisioning', 'dashboards', 'floodgate.yaml'))['providers'], 'providers')[0], 'provider');
    const dashboardsPath = String(asMap(provider['options'], 'options')['path']);
    const mounts = asList(grafana['volumes'], 'grafana.volumes').map((volume) => String(volume).split(':'));
    const mount = mounts.find(([, target]) => target === dashboardsPath);
    assert.ok(mount !== undefined, `nothing is mounted at ${dashboardsPath}`);
    assert.equal(path.resolve(dockerDir, mount[0] ?? ''), path.join(grafanaDir, 'dashboards'));
    assert.ok(dashboardFiles.includes('floodgate.json') && dashboardFiles.includes('floodgate-analytics.json'));
  });

  for (const name of dashboardFiles) {
    test(`${name}: every panel and query names a provisioned datasource of its type`, () => {
      const dashboard = JSON.parse(readFileSync(path.join(grafanaDir, 'dashboards', name), 'utf8')) as GrafanaDashboard;
      assert.ok(dashboard.uid !== undefined && dashboard.panels.length > 0);
      const ids = dashboard.panels.map((panel) => panel.id);
      assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
      for (const panel of dashboard.panels) {
        for (const reference of [panel.datasource, ...(panel.targets ?? []).map((target) => target.datasource)]) {
          const source = datasources.find((entry) => entry['uid'] === reference?.uid);
          assert.ok(source !== undefined, `panel "${panel.title}" names datasource ${reference?.uid}, which is not provisioned`);
          assert.equal(reference?.type, source['type'], `panel "${panel.title}": datasource type`);
        }
      }
    });
  }

  test('floodgate-analytics.json: each panel reads tables the migrations create, rollups by time and summed over shards', () => {
    const dashboard = JSON.parse(readFileSync(path.join(grafanaDir, 'dashboards', 'floodgate-analytics.json'), 'utf8')) as GrafanaDashboard;
    const read = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        const sql = target.rawSql ?? '';
        assert.equal(target.rawQuery, true, `panel "${panel.title}" should be raw SQL`);
        const named = [...sql.matchAll(/\b(?:FROM|JOIN)\s+(\w+)/gi)].map((match) => match[1] ?? '');
        assert.ok(named.length > 0, `panel "${panel.title}" reads no table`);
        for (const table of named) {
          assert.ok(tables.has(table), `panel "${panel.title}" reads ${table}, which no migration creates`);
          read.add(table);
        }
        assert.match(sql, /\$__timeFilter\((bucket|day|occurred_at)\)/, `panel "${panel.title}" is bounded by the dashboard's time range`);
        if (/event_counts_/.test(sql)) {
          assert.match(sql, /sum\(count\)/, `panel "${panel.title}" must add the shards' counts`);
          assert.doesNotMatch(sql, /\bshard\b/, `panel "${panel.title}" must not split by shard`);
        }
      }
    }
    assert.deepEqual([...read].sort(), ['event_counts_daily', 'event_counts_minute', 'events']);
  });
});

interface GrafanaReference {
  readonly type?: string;
  readonly uid?: string;
}

interface GrafanaDashboard {
  readonly uid?: string;
  readonly panels: ReadonlyArray<{
    readonly id: number;
    readonly title: string;
    readonly datasource?: GrafanaReference;
    readonly targets?: ReadonlyArray<{ readonly datasource?: GrafanaReference; readonly rawSql?: string; readonly rawQuery?: boolean }>;
  }>;
}
