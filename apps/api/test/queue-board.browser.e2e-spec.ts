import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Browser, chromium } from 'playwright-core';
import { uniqueName } from '@bufferq/testing';
import { startApi } from './api-harness';

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

  beforeAll(async () => {
    const executablePath = ensureChromium();
    api = await startApi(uniqueName('board_browser'), {
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

  it('logs in with the configured credentials and shows the flush queue', async () => {
    const context = await browser.newContext({
      httpCredentials: { username: 'operator', password: 'browser-test-secret' },
    });
    const page = await context.newPage();
    const response = await page.goto(`${base}/admin/queues`);
    expect(response?.status()).toBe(200);
    // The board is a single-page app: the queue name appears once its API answered.
    await page.getByText('buffered-increments-flush').first().waitFor({ state: 'visible', timeout: 30_000 });
    expect(await page.title()).toMatch(/bull/i);
  });
});
