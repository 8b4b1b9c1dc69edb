'use strict';
// Starts the real services the tests and local runs need (Redis and a MongoDB-wire server) on free
// loopback ports, installing or building them when the machine lacks them. Binaries are cached in
// BUFFERQ_CACHE_DIR (default ~/.cache/bufferq) so only the first run pays for the build.
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
  if (!which('apt-get')) throw new Error('redis-server is missing and apt-get is not available; install Redis or set REDIS_URL');
  log('installing redis-server with apt-get (once)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  let result = spawnSync(sudo[0] || 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'redis-server'], { stdio: 'inherit', env });
  if (result.status !== 0) {
    spawnSync(sudo[0] || 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update'], { stdio: 'inherit', env });
    result = spawnSync(sudo[0] || 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'redis-server'], { stdio: 'inherit', env });
  }
  bin = which('redis-server') || '/usr/bin/redis-server';
  if (result.status !== 0 || !fs.existsSync(bin)) throw new Error('could not install redis-server with apt-get');
  // Debian starts a system-wide redis on 6379 after install; we never use it, our servers get their own ports.
  return bin;
}

function buildFerretDb(version) {
  const bin = path.join(CACHE_DIR, 'bin', `ferretdb-${version}`);
  if (fs.existsSync(bin)) return bin;
  if (!which('go')) throw new Error('the Go toolchain is needed to build FerretDB; install Go or set MONGO_URL');
  log(`building FerretDB ${version} with the Go toolchain (once, about a minute)`);
  // `go install pkg@version` fails on this proxy ("loading deprecation ... @v/list: 403"), so we download
  // the module and build it from a writable copy, stamping the version file its build expects.
  const info = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@${version}`], { encoding: 'utf8', cwd: os.tmpdir() }));
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
class LocalServer {
  constructor(name, port, argsFor, bin, dataDir, url) {
    Object.assign(this, { name, port, argsFor, bin, dataDir, url, child: null });
  }

  async start() {
    if (this.child) return this;
    fs.mkdirSync(this.dataDir, { recursive: true });
    const logFile = fs.openSync(path.join(this.dataDir, `${this.name}.log`), 'a');
    this.child = spawn(this.bin, this.argsFor(this.port, this.dataDir), { stdio: ['ignore', logFile, logFile] });
    fs.closeSync(logFile);
    const child = this.child;
    child.once('exit', () => {
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
  if (!APPEND_FSYNC_POLICIES.includes(policy)) throw new Error(`appendFsync must be one of ${APPEND_FSYNC_POLICIES.join(', ')}, got ${policy}`);
  return policy;
}

/** A Redis on a free loopback port; appendOnly keeps an AOF in dataDir, fsynced per appendFsync (default everysec). */
async function startRedis(options = {}) {
  const bin = ensureRedisServer();
  const port = options.port || (await freePort());
  const dataDir = options.dataDir || scratchDir('redis');
  const persistence = options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', appendFsync(options)] : ['--appendonly', 'no'];
  const args = (p, dir) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--daemonize', 'no'];
  return new LocalServer('redis', port, args, bin, dataDir, `redis://127.0.0.1:${port}`).start();
}

/**
 * A three-master Redis Cluster on free loopback ports (no replicas, nothing on disk), for the tests that
 * show the buffer works on a Cluster client. Returns the node servers and a `stop()` for all of them.
 */
async function startRedisCluster() {
  const bin = ensureRedisServer();
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const dataDir = scratchDir('redis-cluster');
    const args = (p, dir) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000'];
    nodes.push(await new LocalServer('redis', port, args, bin, dataDir, `redis://127.0.0.1:${port}`).start());
  }
  const cli = path.join(path.dirname(bin), 'redis-cli');
  execFileSync(cli, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  const deadline = Date.now() + 15_000;
  while (!execFileSync(cli, ['-p', String(nodes[0].port), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok')) {
    if (Date.now() > deadline) throw new Error('the Redis Cluster did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { nodes, remove: () => Promise.all(nodes.map((node) => node.remove())) };
}

async function startMongo(options = {}) {
  const server = ensureMongoServer();
  const port = options.port || (await freePort());
  const dataDir = options.dataDir || scratchDir('mongo');
  const args =
    server.kind === 'mongod'
      ? (p, dir) => ['--port', String(p), '--bind_ip', '127.0.0.1', '--dbpath', dir, '--quiet']
      : (p, dir) => ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${p}`, '--debug-addr=-', '--state-dir=-', '--telemetry=disable', '--log-level=warn'];
  const instance = new LocalServer(server.kind, port, args, server.bin, dataDir, `mongodb://127.0.0.1:${port}`);
  instance.kind = server.kind;
  return instance.start();
}

module.exports = { CACHE_DIR, ensureRedisServer, ensureMongoServer, freePort, startRedis, startRedisCluster, startMongo, LocalServer };
