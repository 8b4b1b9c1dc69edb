import { lookup as dnsLookup, LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Whether a webhook may reach this address. Only globally routable unicast is allowed: loopback,
 * private, link-local, unique-local, carrier-grade NAT, multicast, reserved and unspecified are refused
 * (IPv4-mapped IPv6 is judged as the IPv4 address it carries).
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === 'unicast';
}

export class ForbiddenTargetError extends Error {
  override readonly name = 'ForbiddenTargetError';
}

/** A refusal that needs no DNS: an IP literal outside public unicast, or a `localhost` name. */
export function forbiddenTargetReason(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return isPublicAddress(host) ? undefined : `target address ${host} is not public`;
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return `target host ${host} is loopback`;
  return undefined;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `dns.lookup` replacement for the delivery connection: it refuses names that resolve to a
 * non-public address at connect time, so a DNS answer that changes after validation (rebinding) or a
 * host that resolves privately cannot reach internal services.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((entry) => !isPublicAddress(entry.address));
    if (refused) {
      return callback(
        new ForbiddenTargetError(`target host ${hostname} resolves to non-public address ${refused.address}`),
        [],
      );
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}
