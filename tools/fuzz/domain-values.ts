/**
 * What the fuzzer knows about the domain: counter keys of its own (so the accounting sees no one
 * else's increments), webhook URLs on the local receiver, royalties inputs that exist, and ids,
 * cursors and names harvested from earlier answers, so requests reach past the "not found" checks.
 */
import type { SeededRandom } from '../chaos/random';
import { hex24, JsonSchema, FuzzJson, NUMBER_LITERALS, ODD_STRINGS, RawJson, randomString } from './json-values';
import { HOOK_BEHAVIOURS } from './local-receiver';
import { percentEncoded } from './percent-encoding';
import { FIXTURE_NAMES, HOSTILE_LOCAL_NAMES, INPUT_NAMES } from './royalties-inputs';

const POOL_LIMIT = 300;
/** Response fields worth reusing in later requests. */
const HARVESTED_FIELDS = new Set(['id', 'buildId', 'next_cursor', 'next', 'User', 'key', 'name', 'jobId']);
/** Counter keys that take huge values only, so their sums reach the 64-bit limit within a run. */
const HUGE_KEYS = 2;
const PLAIN_KEYS = 40;

export class DomainValues {
  private readonly pools = new Map<string, string[]>();

  constructor(
    private readonly seed: number,
    private readonly receiverOrigin: string,
  ) {}

  /** The prefix of every counter key this run sends (in a database of its own, so nothing else writes there). */
  get keyPrefix(): string {
    return `fz${this.seed}-`;
  }

  /** Remembers ids, cursors and names of a successful answer, by route family (`timers`, `royalties`, ...). */
  harvest(family: string, body: unknown, depth = 0): void {
    if (depth > 5 || body === null || typeof body !== 'object') return;
    for (const [field, value] of Object.entries(body as Record<string, unknown>)) {
      if (typeof value === 'string' && HARVESTED_FIELDS.has(field) && value.length <= 512)
        this.remember(`${family}:${field}`, value);
      else if (typeof value === 'object') this.harvest(family, value, depth + 1);
    }
  }

  pooled(random: SeededRandom, ...pools: string[]): string | undefined {
    const candidates = pools.flatMap((pool) => this.pools.get(pool) ?? []);
    return candidates.length ? random.pick(candidates) : undefined;
  }

  /** Real queue names the board reported: never sent with valid credentials to a route that changes a queue. */
  isKnownQueue(name: string): boolean {
    return (this.pools.get('admin:name') ?? []).includes(name);
  }

  counterKey(random: SeededRandom): string {
    const plain = `${this.keyPrefix}${random.int(0, PLAIN_KEYS - 1)}`;
    const roll = random.next();
    if (roll < 0.7) return plain;
    if (roll < 0.8) return `${plain}${random.pick(ODD_STRINGS)}`;
    if (roll < 0.84)
      return `${this.keyPrefix}${'k'.repeat(512 - Buffer.byteLength(this.keyPrefix) + random.int(-1, 1))}`;
    if (roll < 0.87)
      return `${this.keyPrefix}${'é'.repeat(Math.floor((512 - Buffer.byteLength(this.keyPrefix)) / 2) + random.int(-1, 1))}`;
    if (roll < 0.93) return random.pick(ODD_STRINGS);
    return `${this.keyPrefix}${randomString(random)}`;
  }

  hugeKey(random: SeededRandom): string {
    return `${this.keyPrefix}huge-${random.int(0, HUGE_KEYS - 1)}`;
  }

  counterValue(random: SeededRandom, key: string): FuzzJson {
    if (key.startsWith(`${this.keyPrefix}huge-`))
      return key.endsWith('-0') ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
    const roll = random.next();
    if (roll < 0.85) return random.int(-1_000, 1_000);
    if (roll < 0.97) return random.pick([Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, -0]);
    return new RawJson(random.pick(NUMBER_LITERALS));
  }

  /** An increment batch that sends one huge key `count` times: sums reach 2^63 after about 1,024. */
  hugeBatch(random: SeededRandom): FuzzJson {
    const key = this.hugeKey(random);
    return {
      increments: Array.from({ length: random.int(100, 1_000) }, () => ({
        key,
        value: this.counterValue(random, key),
      })),
    };
  }

  webhookUrl(random: SeededRandom): string {
    const origin = this.receiverOrigin;
    const port = new URL(origin).port;
    const roll = random.next();
    if (roll < 0.6) return `${origin}/hooks/${random.pick(HOOK_BEHAVIOURS)}/${random.int(0, 999)}`;
    if (roll < 0.66) return `http://fuzz-${random.int(0, 99)}.invalid/hook`;
    if (roll < 0.7) return 'http://127.0.0.1:9/closed-port';
    if (roll < 0.73) return `https://127.0.0.1:${port}/hooks/ok/not-tls`;
    if (roll < 0.76) return `http://user:secret@127.0.0.1:${port}/hooks/ok`;
    if (roll < 0.8) return `${origin}/hooks/ok/${'p'.repeat(random.pick([2_000, 2_048, 2_100, 8_150, 8_200]))}`;
    if (roll < 0.86)
      return random.pick([
        `http://localhost:${port}/hooks/ok`,
        `http://[::1]:${port}/hooks/ok`,
        `http://0x7f.1:${port}/hooks/ok`,
        `http://2130706433:${port}/hooks/ok`,
        `http://[::ffff:127.0.0.1]:${port}/hooks/ok`,
        `${origin}/hooks/ok?query=${percentEncoded(random.pick(ODD_STRINGS))}#fragment`,
        `${origin}/hooks/${percentEncoded(random.pick(ODD_STRINGS))}`,
        `HTTP://127.0.0.1:${port}/hooks/ok`,
      ]);
    if (roll < 0.93)
      return random.pick([
        'ftp://127.0.0.1/x',
        'file:///etc/passwd',
        'javascript:alert(1)',
        'data:text/plain,x',
        'http://',
        'http:///x',
        '//127.0.0.1/x',
        'gopher://127.0.0.1:6379/_INFO',
        `http://127.0.0.1:${port}:${port}/`,
      ]);
    return randomString(random);
  }

  /** A royalties input location for the given field (`usersCsv`, `streamsCsv`, `tracks`). */
  royaltiesInput(random: SeededRandom, field: keyof typeof FIXTURE_NAMES): string {
    const roll = random.next();
    if (roll < 0.4) return FIXTURE_NAMES[field];
    if (roll < 0.55) return `${this.receiverOrigin}/inputs/${FIXTURE_NAMES[field]}`;
    if (roll < 0.7)
      return random.next() < 0.5
        ? random.pick(INPUT_NAMES)
        : `${this.receiverOrigin}/inputs/${random.pick(INPUT_NAMES)}`;
    if (roll < 0.78) return random.pick(HOSTILE_LOCAL_NAMES);
    if (roll < 0.84)
      return `${this.receiverOrigin}/inputs/${random.pick(['missing', 'error', `redirect/${FIXTURE_NAMES[field]}`, 'redirect/missing'])}`;
    if (roll < 0.88) return `http://fuzz-${random.int(0, 99)}.invalid/${FIXTURE_NAMES[field]}`;
    if (roll < 0.92)
      return random.pick([
        '/etc/passwd',
        '/dev/zero',
        '/proc/self/environ',
        '../../../../etc/passwd',
        './users.csv',
        'users.csv/',
        'users.csv\u0000.txt',
        'file:///etc/passwd',
        '~/.ssh/id_rsa',
        'C:\\boot.ini',
        `http://127.0.0.1:${new URL(this.receiverOrigin).port}/inputs/${FIXTURE_NAMES[field]}`,
      ]);
    return randomString(random);
  }

  timerDelayPart(random: SeededRandom, field: 'hours' | 'minutes' | 'seconds'): FuzzJson {
    const roll = random.next();
    if (roll < 0.75) return field === 'seconds' ? random.int(0, 3) : 0;
    if (roll < 0.9) return random.int(0, field === 'hours' ? 800 : 100_000);
    return random.pick([Number.MAX_SAFE_INTEGER, 2_592_000, 2_592_001, 720, 721, 43_200]);
  }

  /** Values of properties the fuzzer knows (`undefined`: let the schema decide). */
  semantic(name: string, _schema: JsonSchema, random: SeededRandom): FuzzJson | undefined {
    switch (name) {
      case 'key':
        return this.counterKey(random);
      case 'increments':
        return Array.from({ length: random.next() < 0.9 ? random.int(1, 20) : random.int(21, 1_000) }, () => {
          const key = random.next() < 0.03 ? this.hugeKey(random) : this.counterKey(random);
          return { key, value: this.counterValue(random, key) };
        });
      case 'url':
        return this.webhookUrl(random);
      case 'hours':
      case 'minutes':
      case 'seconds':
        return this.timerDelayPart(random, name);
      case 'usersCsv':
      case 'streamsCsv':
      case 'tracks':
        return this.royaltiesInput(random, name);
      default:
        return undefined;
    }
  }

  /** A value for a path or query parameter of `family`'s route. */
  parameter(name: string, family: string, random: SeededRandom): string | undefined {
    const roll = random.next();
    if (roll >= 0.75) return undefined;
    switch (name) {
      case 'id':
        return this.pooled(random, `${family}:id`, `${family}:buildId`) ?? hex24(random);
      case 'buildId':
        return this.pooled(random, 'royalties:buildId') ?? hex24(random);
      case 'userId':
        return this.pooled(random, 'users:User') ?? random.pick(['u1', 'u2', 'u3', 'u404']);
      case 'after':
        return this.pooled(random, 'users:next', 'users:User') ?? 'u1';
      case 'cursor':
        return (
          this.pooled(random, family === 'timers' ? 'timers:next_cursor' : 'consolidated:next') ??
          (family === 'timers' ? hex24(random) : undefined)
        );
      case 'key':
        return this.counterKey(random);
      case 'queueName':
        return this.pooled(random, 'admin:name') ?? '{buffered-increments-flush}';
      case 'jobId':
        return this.pooled(random, 'admin:id', 'admin:jobId') ?? String(random.int(1, 50));
      case 'queueStatus':
        return random.pick([
          'completed',
          'failed',
          'delayed',
          'active',
          'waiting',
          'paused',
          'prioritized',
          'waiting-children',
          'latest',
        ]);
      case 'status':
        return random.pick(['pending', 'delivering', 'delivered', 'failed', 'cancelled']);
      case 'limit':
        return String(random.pick([1, 2, 10, 50, 100, 500, 1_000]));
      default:
        return undefined;
    }
  }

  private remember(pool: string, value: string): void {
    const values = this.pools.get(pool) ?? [];
    if (values.includes(value)) return;
    values.push(value);
    if (values.length > POOL_LIMIT) values.shift();
    this.pools.set(pool, values);
  }
}
