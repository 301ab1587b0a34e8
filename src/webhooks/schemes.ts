/**
 * The one table of verification schemes, by the name sources are configured with.
 * Adding a provider is one module and one row here.
 */
import { githubScheme } from './scheme-github';
import { hmacScheme } from './scheme-hmac';
import { standardScheme } from './scheme-standard';
import { stripeScheme } from './scheme-stripe';
import type { Scheme } from './signature';

export const schemes = {
  standard: standardScheme,
  stripe: stripeScheme,
  github: githubScheme,
  'hmac-sha256': hmacScheme,
} as const satisfies Record<string, Scheme>;

export type SchemeName = keyof typeof schemes;
export const schemeNames = Object.keys(schemes) as readonly SchemeName[];

export function isSchemeName(name: string): name is SchemeName {
  return Object.hasOwn(schemes, name);
}
