/**
 * One setting's text to its value, by the setting's kind: the strict readers behind
 * loadConfig (./load-config.ts). A reader answers `{ok: false}` and the loader writes the
 * message, which names the setting, its unit and its range (./settings.ts expectationOf).
 */
import * as path from 'node:path';
import { parseTrustedProxies } from '../limits/client-address';
import type { Config } from './config';
import {
  corsOriginsMax,
  dayMs,
  GiB,
  hourMs,
  KiB,
  MiB,
  minuteMs,
  secondMs,
  type NumberSetting,
  type SecretSetting,
  type Setting,
  type StringSetting,
  type UrlSetting,
} from './settings';

type ConfigValue = Config[keyof Config];
export type Parsed = { readonly ok: true; readonly value: ConfigValue } | { readonly ok: false };

export function parseSetting(setting: Setting, text: string): Parsed {
  switch (setting.kind) {
    case 'integer':
      return inRange(setting, parseDecimal(text));
    case 'bytes':
      return inRange(setting, parseWithSuffix(text, byteSuffixes));
    case 'duration':
      return inRange(setting, parseWithSuffix(text, durationSuffixes));
    case 'enum':
      return setting.values.includes(text) ? { ok: true, value: text as ConfigValue } : { ok: false };
    case 'boolean':
      return parseBoolean(text);
    case 'url':
      return parseUrl(setting, text);
    case 'string':
      return parseString(setting, text);
    case 'secret':
      return parseSecret(setting, text);
  }
}

/**
 * Decimal integers only: `1e3`, `0x10`, `+5`, `1.0`, `-0` and leading zeros are refused
 * because `Number()` would accept them and a typo could then pass as a valid number.
 * Negative values parse (and then fail the range check with a clearer message).
 */
function parseDecimal(text: string): number | null {
  if (!/^(?:0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** Binary units only: `MB` is refused rather than guessed as 10^6 or 2^20. */
const byteSuffixes: ReadonlyMap<string, number> = new Map([['', 1], ['B', 1], ['KiB', KiB], ['MiB', MiB], ['GiB', GiB]]);
const durationSuffixes: ReadonlyMap<string, number> = new Map([
  ['', 1], ['ms', 1], ['s', secondMs], ['m', minuteMs], ['h', hourMs], ['d', dayMs],
]);

function parseWithSuffix(text: string, suffixes: ReadonlyMap<string, number>): number | null {
  const match = /^(0|[1-9][0-9]*) ?([A-Za-z]*)$/.exec(text);
  if (match === null) return null;
  const multiplier = suffixes.get(match[2] ?? '');
  if (multiplier === undefined) return null;
  const value = Number(match[1]) * multiplier;
  return Number.isSafeInteger(value) ? value : null;
}

function inRange(setting: Pick<NumberSetting, 'min' | 'max' | 'multipleOf'>, value: number | null): Parsed {
  if (value === null || value < setting.min || value > setting.max) return { ok: false };
  if (setting.multipleOf !== undefined && value % setting.multipleOf !== 0) return { ok: false };
  return { ok: true, value };
}

function parseBoolean(text: string): Parsed {
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === '1' || lower === 'yes') return { ok: true, value: true };
  if (lower === 'false' || lower === '0' || lower === 'no') return { ok: true, value: false };
  return { ok: false };
}

/** The text is kept as given (not `URL.href`): drivers read query options the URL class may reorder. */
function parseUrl(setting: UrlSetting, text: string): Parsed {
  if (!URL.canParse(text)) return { ok: false };
  return setting.protocols.includes(new URL(text).protocol) ? { ok: true, value: text } : { ok: false };
}

function parseString(setting: StringSetting, text: string): Parsed {
  if (setting.format === 'origins') return parseOrigins(text);
  // Blank is refused like any other blank string; leaving the setting unset trusts nobody.
  if (setting.format === 'address-list') return text !== '' && parseTrustedProxies(text).ok ? { ok: true, value: text } : { ok: false };
  // An event source's name: what the engine's event validation accepts (1-64 characters, no NUL).
  if (setting.format === 'source') return text.length >= 1 && text.length <= 64 && !text.includes('\0') ? { ok: true, value: text } : { ok: false };
  if (setting.format === 'host') {
    // Letters, digits, dots, hyphens, colons (IPv6) and underscores; no brackets or ports.
    return /^[A-Za-z0-9._:-]{1,253}$/.test(text) ? { ok: true, value: text } : { ok: false };
  }
  // A NUL byte cannot be part of a path the operating system accepts.
  if (text === '' || text.includes('\0')) return { ok: false };
  return { ok: true, value: path.resolve(process.cwd(), text) };
}

/** An origin as browsers send it: scheme, host and an optional port; no path, no trailing slash. */
const originPattern = /^https?:\/\/(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/;

function parseOrigins(text: string): Parsed {
  if (text === '*') return { ok: true, value: text };
  const origins = text.split(',').map((origin) => origin.trim().toLowerCase());
  if (origins.length > corsOriginsMax || !origins.every((origin) => originPattern.test(origin))) return { ok: false };
  return { ok: true, value: origins.join(',') };
}

function parseSecret(setting: SecretSetting, text: string): Parsed {
  if (text.length < setting.charsMin || text.length > setting.charsMax) return { ok: false };
  const pattern = setting.format === 'api-key' ? /^fgk_[A-Za-z0-9_-]+$/ : /^[\x21-\x7e]+$/;
  return pattern.test(text) ? { ok: true, value: text } : { ok: false };
}
