import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import { isPublicAddress } from '@bufferq/timers';
import { eventually, testServices, uniqueName, writeSyntheticInputs } from '@bufferq/testing';

const fixtures = join(__dirname, '..', '..', '..', 'libs', 'royalties', 'test', 'fixtures');

/** A loopback HTTP server for URL inputs; it counts the requests it got. */
async function httpServer(
  handle: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ server: Server; base: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('royalties endpoints (api + worker role `royalties`, real Redis and MongoDB)', () => {
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let dir: string;
  let fixture: { usersCsv: string; streamsCsv: string; tracks: string };
  const servers: Server[] = [];
  const mongoDb = uniqueName('royalties_e2e');

  beforeAll(async () => {
    const { redisUrl, mongoUrl } = testServices();
    // Local inputs live in the input root: the fixtures are copied there.
    dir = await mkdtemp(join(tmpdir(), 'royalties-e2e-'));
    for (const name of ['users.csv', 'streams.csv', 'tracks.json'])
      await copyFile(join(fixtures, name), join(dir, name));
    fixture = {
      usersCsv: join(dir, 'users.csv'),
      streamsCsv: join(dir, 'streams.csv'),
      tracks: join(dir, 'tracks.json'),
    };
    // Set before the app modules load: ConfigModule validates the environment when AppModule is imported.
    Object.assign(process.env, {
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: mongoDb,
      ROYALTIES_QUEUE: uniqueName('royalties'),
      ROYALTIES_INPUT_ROOT: dir,
      // The test servers listen on 127.0.0.1: that address, and no other private one, is allowed.
      ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS: '127.0.0.1',
      WORKER_ROLES: 'royalties',
      LOG_LEVEL: 'silent',
    });
    delete process.env.ROYALTIES_USERS_CSV;
    const { createApiApp } = await import('../src/api-app');
    const { createWorkerApp } = await import('../../worker/src/worker-app');
    api = await createApiApp();
    worker = await createWorkerApp();
  });

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    const client = await new MongoClient(testServices().mongoUrl).connect();
    await client.db(mongoDb).dropDatabase();
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (url: string) => {
    const response = await api.inject({ method: 'GET', url });
    return { status: response.statusCode, body: response.json() };
  };
  const post = async (url: string, payload?: object) => {
    const response = await api.inject({ method: 'POST', url, payload });
    return { status: response.statusCode, body: response.json() };
  };
  const finished = async (buildId: string) => {
    let status = '';
    await eventually(async () => {
      status = (await get(`/royalties/builds/${buildId}`)).body.status;
      return ['succeeded', 'failed', 'cancelled'].includes(status);
    }, 30_000);
    return (await get(`/royalties/builds/${buildId}`)).body;
  };

  it('answers 404 on the reports before any build succeeded', async () => {
    expect(await get('/report')).toEqual({
      status: 404,
      body: expect.objectContaining({ message: 'no royalties build has succeeded yet' }),
    });
    expect((await get('/users/u1')).status).toBe(404);
  });

  it('rejects bad requests with 400 and unknown builds with 404', async () => {
    expect((await post('/royalties/builds', { usersCsv: 'a', surprise: 1 })).status).toBe(400);
    const missing = await post('/royalties/builds', { usersCsv: fixture.usersCsv });
    expect(missing).toEqual({
      status: 400,
      body: expect.objectContaining({ message: expect.stringMatching(/^missing streamsCsv, tracks/) }),
    });
    expect((await get('/royalties/builds/0123456789abcdef01234567')).status).toBe(404);
    expect((await post('/royalties/builds/0123456789abcdef01234567/cancel')).status).toBe(404);
    expect((await get('/report?buildId=nope')).status).toBe(400);
    expect((await get('/users?limit=0')).status).toBe(400);
  });

  it('builds the hand-made fixture in the worker and serves report, users, revenue and consolidated entries', async () => {
    const started = await post('/royalties/builds', fixture);
    expect(started).toEqual({ status: 202, body: { buildId: expect.stringMatching(/^[a-f0-9]{24}$/) } });
    const build = await finished(started.body.buildId);
    expect(build).toMatchObject({
      status: 'succeeded',
      totalRevenue: 23.58,
      problemCount: 0,
      progress: { phase: 'persisting', percent: 100 },
    });
    expect(build.counts.streams).toMatchObject({ unknownTrackStreams: 1, unknownUsers: 1 });

    expect(await get('/report')).toEqual({ status: 200, body: { 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 } });
    expect(await get('/users/u1')).toEqual({ status: 200, body: { User: 'u1', 'Total Streamed': 200 } });
    expect(await get('/users/ghost')).toEqual({ status: 200, body: { User: 'ghost', 'Total Streamed': 50 } });
    expect((await get('/users/nobody')).status).toBe(404);

    const firstUsers = await get('/users?limit=2');
    // Storage order: users by hash bucket, in file order within a bucket (one bucket at this size).
    expect(firstUsers.body).toEqual({
      buildId: started.body.buildId,
      items: [
        { User: 'u1', 'Total Streamed': 200, listed: true },
        { User: 'u2', 'Total Streamed': 120, listed: true },
      ],
      next: 'u2',
    });
    expect((await get('/users?limit=2&after=u2')).body).toMatchObject({
      items: [{ User: 'u3' }, { User: 'ghost', 'Total Streamed': 50, listed: false }],
      next: null,
    });

    expect((await get('/revenue')).body).toEqual({
      buildId: started.body.buildId,
      total: 23.58,
      totalExact: '23.5840',
      paidToLabels: 23.58,
      unallocated: 0,
      byOrigin: {
        app_store: { users: 1, fees: 7.99, revenueExact: '5.5930' },
        web: { users: 2, fees: 19.99, revenueExact: '17.9910' },
      },
    });

    const entries: Array<{ seconds: number }> = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: { body: { items: Array<{ seconds: number }>; next: string | null } } = await get(
        `/consolidated?limit=4${cursor ? `&cursor=${cursor}` : ''}`,
      );
      entries.push(...page.body.items);
      cursor = page.body.next;
    }
    expect(entries).toHaveLength(6);
    expect(entries.reduce((sum, entry) => sum + entry.seconds, 0)).toBe(420);
    expect(entries[2]).toEqual({
      date: '2019-03-02',
      user_id: 'u3',
      product_type: 'premium',
      fee: 9.99,
      origin: 'web',
      region: 'DE',
      track_id: 't3',
      track_name: 'Third Song',
      track_label: 'label C',
      seconds: 50,
    });
    expect((await get('/consolidated?cursor=garbage')).status).toBe(400);

    // The build job, with its progress, is on the queue Bull Board shows (ROYALTIES_QUEUE, hash-tagged).
    const queueName = `{${process.env.ROYALTIES_QUEUE}}`;
    const board = await api.inject({
      method: 'GET',
      url: `/admin/queues/api/queues?activeQueue=${encodeURIComponent(queueName)}&status=completed`,
      headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
    });
    expect(board.statusCode).toBe(200);
    const queue = board.json().queues.find((entry: { name: string }) => entry.name === queueName);
    expect(queue.jobs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: started.body.buildId,
          progress: expect.objectContaining({ phase: 'persisting', percent: 100 }),
        }),
      ]),
    );
  });

  it('shows a failed build with the reason, and keeps serving the last successful report', async () => {
    const started = await post('/royalties/builds', { ...fixture, streamsCsv: fixture.usersCsv });
    const build = await finished(started.body.buildId);
    expect(build).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/streams CSV: the first line must be the header/),
    });
    expect((await get('/report')).body).toEqual({ 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 });
  });

  it('keeps answering during a large build, shows its progress, and cancels it (a queued one at once)', async () => {
    const files = await writeSyntheticInputs(join(dir, 'large'), { users: 50_000, streams: 2_000_000 });
    const large = (await post('/royalties/builds', files)).body.buildId;
    const queued = (await post('/royalties/builds', fixture)).body.buildId;
    const samples: number[] = [];
    await eventually(async () => {
      const { status, body } = await get(`/royalties/builds/${large}`);
      expect(status).toBe(200);
      if (body.progress?.phase === 'streams') samples.push(body.progress.rowsRead);
      return samples.length >= 2 && samples[samples.length - 1] > samples[0];
    }, 30_000);
    expect(samples[samples.length - 1]).toBeGreaterThan(samples[0]);
    expect((await get('/report')).status).toBe(200);

    expect(await post(`/royalties/builds/${queued}/cancel`)).toEqual({
      status: 202,
      body: { buildId: queued, status: 'cancelled' },
    });
    expect(await post(`/royalties/builds/${large}/cancel`)).toEqual({
      status: 202,
      body: { buildId: large, status: 'running' },
    });
    expect(await finished(large)).toMatchObject({ status: 'cancelled', cancelRequested: true });
    expect((await post(`/royalties/builds/${large}/cancel`)).status).toBe(409);
    expect((await get('/report')).body).toEqual({ 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 });
  });
  describe('input guard (where inputs may come from, what a bad input shows)', () => {
    /** Boots another app with some variables changed (undefined: unset); its modules load afresh, so they read them. */
    const bootWith = async <T>(changes: Record<string, string | undefined>, boot: () => Promise<T>): Promise<T> => {
      const saved = Object.fromEntries(Object.keys(changes).map((name) => [name, process.env[name]]));
      const apply = (values: Record<string, string | undefined>) => {
        for (const [name, value] of Object.entries(values)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      };
      apply(changes);
      jest.resetModules();
      try {
        return await boot();
      } finally {
        apply(saved);
      }
    };
    const bootApi = async () => (await import('../src/api-app')).createApiApp();
    const serve = async (handle: (request: IncomingMessage, response: ServerResponse) => void) => {
      const started = await httpServer(handle);
      servers.push(started.server);
      return { ...started, port: Number(new URL(started.base).port) };
    };
    /** A name of this machine that resolves to a loopback or private address (Debian lists it in /etc/hosts). */
    const privateName = async () => {
      const name = hostname();
      expect(isPublicAddress((await lookup(name)).address)).toBe(false);
      return name;
    };
    const usersFile = 'user_id;product_type;fee;origin\nu1;premium;10,00;web\n';

    it('refuses input URLs on loopback, private, link-local and unspecified addresses with 400, before anything is queued', async () => {
      for (const url of [
        'http://[::1]:9/users.csv',
        'http://localhost:9/users.csv',
        'http://10.1.2.3/users.csv',
        'http://192.168.0.10/u.csv',
        'http://169.254.169.254/latest/meta-data/',
        'http://0.0.0.0:9/u.csv',
        'http://[::ffff:127.0.0.1]:9/u.csv',
      ]) {
        const response = await post('/royalties/builds', { ...fixture, usersCsv: url });
        expect({ url, ...response }).toEqual({
          url,
          status: 400,
          body: expect.objectContaining({ message: expect.stringMatching(/^usersCsv: .*(is not public|is loopback)/) }),
        });
      }
    });

    it('fails a build whose input host name resolves to a private address, refused at connect time without a request', async () => {
      const internal = await serve((_request, response) => response.end(usersFile));
      const started = await post('/royalties/builds', {
        ...fixture,
        usersCsv: `http://${await privateName()}:${internal.port}/users.csv`,
      });
      expect(started.status).toBe(202);
      expect(await finished(started.body.buildId)).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(/^users CSV: cannot fetch .*resolves to non-public address/),
      });
      expect(internal.requests).toEqual([]);
    });

    it('refuses a redirect from an allowed input host to a private address (by name or by address)', async () => {
      const internal = await serve((_request, response) => response.end(usersFile));
      const name = await privateName();
      const redirecting = await serve((request, response) => {
        const target =
          request.url === '/by-name'
            ? `http://${name}:${internal.port}/users.csv`
            : `http://[::1]:${internal.port}/users.csv`;
        response.writeHead(302, { location: target }).end();
      });
      for (const path of ['/by-name', '/by-address']) {
        const started = await post('/royalties/builds', { ...fixture, usersCsv: `${redirecting.base}${path}` });
        expect(await finished(started.body.buildId)).toMatchObject({
          status: 'failed',
          error: expect.stringMatching(/^users CSV: .*(resolves to non-public address|is not public)/),
        });
      }
      expect(redirecting.requests).toEqual(['/by-name', '/by-address']);
      expect(internal.requests).toEqual([]);
    });

    it('refuses local paths outside ROYALTIES_INPUT_ROOT with 400: ../, absolute paths, and symlinks that lead out', async () => {
      const outside = await mkdtemp(join(tmpdir(), 'royalties-outside-'));
      try {
        await writeFile(join(outside, 'users.csv'), usersFile);
        await symlink(join(outside, 'users.csv'), join(dir, 'linked-users.csv'));
        await mkdir(join(dir, 'sub'));
        await symlink(outside, join(dir, 'sub', 'linked-dir'));
        for (const path of [
          '../outside.csv',
          `${dir}/../x.csv`,
          '/etc/passwd',
          'linked-users.csv',
          join(dir, 'linked-users.csv'),
          'sub/linked-dir/users.csv',
        ]) {
          const response = await post('/royalties/builds', { ...fixture, usersCsv: path });
          expect({ path, ...response }).toEqual({
            path,
            status: 400,
            body: expect.objectContaining({
              message: expect.stringMatching(/^usersCsv: .*outside ROYALTIES_INPUT_ROOT/),
            }),
          });
        }
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    });

    it('refuses local paths with 400 when ROYALTIES_INPUT_ROOT is not set, in production as in development', async () => {
      for (const NODE_ENV of ['development', 'production']) {
        // Production refuses published default secrets: these are the test's own.
        const secrets = {
          BOARD_PASSWORD: 'royalties-e2e-board-password',
          TIMERS_SIGNING_SECRET: 'royalties-e2e-timers-signing-secret',
        };
        const rootless = await bootWith({ NODE_ENV, ROYALTIES_INPUT_ROOT: undefined, ...secrets }, bootApi);
        try {
          const response = await rootless.inject({ method: 'POST', url: '/royalties/builds', payload: fixture });
          expect({ NODE_ENV, status: response.statusCode, message: response.json().message }).toEqual({
            NODE_ENV,
            status: 400,
            message: 'usersCsv, streamsCsv, tracks: local paths are refused unless ROYALTIES_INPUT_ROOT is set',
          });
        } finally {
          await rootless.close();
        }
      }
    });

    it('refuses to boot when a default input is one the input policy refuses, api and worker alike', async () => {
      // In child processes: a boot refused while Nest builds its modules leaves the datastore connections
      // it opened to the process, which exits; here they would keep Jest running.
      const boot = (app: 'api' | 'worker', env: Record<string, string>) =>
        new Promise<{ code: number | null; output: string }>((resolve, reject) => {
          const root = join(__dirname, '..', '..', '..');
          const child = spawn(
            process.execPath,
            [
              '-r',
              'ts-node/register/transpile-only',
              '-r',
              'tsconfig-paths/register',
              join(root, 'apps', app, 'src', 'main.ts'),
            ],
            {
              cwd: root,
              env: {
                ...process.env,
                ...env,
                PORT: '0',
                HOST: '127.0.0.1',
                TS_NODE_PROJECT: join(root, 'tsconfig.json'),
              },
              stdio: ['ignore', 'pipe', 'pipe'],
            },
          );
          let output = '';
          child.stdout.on('data', (data) => (output += data));
          child.stderr.on('data', (data) => (output += data));
          const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
          child.once('error', reject);
          child.once('exit', (code) => {
            clearTimeout(timer);
            resolve({ code, output });
          });
        });
      const [api, worker] = await Promise.all([
        boot('api', { ROYALTIES_USERS_CSV: '/etc/passwd' }),
        boot('worker', { ROYALTIES_TRACKS: 'http://169.254.169.254/latest/meta-data/' }),
      ]);
      expect(api).toEqual({
        code: 1,
        output: expect.stringContaining(
          'api failed to start: Error: ROYALTIES_USERS_CSV: /etc/passwd is outside ROYALTIES_INPUT_ROOT',
        ),
      });
      expect(worker).toEqual({
        code: 1,
        output: expect.stringContaining(
          'worker failed to start: Error: ROYALTIES_TRACKS: target address 169.254.169.254 is not public',
        ),
      });
    }, 90_000);

    it('keeps the bytes of a bad input out of the failed build: its error and its problems', async () => {
      const secret = 'SECRET-7f3a9c';
      await writeFile(join(dir, 'passwd'), `root:${secret}:0:0:root:/root:/bin/bash\n`);
      await writeFile(
        join(dir, 'bad-streams.csv'),
        `date;user_id;region;track id;seconds\n${secret};u1;NL;t1;5\n01/03/2019;u1;NL;t1;${secret}\n01/03/2019;u1;NL;t1\n`,
      );
      await writeFile(
        join(dir, 'bad-users.csv'),
        `user_id;product_type;fee;origin\nu1;premium;${secret};web\nu2;premium;1,00;${secret}\n`,
      );
      await writeFile(
        join(dir, 'bad-tracks.json'),
        `[{"track_id":"t1","track_name":"${secret}","label":"a"},{"track_id":"t1","track_name":"x","label":"${secret}"}, ${secret}]`,
      );
      const cases: Array<[Partial<typeof fixture>, RegExp]> = [
        [
          { usersCsv: join(dir, 'passwd') },
          /^users CSV: the first line must be the header `user_id;product_type;fee;origin`/,
        ],
        [
          { streamsCsv: join(dir, 'bad-streams.csv') },
          /^3 of 3 streams CSV lines \(100.00%\) are malformed, .* First: line 2: date is not a day\/month\/year date\.$/,
        ],
        [
          { usersCsv: join(dir, 'bad-users.csv') },
          /^2 of 2 users CSV lines \(100.00%\) are malformed, .* First: line 2: fee is not an amount with a decimal comma like 7,99\.$/,
        ],
        [{ tracks: join(dir, 'bad-tracks.json') }, /^track metadata: not valid JSON/],
      ];
      for (const [inputs, error] of cases) {
        const build = await finished((await post('/royalties/builds', { ...fixture, ...inputs })).body.buildId);
        expect(build).toMatchObject({ status: 'failed', error: expect.stringMatching(error) });
        expect(JSON.stringify(build)).not.toContain(secret);
      }
    });

    it('fails a build whose line is longer than ROYALTIES_MAX_LINE_BYTES, and stops reading the input there', async () => {
      const total = 32 * 1024 * 1024;
      let sent = 0;
      let closed = false;
      const endless = await serve((_request, response) => {
        response.writeHead(200);
        response.on('close', () => void (closed = true));
        const block = Buffer.alloc(64 * 1024, 'x');
        const write = (): void => {
          while (sent < total && !closed) {
            sent += block.length;
            if (!response.write(block)) return void response.once('drain', write);
          }
          response.end();
        };
        write();
      });
      const started = await post('/royalties/builds', { ...fixture, usersCsv: `${endless.base}/users.csv` });
      expect(await finished(started.body.buildId)).toMatchObject({
        status: 'failed',
        error: 'users CSV: line 1 is longer than 65536 bytes (ROYALTIES_MAX_LINE_BYTES)',
      });
      expect(await eventually(() => closed, 10_000)).toBe(true);
      expect(sent).toBeLessThan(total);
    });

    it('serves /consolidated pages through the same guard: a client-chosen offset cannot steer the api to a private address', async () => {
      const internal = await serve((_request, response) =>
        response.end('date;user_id;region;track id;seconds\n01/03/2019;u1;NL;t1;100\n'),
      );
      const name = await privateName();
      const streams = Buffer.from(
        'date;user_id;region;track id;seconds\n01/03/2019;u1;NL;t1;100\n02/03/2019;u2;NL;t2;50\n',
      );
      // Serves the file whole, and answers range requests (the pages after the first) with a redirect inside.
      const source = await serve((request, response) => {
        if (request.headers.range)
          response.writeHead(302, { location: `http://${name}:${internal.port}/streams.csv` }).end();
        else response.writeHead(200, { 'content-length': streams.length }).end(streams);
      });
      const buildId = (await post('/royalties/builds', { ...fixture, streamsCsv: `${source.base}/streams.csv` })).body
        .buildId;
      expect(await finished(buildId)).toMatchObject({ status: 'succeeded' });
      const cursor = (offset: number, line: number) =>
        Buffer.from(JSON.stringify({ offset, line })).toString('base64url');
      expect((await get(`/consolidated?buildId=${buildId}`)).body.items).toHaveLength(2);
      const steered = await get(`/consolidated?buildId=${buildId}&cursor=${cursor(37, 1)}`);
      expect(steered).toEqual({
        status: 502,
        body: expect.objectContaining({
          message: expect.stringMatching(/^streams CSV: .*resolves to non-public address/),
        }),
      });
      expect(internal.requests).toEqual([]);
      expect((await get(`/consolidated?buildId=${buildId}&cursor=${cursor(streams.length + 1, 1)}`)).status).toBe(400);
    });
  });
});
