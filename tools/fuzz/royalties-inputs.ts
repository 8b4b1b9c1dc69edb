/**
 * Inputs a fuzzed royalties build may name: the test fixtures (so some builds succeed and the report
 * routes have results to serve), mangled copies of them, and files that are hostile to a streaming
 * parser. The same names are served by the local receiver (as URLs) and written under
 * ROYALTIES_INPUT_ROOT (as paths), with a symlink out of the root and a directory among them.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRandom } from '../chaos/random';

const FIXTURES = join(__dirname, '..', '..', 'libs', 'royalties', 'test', 'fixtures');
export const FIXTURE_NAMES = {
  usersCsv: 'users.csv',
  streamsCsv: 'streams.csv',
  tracks: 'tracks.json',
} as const;

/** Names the fuzzer puts in build requests; `fuzzedInputFile` knows each of them. */
export const INPUT_NAMES = [
  'users.csv',
  'streams.csv',
  'tracks.json',
  'mangled-1.csv',
  'mangled-2.csv',
  'mangled-3.json',
  'binary.csv',
  'long-line.csv',
  'many-streams.csv',
  'empty.csv',
  'bom.csv',
  'deep.json',
] as const;

/** Files under the input root that are not regular files inside it. */
export const HOSTILE_LOCAL_NAMES = ['escape-to-dev-zero.csv', 'a-directory.csv', 'escape-to-etc-passwd.csv'] as const;

function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

/** The bytes served and written for `name` (the same for one seed); undefined for a name the fuzzer never uses. */
export function fuzzedInputFile(name: string, seed: number): Buffer | undefined {
  const random = new SeededRandom((seed ^ hashOf(name)) >>> 0);
  if (name === 'users.csv' || name === 'streams.csv' || name === 'tracks.json') return fixture(name);
  if (name.startsWith('mangled-'))
    return mangle(fixture(name.endsWith('.json') ? 'tracks.json' : random.pick(['users.csv', 'streams.csv'])), random);
  switch (name) {
    case 'binary.csv':
      return Buffer.from(Array.from({ length: 4_096 }, () => random.int(0, 255)));
    case 'long-line.csv':
      return Buffer.concat([fixture('streams.csv'), Buffer.alloc(300_000, 'x'), Buffer.from('\n')]);
    case 'many-streams.csv': {
      const lines = ['date;user_id;region;track id;seconds'];
      for (let i = 0; i < 40_000; i += 1)
        lines.push(`0${random.int(1, 9)}/03/2019;u${random.int(1, 3)};NL;t${random.int(1, 4)};${random.int(-5, 500)}`);
      return Buffer.from(lines.join('\n'));
    }
    case 'empty.csv':
      return Buffer.alloc(0);
    case 'bom.csv':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), fixture('users.csv')]);
    case 'deep.json':
      return Buffer.from(`${'['.repeat(50_000)}${']'.repeat(50_000)}`);
    default:
      return undefined;
  }
}

/** A fixture with bytes flipped, separators and quotes inserted, lines cut and doubled. */
function mangle(file: Buffer, random: SeededRandom): Buffer {
  const bytes = [...file];
  const edits = random.int(1, 12);
  const inserts = [0x00, 0x22, 0x3b, 0x2c, 0x0a, 0x0d, 0xff, 0xc3, 0x5c, 0x7b, 0x5d];
  for (let i = 0; i < edits; i += 1) {
    const at = random.int(0, bytes.length);
    const edit = random.int(0, 3);
    if (edit === 0) bytes.splice(at, 1);
    else if (edit === 1) bytes.splice(at, 0, random.pick(inserts));
    else if (edit === 2) bytes.splice(at, 0, ...bytes.slice(at, at + random.int(1, 60)));
    else bytes[at] = random.int(0, 255);
  }
  return Buffer.from(bytes);
}

/** Writes every input under `root`, plus the hostile entries. */
export function writeInputRoot(root: string, seed: number): void {
  mkdirSync(root, { recursive: true });
  for (const name of INPUT_NAMES) writeFileSync(join(root, name), fuzzedInputFile(name, seed)!);
  symlinkSync('/dev/zero', join(root, 'escape-to-dev-zero.csv'));
  symlinkSync('/etc/passwd', join(root, 'escape-to-etc-passwd.csv'));
  mkdirSync(join(root, 'a-directory.csv'));
}

function hashOf(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}
