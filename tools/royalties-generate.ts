// Usage: npm run royalties:generate -- --users 1000000 --streams 10000000 [--tracks N] [--labels N]
//        [--mangled] [--seed 42] [--out ./royalties-data]
// Writes users.csv, streams.csv and tracks.json in the production formats, quirks included.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSyntheticInputs } from '@bufferq/testing';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      streams: { type: 'string', default: '100000' },
      tracks: { type: 'string' },
      labels: { type: 'string' },
      mangled: { type: 'boolean', default: false },
      seed: { type: 'string', default: '42' },
      out: { type: 'string', default: 'royalties-data' },
    },
  });
  const count = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const value = Number(text.replace(/_/g, ''));
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
    return value;
  };
  const started = Date.now();
  const files = await writeSyntheticInputs(resolve(values.out!), {
    users: count('users', values.users)!,
    streams: count('streams', values.streams)!,
    tracks: count('tracks', values.tracks),
    labels: count('labels', values.labels),
    mangledTracks: values.mangled,
    seed: count('seed', values.seed),
  });
  process.stdout.write(
    `${JSON.stringify(files, null, 2)}\nwritten in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
