/**
 * Which address open ingest is limited by: the peer, or the right-most X-Forwarded-For
 * entry not itself a trusted proxy when the peer is trusted; and the proxy list's parser.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientAddressOf, isTrustedProxy, parseTrustedProxies, type TrustedProxies } from '../../src/limits/client-address';

function proxies(text: string): TrustedProxies {
  const parsed = parseTrustedProxies(text);
  assert.ok(parsed.ok, text);
  return parsed.proxies;
}

describe('trusted proxy list', () => {
  test('addresses and CIDR blocks, IPv4 and IPv6, spaces allowed', () => {
    const list = proxies(' 10.0.0.0/8, 192.168.1.7 ,fd00::/8,::1');
    assert.equal(list.count, 4);
    for (const address of ['10.1.2.3', '192.168.1.7', 'fd00::1', '::1', '::ffff:10.9.9.9']) assert.ok(isTrustedProxy(list, address), address);
    for (const address of ['11.0.0.1', '192.168.1.8', 'fe80::1', 'not-an-ip', '']) assert.ok(!isTrustedProxy(list, address), address);
  });

  test('empty trusts nobody', () => {
    assert.equal(proxies('').count, 0);
    assert.ok(!isTrustedProxy(proxies(''), '127.0.0.1'));
  });

  test('refuses what is not an address or block', () => {
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', 'localhost', '10.0.0', '10.0.0.0/', '1.2.3.4/x']) {
      const parsed = parseTrustedProxies(bad);
      assert.equal(parsed.ok, false, bad);
    }
    assert.equal(parseTrustedProxies(Array.from({ length: 257 }, () => '10.0.0.1').join(',')).ok, false);
  });
});

describe('client address', () => {
  const trusted = proxies('10.0.0.0/8');

  test('an untrusted peer is the client, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddressOf('203.0.113.5', ['198.51.100.1'], trusted), '203.0.113.5');
    assert.equal(clientAddressOf('10.0.0.1', ['198.51.100.1'], proxies('')), '10.0.0.1');
  });

  test('a trusted peer: the right-most entry not itself trusted', () => {
    assert.equal(clientAddressOf('10.0.0.1', ['198.51.100.1, 203.0.113.9, 10.0.0.2'], trusted), '203.0.113.9');
    assert.equal(clientAddressOf('10.0.0.1', ['6.6.6.6', '203.0.113.9'], trusted), '203.0.113.9', 'several header lines, in order');
  });

  test('a spoofed left-most entry is never believed', () => {
    assert.equal(clientAddressOf('10.0.0.1', ['1.1.1.1, 203.0.113.9'], trusted), '203.0.113.9');
  });

  test('no header: the peer', () => {
    assert.equal(clientAddressOf('10.0.0.1', [], trusted), '10.0.0.1');
  });

  test('every hop trusted: the left-most', () => {
    assert.equal(clientAddressOf('10.0.0.1', ['10.0.0.3, 10.0.0.2'], trusted), '10.0.0.3');
  });

  test('a malformed entry stops at the last good hop', () => {
    assert.equal(clientAddressOf('10.0.0.1', ['203.0.113.9, garbage, 10.0.0.2'], trusted), '10.0.0.2');
    assert.equal(clientAddressOf('10.0.0.1', ['unknown'], trusted), '10.0.0.1');
  });

  test('IPv6 and mapped IPv4 peers', () => {
    const list = proxies('::1, 10.0.0.0/8');
    assert.equal(clientAddressOf('::1', ['2001:db8::7'], list), '2001:db8::7');
    assert.equal(clientAddressOf('::ffff:10.0.0.1', ['203.0.113.9'], list), '203.0.113.9');
  });
});
