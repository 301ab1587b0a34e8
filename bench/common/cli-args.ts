/**
 * Command lines of the benchmark tools, read with node:util parseArgs in strict mode: an
 * unknown flag, a missing value or a value given to a switch is refused naming the flag.
 * A usage error prints its message and the tool's usage and exits 2, rather than a stack
 * trace and exit 1 as if the benchmark itself had failed.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function exitWithUsage(message: string, usage: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

export function parseToolArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    return exitWithUsage((error as Error).message, usage);
  }
}

/** A flag's value as a positive finite number; undefined when the flag was not given. */
export function positiveNumber(text: string | undefined, flag: string, usage: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) exitWithUsage(`${flag} must be a positive number, not ${JSON.stringify(text)}`, usage);
  return value;
}
