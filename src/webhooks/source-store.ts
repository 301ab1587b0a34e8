/**
 * Webhook sources in PostgreSQL (table webhook_sources, migration v3): name, scheme,
 * secrets and, for hmac-sha256, the signature header. Secrets are stored as given because
 * verifying an HMAC needs the key itself; they are never logged nor printed by the CLI.
 */
import type pg from 'pg';
import { openStorePool } from '../sink/database';
import { isSchemeName, schemes, type SchemeName } from './schemes';

export interface WebhookSource {
  readonly name: string;
  readonly scheme: SchemeName;
  /** Any one verifying is enough: several at once let a sender rotate without downtime. */
  readonly secrets: readonly string[];
  /** Lower-case header carrying the signature; the scheme's default when none was given. */
  readonly signatureHeader: string;
}

/** Names go into a URL path and the events' `source` column (64 characters at most). */
export const sourceNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Secrets per source: rotation needs two; a few more cover overlapping rotations. */
export const sourceSecretsMax = 8;
const secretCharsMax = 1024;
const headerNamePattern = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

/** Every problem with a source as given (empty when it can be stored). */
export function sourceProblems(name: string, scheme: string, secrets: readonly string[], header: string | null): string[] {
  const problems: string[] = [];
  if (!sourceNamePattern.test(name)) problems.push('the name must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (!isSchemeName(scheme)) problems.push(`the scheme must be one of ${Object.keys(schemes).join(', ')}`);
  if (secrets.length === 0 || secrets.length > sourceSecretsMax) problems.push(`give 1 to ${sourceSecretsMax} secrets`);
  for (const [index, secret] of secrets.entries()) {
    // The secret itself is never echoed: only its position.
    const problem = secret.length > secretCharsMax ? `it is longer than ${secretCharsMax} characters` : isSchemeName(scheme) ? schemes[scheme].secretProblem(secret) : null;
    if (problem !== null) problems.push(`secret ${index + 1}: ${problem}`);
  }
  if (header !== null && !headerNamePattern.test(header)) problems.push('the header must be an HTTP header name');
  if (header !== null && scheme !== 'hmac-sha256') problems.push('--header applies to the hmac-sha256 scheme only');
  return problems;
}

interface SourceRow {
  name: string;
  scheme: string;
  secrets: string[];
  signature_header: string | null;
}

export class WebhookSourceStore {
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  static open(connectionString: string): WebhookSourceStore {
    return new WebhookSourceStore(openStorePool({ connectionString, max: 1, application_name: 'floodgate-webhook-sources' }));
  }

  async list(): Promise<WebhookSource[]> {
    const result = await this.#pool.query<SourceRow>('SELECT name, scheme, secrets, signature_header FROM webhook_sources ORDER BY name');
    // A row with a scheme this build does not know (a newer node wrote it) is skipped.
    return result.rows.flatMap((row) => (isSchemeName(row.scheme) ? [sourceOf(row, row.scheme)] : []));
  }

  /** Adds the source, or replaces one of the same name (how secrets are rotated); true when added. */
  async put(source: { name: string; scheme: SchemeName; secrets: readonly string[]; signatureHeader: string | null }): Promise<boolean> {
    const result = await this.#pool.query<{ added: boolean }>(
      `INSERT INTO webhook_sources (name, scheme, secrets, signature_header) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET scheme = EXCLUDED.scheme, secrets = EXCLUDED.secrets,
         signature_header = EXCLUDED.signature_header, updated_at = now()
       RETURNING (xmax = 0) AS added`,
      [source.name, source.scheme, source.secrets, source.signatureHeader?.toLowerCase() ?? null],
    );
    return result.rows[0]?.added === true;
  }

  /** True when a source of that name existed. */
  async remove(name: string): Promise<boolean> {
    const result = await this.#pool.query('DELETE FROM webhook_sources WHERE name = $1', [name]);
    return (result.rowCount ?? 0) > 0;
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}

function sourceOf(row: SourceRow, scheme: SchemeName): WebhookSource {
  return { name: row.name, scheme, secrets: row.secrets, signatureHeader: row.signature_header ?? schemes[scheme].defaultSignatureHeader };
}
