import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { consolidateRoyalties } from '../src/consolidation/consolidate-royalties';
import { readCsvLines } from '../src/inputs/csv-lines';
import { BuildInputError, InputRefusedError } from '../src/inputs/input-errors';
import type { InputPolicy } from '../src/inputs/input-policy';
import { openInput } from '../src/inputs/input-source';
import { readTrackMetadata } from '../src/inputs/track-metadata';

const fixtures = join(__dirname, 'fixtures');
const header = 'date;user_id;region;track id;seconds';

/** `count` bytes of `byte` in 64 KiB chunks, counting what the reader pulled. */
function endlessLine(count: number, pulled: { bytes: number }, byte = 'x'): Readable {
  const block = Buffer.alloc(64 * 1024, byte);
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < count; sent += block.length) {
        pulled.bytes += block.length;
        yield block;
      }
    })(),
  );
}

async function drain(input: Readable, maxLineBytes: number): Promise<string[][]> {
  const rows: string[][] = [];
  for await (const batch of readCsvLines(input, maxLineBytes)) rows.push(...batch.rows);
  return rows;
}

describe('royalties input guard', () => {
  let dir: string;
  let outside: string;
  let policy: InputPolicy;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'royalties-guard-'));
    outside = await mkdtemp(join(tmpdir(), 'royalties-outside-'));
    policy = { root: dir, privateHosts: ['127.0.0.1'], maxLineBytes: 64 * 1024 };
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });
  const file = async (name: string, text: string | Buffer) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const serve = async (handle: (request: IncomingMessage, response: ServerResponse) => void) => {
    const requests: string[] = [];
    const server = createServer((request, response) => {
      requests.push(request.url ?? '');
      handle(request, response);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return { base: `http://127.0.0.1:${port}`, port, requests };
  };

  describe('line length', () => {
    it('fails on a line longer than the cap after reading at most the cap and one chunk, not the whole line', async () => {
      const pulled = { bytes: 0 };
      await expect(drain(endlessLine(16 * 1024 * 1024, pulled), 64 * 1024)).rejects.toThrow(
        new BuildInputError('line 1 is longer than 65536 bytes (ROYALTIES_MAX_LINE_BYTES)'),
      );
      expect(pulled.bytes).toBeLessThanOrEqual(2 * 64 * 1024);
    });

    it('counts a line whole inside one chunk, across chunks, and the last line without a newline; a line of exactly the cap is fine', async () => {
      const cap = 100;
      const at = (cap: number, text: string) => drain(Readable.from([Buffer.from(text)]), cap);
      const line = (bytes: number) => 'y'.repeat(bytes);
      // A CRLF line's CR is part of the line.
      await expect(at(cap, `a\n${line(100)}\nb\n${line(99)}\r`)).resolves.toHaveLength(4);
      await expect(at(cap, `a\n${line(100)}\r\n`)).rejects.toThrow('line 2 is longer than 100 bytes');
      await expect(at(cap, `a\nb\n${line(101)}\nc\n`)).rejects.toThrow('line 3 is longer than 100 bytes');
      await expect(at(cap, `a\n${line(101)}`)).rejects.toThrow('line 2 is longer than 100 bytes');
      // Multi-byte characters count in bytes: 51 x "é" is 102 bytes.
      await expect(at(cap, `a\n${'é'.repeat(51)}\n`)).rejects.toThrow('line 2 is longer than 100 bytes');
      const split = Readable.from([Buffer.from(`a\n${line(60)}`), Buffer.from(`${line(41)}\nb\n`)]);
      await expect(drain(split, cap)).rejects.toThrow('line 2 is longer than 100 bytes');
      const fits = Readable.from([Buffer.from(`a\n${line(60)}`), Buffer.from(`${line(40)}\nb\n`)]);
      await expect(drain(fits, cap)).resolves.toHaveLength(3);
    });

    it('fails the build naming the input, in one pass and in the byte ranges of worker threads', async () => {
      const lines = [header];
      for (let i = 0; i < 3_000; i++) lines.push(`01/03/2019;u${i % 7};NL;t${1 + (i % 3)};${i % 600}`);
      lines[2_500] = `01/03/2019;u1;NL;t1;${'9'.repeat(300)}`;
      const inputs = {
        usersCsv: join(fixtures, 'users.csv'),
        streamsCsv: await file('long-line.csv', lines.join('\n')),
        tracks: join(fixtures, 'tracks.json'),
      };
      const fixturesPolicy = { ...policy, root: '/', maxLineBytes: 200 };
      const onePass = consolidateRoyalties(inputs, {
        maxBadLineShare: 1,
        inputPolicy: fixturesPolicy,
      });
      await expect(onePass).rejects.toThrow(BuildInputError);
      await expect(onePass).rejects.toThrow(
        'streams CSV: line 2501 is longer than 200 bytes (ROYALTIES_MAX_LINE_BYTES)',
      );
      const threaded = consolidateRoyalties(inputs, {
        maxBadLineShare: 1,
        inputPolicy: fixturesPolicy,
        streamThreads: 3,
        minBytesPerThread: 1_000,
      });
      await expect(threaded).rejects.toThrow(BuildInputError);
      await expect(threaded).rejects.toThrow(
        /^streams CSV: the line at byte \d+ is longer than 200 bytes \(ROYALTIES_MAX_LINE_BYTES\)$/,
      );
    });

    it('caps a key or value of the track metadata the same way', async () => {
      const tracks = await file(
        'long-value.json',
        `[{"track_id":"t1","track_name":"${'n'.repeat(5_000)}","label":"a"}]`,
      );
      await expect(readTrackMetadata(tracks, { ...policy, maxLineBytes: 4_096 })).rejects.toThrow(
        new BuildInputError('track metadata: a key or value is longer than 4096 bytes (ROYALTIES_MAX_LINE_BYTES)'),
      );
      await expect(readTrackMetadata(tracks, policy)).resolves.toMatchObject({
        tracks: [{ trackId: 't1', label: 'a' }],
      });
    });
  });

  describe('local paths', () => {
    it('refuses every local path when no input root is configured', async () => {
      const path = await file('users.csv', 'user_id;product_type;fee;origin\n');
      const opening = openInput(path, { ...policy, root: null });
      await expect(opening).rejects.toThrow(InputRefusedError);
      await expect(opening).rejects.toThrow('input: local paths are refused unless ROYALTIES_INPUT_ROOT is set');
    });

    it('refuses paths that leave the root by .. or by a symlink, and reads the ones inside', async () => {
      await writeFile(join(outside, 'secret.csv'), 'user_id;product_type;fee;origin\n');
      await symlink(join(outside, 'secret.csv'), join(dir, 'link.csv'));
      await symlink(outside, join(dir, 'link-dir'));
      for (const path of [join(dir, '..', 'x.csv'), join(dir, 'link.csv'), join(dir, 'link-dir', 'secret.csv')]) {
        await expect(openInput(path, policy, { what: 'users CSV' })).rejects.toThrow(
          /^users CSV: .* is outside ROYALTIES_INPUT_ROOT$/,
        );
      }
      const inside = await openInput(await file('inside.csv', 'abc'), policy);
      inside.stream.destroy();
      expect(inside.sizeBytes).toBe(3);
    });
  });

  describe('URLs', () => {
    it('refuses a private address unless its host is allow-listed, by name at connect time as by address', async () => {
      const server = await serve((_request, response) => response.end('hello'));
      const name = hostname();
      await expect(openInput(`http://${name}:${server.port}/x`, policy)).rejects.toThrow(
        /resolves to non-public address/,
      );
      await expect(openInput(`http://[::1]:${server.port}/x`, policy)).rejects.toThrow(/address ::1 is not public/);
      expect(server.requests).toEqual([]);
      for (const allowed of [[name], ['*']]) {
        const input = await openInput(`http://${name}:${server.port}/x`, {
          ...policy,
          privateHosts: allowed,
        });
        input.stream.destroy();
      }
      expect(server.requests).toEqual(['/x', '/x']);
    });

    it('follows redirects to allowed places, re-checking each hop, and at most 5 of them', async () => {
      const server = await serve((request, response) => {
        const hop = Number(request.url?.slice(1));
        if (hop >= 3 && hop < 10) response.end('arrived');
        else response.writeHead(302, { location: String(hop + 1) }).end();
      });
      const input = await openInput(`${server.base}/0`, policy);
      const chunks: Buffer[] = [];
      for await (const chunk of input.stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('arrived');
      await expect(openInput(`${server.base}/10`, policy)).rejects.toThrow(/more than 5 redirects/);
      const ftp = await serve((_request, response) => response.writeHead(301, { location: 'ftp://127.0.0.1/x' }).end());
      await expect(openInput(`${ftp.base}/x`, policy)).rejects.toThrow(
        /redirect to a location that is not an http\(s\) URL/,
      );
    });
  });
});
