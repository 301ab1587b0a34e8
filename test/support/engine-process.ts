/**
 * Runs `floodgate serve` as a child process, the way operators do, for tests that need
 * real signals (SIGTERM drain, SIGKILL crashes) or several engine processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { refuseInUnitTier } from './test-tiers';

export const cliPath = path.join(__dirname, '..', '..', 'src', 'cli.js');

export interface EngineProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  output(): string;
}

/** The test runner's own FLOODGATE_TEST_* variables are not engine settings: strip them. */
export function engineEnv(extra: Record<string, string>, without: readonly string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FLOODGATE_LOG_LEVEL: 'info', ...extra };
  for (const name of without) delete env[name];
  for (const name of Object.keys(env)) if (name.startsWith('FLOODGATE_TEST')) delete env[name];
  return env;
}

/** Starts the engine and resolves once its "floodgate ready" log line names the port (needs log level info or lower). */
export function spawnEngine(env: NodeJS.ProcessEnv, readyTimeoutMs = 60_000): Promise<EngineProcess> {
  // Without DATABASE_URL the engine would quietly start an embedded PostgreSQL.
  refuseInUnitTier('a running engine and its PostgreSQL');
  const child = spawn(process.execPath, [cliPath, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`engine did not become ready:\n${output}`)), readyTimeoutMs);
    const onOutput = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /"port":(\d+)[^\n]*"msg":"floodgate ready"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), exited, output: () => output });
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`engine exited with ${code} before ready:\n${output}`));
    });
  });
}
