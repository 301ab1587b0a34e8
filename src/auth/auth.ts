/**
 * Starting authentication for one engine: the key store, the bootstrap admin key
 * (FLOODGATE_ADMIN_KEY), the key cache, and the guard the server wraps its routes with.
 * The composition root (src/engine.ts) calls this once the schema is migrated.
 */
import type { Config } from '../config/config';
import type { Logger } from '../log';
import { auditLog } from './audit';
import { RouteGuard } from './guard';
import { KeyCache } from './key-cache';
import { hashKey } from './key-format';
import { keyRoutes, type KeyRoutes } from './key-routes';
import { KeyStore } from './key-store';

export interface Auth {
  readonly guard: RouteGuard;
  readonly keyRoutes: KeyRoutes;
  stop(): Promise<void>;
}

export const bootstrapKeyName = 'bootstrap-admin';

export async function startAuth(connectionString: string, config: Config, log: Logger): Promise<Auth> {
  const store = KeyStore.open(connectionString);
  try {
    if (config.adminKey !== null) {
      // Idempotent across restarts and nodes: the hash is unique, and a revoked bootstrap key stays revoked.
      const created = await store.ensure(bootstrapKeyName, ['admin'], hashKey(config.adminKey));
      if (created !== null) auditLog(log, 'key.create', { keyId: null, keyName: 'FLOODGATE_ADMIN_KEY', address: 'start-up' }, { target_key_id: created.id, target_key_name: created.name, scopes: created.scopes });
    }
    const cache = new KeyCache(store, log);
    await cache.start();
    if (config.authMode === 'auto' && !cache.keysExist) {
      log.warn({ authMode: 'auto' }, 'no API key exists: ingest is open to anyone who can reach the port, and read and admin routes answer loopback clients only; create a key (floodgate keys create) or set FLOODGATE_AUTH=required (docs/securing.md)');
    }
    const guard = new RouteGuard({
      mode: config.authMode,
      metricsToken: config.metricsToken,
      log,
      state: {
        mode: config.authMode,
        get keysExist() {
          return cache.keysExist;
        },
        lookup: (key) => cache.lookup(key),
      },
    });
    const routes = keyRoutes({ store, cache, log, bodyTimeoutMs: config.bodyTimeoutMs });
    return {
      guard,
      keyRoutes: routes,
      stop: async () => {
        await cache.stop();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
