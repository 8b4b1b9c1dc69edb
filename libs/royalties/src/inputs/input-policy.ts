import { lookup as dnsLookup, LookupOptions } from 'node:dns';
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { forbiddenTargetReason, publicOnlyLookup } from '@bufferq/timers';

/**
 * Where a build's inputs may come from, and how long one line of them may be. Inputs are named by
 * clients (`POST /royalties/builds`), so every reader of an input (the worker's build, the api's
 * `/consolidated` pages) opens it through this policy.
 */
export interface InputPolicy {
  /** Local paths must resolve, symlinks followed, inside this directory; null: local paths are refused. */
  root: string | null;
  /**
   * Hosts (names or IP addresses, as written in URLs) that may be on loopback, private, link-local or
   * other non-public addresses; `*` allows any. Every other URL must reach a public address.
   */
  privateHosts: readonly string[];
  /** Longest CSV line, and longest JSON key or value, in bytes. */
  maxLineBytes: number;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** No local paths, public addresses only: the policy of a reader given none. */
export const STRICT_INPUT_POLICY: InputPolicy = Object.freeze({
  root: null,
  privateHosts: Object.freeze([]),
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
});

export function isUrlLocation(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** A URL's host as allow-list entries are written: lower case, no IPv6 brackets, no trailing dot. */
export function normalizedHost(host: string): string {
  return host
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
}

function mayBePrivate(host: string, policy: InputPolicy): boolean {
  return policy.privateHosts.includes('*') || policy.privateHosts.includes(normalizedHost(host));
}

/**
 * Why a URL may not be fetched, judged without DNS: not http(s), or a literal non-public address (or a
 * `localhost` name) of a host that is not allow-listed. Names are judged when connecting (`inputLookup`).
 */
export function urlRefusal(location: string, policy: InputPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'not an http(s) URL';
  return mayBePrivate(url.hostname, policy) ? undefined : forbiddenTargetReason(url);
}

type LookupCallback = Parameters<typeof publicOnlyLookup>[2];

/**
 * The `dns.lookup` of input connections: names of allow-listed hosts resolve as usual, every other name
 * must resolve to public addresses only. Checked when the connection is made, so a DNS answer that
 * changes after a check (rebinding), or a redirect to a name that resolves privately, is refused too.
 */
export function inputLookup(policy: InputPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    if (mayBePrivate(hostname, policy)) dnsLookup(hostname, options, callback as never);
    else publicOnlyLookup(hostname, options, callback);
  };
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Why a local path may not be read, judged without the file system: no root, or outside it as written. */
function localPathRefusal(location: string, policy: InputPolicy): string | undefined {
  if (!policy.root) return 'local paths are refused unless ROYALTIES_INPUT_ROOT is set';
  return isInside(resolve(policy.root), resolve(policy.root, location))
    ? undefined
    : `${location} is outside ROYALTIES_INPUT_ROOT`;
}

/** Why an input may not be read, judged without I/O (the api's answer to `POST /royalties/builds`). */
export function locationRefusal(location: string, policy: InputPolicy): string | undefined {
  return isUrlLocation(location) ? urlRefusal(location, policy) : localPathRefusal(location, policy);
}

/**
 * The file a local input names, symlinks resolved, or why it may not be read: outside the root as
 * written (`..`) or once its symlinks are followed. Opening the returned path, not the given one, means a
 * symlink checked here is not followed again later. A file that does not exist rejects as the file
 * system says (ENOENT).
 */
export async function realLocalPath(
  location: string,
  policy: InputPolicy,
): Promise<{ path: string } | { refused: string }> {
  const refusal = localPathRefusal(location, policy);
  if (refusal) return { refused: refusal };
  const root = await realpath(policy.root!);
  const path = await realpath(resolve(root, location));
  return isInside(root, path) ? { path } : { refused: `${location} is outside ROYALTIES_INPUT_ROOT` };
}

/** The location a build stores: URLs as given, local paths absolute against the root, so the worker's cwd does not matter. */
export function resolveLocation(location: string, root: string | null): string {
  return isUrlLocation(location) ? location : resolve(root ?? process.cwd(), location);
}
