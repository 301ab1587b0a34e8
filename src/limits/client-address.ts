/**
 * The client address that open ingest is limited by: the socket's peer, unless the peer
 * is a trusted proxy (FLOODGATE_TRUSTED_PROXIES), in which case X-Forwarded-For is read
 * from the right: each trusted proxy appends the address it received from, so the
 * right-most entry that is not itself a trusted proxy is the first hop nobody we trust can
 * vouch past. Entries further left are the client's own claims and are never believed.
 * Addresses and CIDR blocks are matched with node:net's BlockList (IPv4, IPv6, and
 * IPv4-mapped IPv6 as a dual-stack socket reports IPv4 peers).
 */
import { BlockList, isIP } from 'node:net';

/** A bound on the list: it is configuration, not data. */
export const trustedProxyEntriesMax = 256;
/** X-Forwarded-For entries read from the right; a longer chain is not a real proxy path. */
export const forwardedHopsMax = 32;

export interface TrustedProxies {
  readonly count: number;
  readonly blockList: BlockList;
}

export type ParsedProxies = { readonly ok: true; readonly proxies: TrustedProxies } | { readonly ok: false; readonly message: string };

/** Parses "10.0.0.0/8, 192.168.1.7, fd00::/8"; empty text trusts nobody. */
export function parseTrustedProxies(text: string): ParsedProxies {
  const blockList = new BlockList();
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.length > trustedProxyEntriesMax) return { ok: false, message: `more than ${trustedProxyEntriesMax} entries` };
  for (const entry of entries) {
    const [address = '', prefixText, extra] = entry.split('/');
    const family = isIP(address);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (family === 0 || extra !== undefined) return { ok: false, message: `"${entry.slice(0, 64)}" is not an IP address or CIDR block` };
    if (prefixText === undefined) {
      blockList.addAddress(address, type);
      continue;
    }
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
    if (prefix < 0 || prefix > (family === 4 ? 32 : 128)) return { ok: false, message: `"${entry.slice(0, 64)}" has a prefix length outside 0..${family === 4 ? 32 : 128}` };
    blockList.addSubnet(address, prefix, type);
  }
  return { ok: true, proxies: { count: entries.length, blockList } };
}

export function isTrustedProxy(proxies: TrustedProxies, address: string): boolean {
  if (proxies.count === 0) return false;
  const family = isIP(address);
  return family !== 0 && proxies.blockList.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The client address from the peer and the X-Forwarded-For values (every header line, in
 * order). A malformed entry ends the walk at the last good hop: a trusted proxy wrote it,
 * so the fault is that proxy's, and its own address is the best we know.
 */
export function clientAddressOf(peer: string, forwardedFor: readonly string[], proxies: TrustedProxies): string {
  if (!isTrustedProxy(proxies, peer)) return peer;
  const hops = forwardedFor.join(',').split(',');
  let client = peer;
  for (let index = hops.length - 1, read = 0; index >= 0 && read < forwardedHopsMax; index--, read++) {
    const hop = (hops[index] as string).trim();
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!isTrustedProxy(proxies, hop)) return hop;
  }
  return client;
}
