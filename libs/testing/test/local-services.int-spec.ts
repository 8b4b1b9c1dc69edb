import { execFile } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import Redis from 'ioredis';
import {
  eventually,
  LocalServer,
  redisServersUnderTest,
  startPrivateRedis,
  startPrivateReplicaPair,
} from '@bufferq/testing';

// The private-server tests run on every kind of server the run has, so a machine without Valkey still
// passes on Redis alone (with-services warned about it).
const kinds = redisServersUnderTest().map((server) => server.name);
const itWithValkey = kinds.includes('valkey') ? it : it.skip;

describe('local services', () => {
  const clients: Redis[] = [];
  const servers: LocalServer[] = [];
  const connect = (server: { url: string }) => {
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };

  afterEach(async () => {
    // A second disconnect() of a closed client leaves a 2 s timer behind, which holds jest open.
    clients.splice(0).forEach((client) => client.status !== 'end' && client.disconnect());
    await Promise.all(servers.splice(0).map((server) => server.remove()));
  });

  it('kills the servers a process started and did not stop when that process exits', async () => {
    // A test process that fails before its cleanup: it starts a Redis and exits without stopping it.
    const tools = join(__dirname, '..', '..', '..', 'tools', 'local-services.js');
    const program = `require(${JSON.stringify(tools)}).startRedis().then((redis) => { console.log(redis.port); process.exit(0); });`;
    const port = await new Promise<number>((resolve, reject) =>
      execFile(process.execPath, ['-e', program], (error, stdout) => (error ? reject(error) : resolve(Number(stdout)))),
    );
    expect(port).toBeGreaterThan(0);
    const accepts = () =>
      new Promise<boolean>((resolve) => {
        const socket = tcpConnect(port, '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), resolve(true)));
        socket.once('error', () => resolve(false));
      });
    expect(await eventually(async () => !(await accepts()), 5_000)).toBe(true);
  });

  it.each(redisServersUnderTest())('serves $name on $url as the kind it is named for', async ({ name, url }) => {
    const info = await connect({ url }).info('server');
    expect(/^valkey_version:/m.test(info)).toBe(name === 'valkey');
  });

  itWithValkey(
    'starts a Valkey that answers WAITAOF 1 0 1000 with [1, 0] when it keeps an append-only file',
    async () => {
      const valkey = await startPrivateRedis({ server: 'valkey', appendOnly: true });
      servers.push(valkey);
      const client = connect(valkey);
      await client.set('k', 'v');
      // One local fsync of everything written before, no replica asked for.
      expect(await client.call('WAITAOF', 1, 0, 1000)).toEqual([1, 0]);
    },
  );

  describe.each(kinds)('on %s', (server) => {
    it('starts a replica pair whose replica holds what the primary was given', async () => {
      const { primary, replica } = await startPrivateReplicaPair({ server });
      servers.push(primary, replica);
      await connect(primary).set('copied', 'yes');
      const replicaClient = connect(replica);
      expect(await eventually(async () => (await replicaClient.get('copied')) === 'yes', 5_000)).toBe(true);
      expect(await replicaClient.info('replication')).toMatch(/^role:slave\r?$/m);
    });

    it('keeps every acknowledged write through stop, kill and start with appendOnly and appendFsync always', async () => {
      const redis = await startPrivateRedis({ server, appendOnly: true, appendFsync: 'always' });
      servers.push(redis);
      const writer = connect(redis);
      await Promise.all(Array.from({ length: 100 }, (_, i) => writer.set(`key:${i}`, String(i))));
      writer.disconnect();
      await redis.stop();
      await redis.start();
      const second = connect(redis);
      await second.set('after-restart', '1');
      second.disconnect();
      await redis.kill();
      await redis.start();
      const reader = connect(redis);
      expect(await reader.dbsize()).toBe(101);
      expect(await reader.get('key:99')).toBe('99');
    });
  });
});
