/**
 * Whether a peer address is on the loopback interface: 127.0.0.0/8, ::1, and those as
 * IPv4-mapped IPv6 (::ffff:127.x.x.x), which is how a dual-stack socket reports an IPv4
 * peer. uWS gives the address as text; node:net's BlockList parses it (full or compressed
 * IPv6, mapped IPv4), so no address parser is written here.
 */
import { BlockList, isIP } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return loopback.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
