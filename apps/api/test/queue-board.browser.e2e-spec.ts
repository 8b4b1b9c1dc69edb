import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Browser, chromium } from 'playwright-core';
import { uniqueName } from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Debian's chromium, installed with apt-get when the machine lacks it (CI machines start without it). */
function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]) =>
    spawnSync(asRoot[0] ?? args[0], [...asRoot.slice(1), ...(asRoot.length ? args : args.slice(1))], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  if (run(['apt-get', 'install', '-y', 'chromium']).status !== 0) {
    run(['apt-get', 'update']);
    run(['apt-get', 'install', '-y', 'chromium']);
  }
  if (!existsSync(CHROMIUM))
    throw new Error(`could not install chromium with apt-get; set CHROMIUM_PATH to a Chromium binary`);
  return CHROMIUM;
}

describe('Bull Board in headless Chromium', () => {
  let api: NestFastifyApplication;
  let browser: Browser;
  let base: string;

  // Every queue a worker with every role processes: the queues the system uses.
  let processedQueues: string[];
  // Queues of their own, so the board shows this test's and other tests' jobs stay elsewhere.
  const queues = { TIMERS_REDIS_PREFIX: uniqueName('board_timers'), ROYALTIES_QUEUE: uniqueName('board_royalties') };

  beforeAll(async () => {
    const executablePath = ensureChromium();
    const dbName = uniqueName('board_browser');
    const worker = await startWorker(dbName, { ...queues, WORKER_ROLES: 'all' });
    try {
      // From the module registry the worker was just built in, so `instanceof` sees its classes.
      const { DiscoveryService } = await import('@nestjs/core');
      const { WorkerHost } = await import('@nestjs/bullmq');
      processedQueues = worker
        .get(DiscoveryService, { strict: false })
        .getProviders()
        .map((wrapper) => wrapper.instance as unknown)
        .filter((instance): instance is InstanceType<typeof WorkerHost> => instance instanceof WorkerHost)
        .map((host) => host.worker.name)
        .sort();
    } finally {
      await worker.close();
    }
    api = await startApi(dbName, {
      ...queues,
      BOARD_USER: 'operator',
      BOARD_PASSWORD: 'browser-test-secret',
    });
    await api.listen(0, '127.0.0.1');
    base = await api.getUrl();
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  it('turns away a visitor without credentials or with wrong ones', async () => {
    // Chromium answers the basic-auth challenge with what it has; with nothing valid it gives up.
    const anonymous = await (await browser.newContext()).newPage();
    await expect(anonymous.goto(`${base}/admin/queues`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    const wrong = await (
      await browser.newContext({ httpCredentials: { username: 'operator', password: 'guess' } })
    ).newPage();
    const refused = await wrong.goto(`${base}/admin/queues`);
    expect(refused?.status()).toBe(401);
    expect(await wrong.content()).not.toContain('buffered-increments-flush');
  });

  it('logs in with the configured credentials and shows every queue the workers process', async () => {
    // At least flush, timer delivery and royalties builds; a queue added later is checked without a change here.
    expect(processedQueues.length).toBeGreaterThanOrEqual(3);
    expect(processedQueues).toEqual(expect.arrayContaining([expect.stringContaining(queues.ROYALTIES_QUEUE)]));
    const context = await browser.newContext({
      httpCredentials: { username: 'operator', password: 'browser-test-secret' },
    });
    const page = await context.newPage();
    const response = await page.goto(`${base}/admin/queues`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toMatch(/bull/i);
    // The board is a single-page app: the queue names appear once its API answered.
    for (const queue of processedQueues)
      await page.getByText(queue, { exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
  });
});
