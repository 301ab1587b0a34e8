/**
 * The SSRF guard: Floodgate POSTs to URLs that API callers choose, so by default it refuses
 * destinations inside the network it runs in (loopback, private, link-local, carrier-grade
 * NAT, unique-local, and every other range that is not public unicast, including the IPv6
 * forms that embed an IPv4 address). FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS=true lifts it
 * for tests and internal receivers.
 *
 * Checked twice: when a subscription is created or its URL changes (the literal address, or
 * every address its name resolves to, so the caller hears at once), and at every connection
 * (guardedLookup, given to undici as the socket's `lookup`), because a name's addresses can
 * change after the check (DNS rebinding). Address ranges are classified by ipaddr.js.
 */
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Error code of a connection refused by the guard (a Node-style code on the Error). */
export const destinationRefusedCode = 'EDESTINATIONREFUSED';

/** Why `address` (an IP literal) may not be delivered to, or null when it is public unicast. */
export function refusedAddressReason(address: string): string | null {
  if (!ipaddr.isValid(address)) return `"${address}" is not an IP address`;
  // process() turns an IPv4-mapped IPv6 address (::ffff:10.0.0.1) into the IPv4 it carries.
  const range = ipaddr.process(address).range();
  return range === 'unicast' ? null : `${address} is in a non-public range (${range})`;
}

export type DestinationCheck = { readonly ok: true; readonly url: URL } | { readonly ok: false; readonly message: string };

/** The URL's own shape: http(s), a host, no credentials; an IP literal host must be public unless allowed. */
export function checkDestinationUrl(text: string, allowPrivate: boolean): DestinationCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: 'url is not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, message: `url scheme must be http or https, not ${url.protocol.slice(0, -1)}` };
  if (url.username !== '' || url.password !== '') return { ok: false, message: 'url must not carry credentials (user:password@)' };
  if (url.hostname === '') return { ok: false, message: 'url has no host' };
  const host = literalHost(url.hostname);
  if (!allowPrivate && isIP(host) !== 0) {
    const reason = refusedAddressReason(host);
    if (reason !== null) return { ok: false, message: `url ${reason}; set FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS=true to allow it` };
  }
  return { ok: true, url };
}

/** Resolves the URL's host and refuses it if any address it has is not public (unless allowed). */
export async function checkDestinationAddresses(url: URL, allowPrivate: boolean): Promise<string | null> {
  if (allowPrivate) return null;
  const host = literalHost(url.hostname);
  if (isIP(host) !== 0) return refusedAddressReason(host);
  let addresses: dns.LookupAddress[];
  try {
    addresses = await dns.promises.lookup(host, { all: true, verbatim: true });
  } catch (error) {
    return `url host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'})`;
  }
  for (const { address } of addresses) {
    const reason = refusedAddressReason(address);
    if (reason !== null) return `url host ${host} resolves to ${reason}; set FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS=true to allow it`;
  }
  return null;
}

/**
 * A `lookup` for net.connect (undici's `connect.lookup`) that resolves as usual and fails
 * the connection with destinationRefusedCode when an address is not public, so the check
 * applies to the address actually connected to.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, '', 4);
      const list = addresses as unknown as dns.LookupAddress[];
      if (!allowPrivate) {
        for (const { address } of list) {
          const reason = refusedAddressReason(address);
          if (reason !== null) {
            return callback(Object.assign(new Error(`destination refused: ${hostname} → ${reason}`), { code: destinationRefusedCode }), '', 4);
          }
        }
      }
      if ((options as dns.LookupOptions).all === true) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 4);
      return callback(null, first.address, first.family);
    });
  };
}

/** URL.hostname keeps the brackets of an IPv6 literal. */
function literalHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}
