import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface SyntheticInputSizes {
  users: number;
  streams: number;
  tracks?: number;
  labels?: number;
  /** Write the track metadata with its header lost: keys are the first track's values. */
  mangledTracks?: boolean;
  /** Share of stream lines naming a user missing from the users file, and a track missing from the metadata. */
  unknownUserShare?: number;
  unknownTrackShare?: number;
  seed?: number;
}

export interface SyntheticInputs {
  usersCsv: string;
  streamsCsv: string;
  tracks: string;
}

const PRODUCTS = ['premium', 'platinum'];
const FEES = ['9,99', '7,99', '14,99', '4,99', '12'];
const REGIONS = ['NL', 'nl', 'DE', 'de', 'Fr', 'US', 'us'];

/**
 * Writes users, streams and track metadata in exactly the production formats, quirks included: `;`
 * separators, decimal-comma fees, day/month/year dates, mixed-case regions, a mix of CRLF and LF line
 * endings and no newline after the last line. Deterministic for a given seed.
 */
export async function writeSyntheticInputs(dir: string, sizes: SyntheticInputSizes): Promise<SyntheticInputs> {
  await mkdir(dir, { recursive: true });
  const random = mulberry32(sizes.seed ?? 42);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const trackCount = sizes.tracks ?? Math.max(1, Math.min(100_000, Math.ceil(sizes.streams / 100)));
  const labelCount = sizes.labels ?? Math.max(1, Math.min(500, Math.ceil(trackCount / 100)));
  const unknownUserShare = sizes.unknownUserShare ?? 0.001;
  const unknownTrackShare = sizes.unknownTrackShare ?? 0.001;
  const eol = (last: boolean) => (last ? '' : random() < 0.3 ? '\r\n' : '\n');
  const files: SyntheticInputs = {
    usersCsv: join(dir, 'users.csv'),
    streamsCsv: join(dir, 'streams.csv'),
    tracks: join(dir, 'tracks.json'),
  };

  await writeLines(
    files.usersCsv,
    'user_id;product_type;fee;origin\r\n',
    sizes.users,
    (i) => `u${i};${pick(PRODUCTS)};${pick(FEES)};${random() < 0.6 ? 'app_store' : 'web'}${eol(i === sizes.users - 1)}`,
  );
  await writeLines(files.streamsCsv, 'date;user_id;region;track id;seconds\n', sizes.streams, (i) => {
    const day = 1 + Math.floor(random() * 28);
    const month = 1 + Math.floor(random() * 12);
    const user =
      random() < unknownUserShare ? `ghost${Math.floor(random() * 1000)}` : `u${Math.floor(random() * sizes.users)}`;
    const track =
      random() < unknownTrackShare ? `x${Math.floor(random() * 1000)}` : `t${Math.floor(random() * trackCount)}`;
    const date = `${String(day).padStart(2, '0')}/${String(month).padStart(2, '0')}/2019`;
    return `${date};${user};${pick(REGIONS)};${track};${Math.floor(random() * 600)}${eol(i === sizes.streams - 1)}`;
  });
  const trackValues = (i: number) => [`t${i}`, `Song ${i}`, `label ${1 + (i % labelCount)}`];
  const keys = sizes.mangledTracks ? trackValues(0) : ['track_id', 'track_name', 'label'];
  const first = sizes.mangledTracks ? 1 : 0;
  await writeLines(files.tracks, '[', trackCount - first, (i) => {
    const values = trackValues(i + first);
    const object = `{${keys.map((key, k) => `${JSON.stringify(key)}:${JSON.stringify(values[k])}`).join(',')}}`;
    return `${i ? ',' : ''}\n${object}${i === trackCount - first - 1 ? '\n' : ''}`;
  });
  await appendText(files.tracks, ']\n');
  return files;
}

async function writeLines(path: string, head: string, count: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(path);
  let batch = head;
  for (let i = 0; i < count; i++) {
    batch += line(i);
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await once(out, 'drain');
      batch = '';
    }
  }
  out.end(batch);
  await once(out, 'finish');
}

async function appendText(path: string, text: string): Promise<void> {
  const out = createWriteStream(path, { flags: 'a' });
  out.end(text);
  await once(out, 'finish');
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
