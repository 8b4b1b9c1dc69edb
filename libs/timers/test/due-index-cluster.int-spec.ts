// The due index sharded over a real local Redis Cluster (three masters): each shard in a slot of its own,
// claims that visit every shard fairly, and each per-timer operation on the shard that holds the timer.
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { PrivateRedisCluster, startPrivateRedisCluster, uniqueName } from '@bufferq/testing';
import { ClaimedTimer, DueIndex } from '../src/storage/due-index/due-index';
import { fastTimersConfig } from './fixtures/timers-harness';

const SHARDS = 3;
const newTimerId = () => randomBytes(12).toString('hex');

describe('DueIndex on a Redis Cluster (three masters, three shards)', () => {
  let cluster: PrivateRedisCluster;
  let redis: Cluster;

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster();
    redis = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
  });

  afterAll(async () => {
    redis?.disconnect();
    await cluster?.remove();
  });

  /** The port of the master serving `key`'s slot. */
  async function ownerOf(key: string): Promise<number> {
    const slot = (await redis.cluster('KEYSLOT', key)) as number;
    const ranges = await redis.cluster('SLOTS');
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  }

  /** Settings whose three due-index shards live on three different masters (prefixes are tried until they do). */
  async function settingsOnEveryNode(name: string, overrides: Parameters<typeof fastTimersConfig>[0] = {}) {
    for (let attempt = 0; attempt < 200; attempt++) {
      const config = fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName(name),
        TIMERS_DUE_INDEX_SHARDS: String(SHARDS),
        ...overrides,
      });
      const shards = new DueIndex(redis, config).shards;
      const owners = new Set(await Promise.all(shards.map((keys) => ownerOf(keys.due))));
      if (owners.size === SHARDS) return config;
    }
    throw new Error('no prefix put the three shards on three masters');
  }

  const dueIndexOnEveryNode = async (name: string, overrides: Parameters<typeof fastTimersConfig>[0] = {}) =>
    new DueIndex(redis, await settingsOnEveryNode(name, overrides));

  /** `count` timer ids that live in shard `shard`. */
  function idsInShard(dueIndex: DueIndex, shard: number, count: number): string[] {
    const ids: string[] = [];
    while (ids.length < count) {
      const id = newTimerId();
      if (dueIndex.keysOf(id) === dueIndex.shards[shard]) ids.push(id);
    }
    return ids;
  }

  it('spreads timers over the shards on different nodes, each shard’s keys in one slot', async () => {
    const dueIndex = await dueIndexOnEveryNode('tcl_spread');
    const now = Date.now();
    const ids = Array.from({ length: 300 }, newTimerId);
    expect(
      await dueIndex.schedule(ids.map((id) => ({ id, runAt: now - 1_000, staged: { url: 'u', attempts: 0 } }))),
    ).toBe(300);
    const perShard = await Promise.all(dueIndex.shards.map((keys) => redis.zcard(keys.due)));
    expect(perShard.every((count) => count > 50)).toBe(true);
    expect(perShard.reduce((a, b) => a + b)).toBe(300);
    for (const keys of dueIndex.shards) {
      const slots = new Set(await Promise.all(Object.values(keys).map((key) => redis.cluster('KEYSLOT', key))));
      expect(slots.size).toBe(1);
    }
    expect(await dueIndex.size()).toBe(300);
    expect(await dueIndex.stats(now)).toMatchObject({ scheduled: 300, overdue: 300, oldestOverdueMs: 1_000 });
  });

  it('gives every due timer to exactly one of several schedulers claiming at once', async () => {
    const config = await settingsOnEveryNode('tcl_once');
    const schedulers = [new DueIndex(redis, config), new DueIndex(redis, config), new DueIndex(redis, config)];
    const now = Date.now();
    const ids = Array.from({ length: 1_200 }, newTimerId);
    await schedulers[0].schedule(ids.map((id, i) => ({ id, runAt: now - (i % 500) })));

    const claimed: ClaimedTimer[] = [];
    for (let poll = 0; poll < 50 && claimed.length < ids.length; poll++) {
      const polls = await Promise.all(schedulers.map((dueIndex) => dueIndex.claimDue(now, 97)));
      for (const batch of polls) claimed.push(...batch);
    }
    expect(claimed.map((timer) => timer.id).sort()).toEqual([...ids].sort());
    // Every claim still holds its timers: taken once, each of them; a second take finds none.
    expect((await schedulers[1].take(claimed)).every(Boolean)).toBe(true);
    expect((await schedulers[2].take(claimed)).some(Boolean)).toBe(false);
    await schedulers[0].settle(ids);
    expect(await schedulers[2].stats(now)).toEqual({
      scheduled: 0,
      overdue: 0,
      oldestOverdueMs: 0,
      claimed: 0,
      armed: 0,
    });
  });

  it('claims a shard’s one due timer in the first poll while another shard holds a large backlog', async () => {
    const dueIndex = await dueIndexOnEveryNode('tcl_fair');
    const now = Date.now();
    // Shard 0: 3,000 overdue timers, the earliest of them most overdue; shard 1: one timer, just due.
    const backlog = idsInShard(dueIndex, 0, 3_000).map((id, i) => ({ id, runAt: now - 60_000 + i }));
    const [lone] = idsInShard(dueIndex, 1, 1);
    await dueIndex.schedule([...backlog, { id: lone, runAt: now }]);

    const firstPoll = await dueIndex.claimDue(now, 100);
    expect(firstPoll.map((timer) => timer.id)).toContain(lone);
    // What the other shards left unused goes to the backlog within the same poll, earliest first.
    expect(firstPoll).toHaveLength(100);
    expect(
      firstPoll
        .filter((timer) => timer.id !== lone)
        .map((timer) => timer.id)
        .sort(),
    ).toEqual(
      backlog
        .slice(0, 99)
        .map((timer) => timer.id)
        .sort(),
    );
  });

  it('claims a lone due timer within one turn of the shards when each poll may claim only one timer', async () => {
    const dueIndex = await dueIndexOnEveryNode('tcl_turns');
    const now = Date.now();
    const backlog = idsInShard(dueIndex, 0, 500).map((id) => ({ id, runAt: now - 1_000 }));
    const [lone] = idsInShard(dueIndex, 2, 1);
    await dueIndex.schedule([...backlog, { id: lone, runAt: now }]);
    const polls: string[][] = [];
    for (let poll = 0; poll < SHARDS; poll++) polls.push((await dueIndex.claimDue(now, 1)).map((timer) => timer.id));
    expect(polls.flat()).toContain(lone);
    expect(polls.every((ids) => ids.length === 1)).toBe(true);
  });

  it('moves timers claimed from a shard their ids no longer hash to (more shards now) into their own, and sends them from there', async () => {
    const threeShards = await settingsOnEveryNode('tcl_reshard');
    const now = Date.now();
    const ids = Array.from({ length: 300 }, newTimerId);
    await new DueIndex(redis, threeShards).schedule(
      ids.map((id) => ({ id, runAt: now - 1_000, staged: { url: 'u', attempts: 2 } })),
    );
    const fourShards = new DueIndex(redis, { ...threeShards, TIMERS_DUE_INDEX_SHARDS: 4 });
    const claimed: ClaimedTimer[] = [];
    for (let poll = 0; poll < 10 && claimed.length < ids.length; poll++)
      claimed.push(...(await fourShards.claimDue(now, 1_000)));
    expect(claimed.map((timer) => timer.id).sort()).toEqual([...ids].sort());
    // A moved timer comes unstaged, so delivery checks MongoDB first (its old copy may predate a cancel).
    const threeShardsIndex = new DueIndex(redis, threeShards);
    const moved = (id: string) => threeShardsIndex.keysOf(id).due !== fourShards.keysOf(id).due;
    expect(claimed.filter((timer) => moved(timer.id)).length).toBeGreaterThan(100);
    for (const timer of claimed) expect(timer.staged).toEqual(moved(timer.id) ? undefined : { url: 'u', attempts: 2 });
    expect((await fourShards.take(claimed)).every(Boolean)).toBe(true);
    expect(await fourShards.stats(now)).toMatchObject({ scheduled: 0, claimed: 300, armed: 0 });
    // Each is leased in its own shard; nothing is left in the shards it was claimed from.
    for (const keys of fourShards.shards) {
      const leased = await redis.zrange(keys.leased, 0, -1);
      expect(leased.every((id) => fourShards.keysOf(id) === keys)).toBe(true);
    }
  });

  it('keeps far timers in each shard’s timing wheel (bucket keys in the shard’s slot), cancels one there, and moves the rest into due', async () => {
    const dueIndex = await dueIndexOnEveryNode('tcl_wheel');
    const now = Date.now();
    // Beyond the horizon (two reconciler periods of 300 ms): into the wheel, two buckets per shard.
    const runAt = Math.ceil((now + 60_000) / 1000) * 1000;
    const timers = [0, 1, 2].flatMap((shard) =>
      idsInShard(dueIndex, shard, 20).map((id, i) => ({ id, runAt: runAt + (i % 2) * 1_000 + i })),
    );
    expect(await dueIndex.schedule(timers, now)).toBe(60);
    expect(await dueIndex.size()).toBe(60);
    for (const keys of dueIndex.shards) {
      expect(await redis.zcard(keys.due)).toBe(0);
      const buckets = await redis.zrange(keys.wheel, 0, -1);
      expect(buckets).toHaveLength(2);
      const slots = new Set(
        await Promise.all(
          [keys.due, ...buckets.map((bucket) => `${keys.wheel}:${bucket}`)].map((key) => redis.cluster('KEYSLOT', key)),
        ),
      );
      expect(slots.size).toBe(1);
    }
    const [cancelled] = timers;
    expect(await dueIndex.cancel(cancelled.id, now, cancelled.runAt)).toBe('cancelled');
    const claimed: ClaimedTimer[] = [];
    for (let poll = 0; poll < 10; poll++) claimed.push(...(await dueIndex.claimDue(runAt + 2_000, 100)));
    expect(claimed.map((timer) => [timer.id, timer.dueAt]).sort()).toEqual(
      timers
        .slice(1)
        .map((timer) => [timer.id, timer.runAt])
        .sort(),
    );
    expect(await dueIndex.stats(runAt + 2_000)).toMatchObject({ scheduled: 0, claimed: 59 });
  });

  it('cancels, takes, renews, gives back, settles and reconciles each timer in the shard that holds it', async () => {
    // A reconciler horizon of 10 s: timers due in 2 s are in `due`, not in the timing wheel.
    const dueIndex = await dueIndexOnEveryNode('tcl_route', {
      TIMERS_DELIVERY_LOCK_MS: '5000',
      TIMERS_RECONCILE_INTERVAL_MS: '5000',
    });
    const now = Date.now();
    const [a, b, c] = [0, 1, 2].map((shard) => idsInShard(dueIndex, shard, 1)[0]);
    const [cancelled] = idsInShard(dueIndex, 1, 1);
    await dueIndex.schedule([a, b, c, cancelled].map((id) => ({ id, runAt: now + 2_000 })));

    expect(await dueIndex.cancel(cancelled, now)).toBe('cancelled');
    expect(await redis.zscore(dueIndex.shards[1].settled, cancelled)).not.toBeNull();
    expect(await redis.zscore(dueIndex.shards[1].due, cancelled)).toBeNull();

    // Claimed ahead (armed), each in its own shard.
    const claimed = await dueIndex.claimDue(now, 10, now + 2_000);
    expect(claimed.map((timer) => timer.id).sort()).toEqual([a, b, c].sort());
    for (const [shard, id] of [a, b, c].entries()) {
      expect(await redis.zscore(dueIndex.shards[shard].armed, id)).toBe(String(now + 2_000));
      expect(await redis.hget(dueIndex.shards[shard].claims, id)).toBe(claimed[0].claim);
    }

    const byId = (id: string) => claimed.find((timer) => timer.id === id)!;
    expect(await dueIndex.take([byId(c), byId(a)])).toEqual([true, true]);
    expect(await redis.zscore(dueIndex.shards[2].armed, c)).toBeNull();
    await dueIndex.renewLeases([a, c], now + 10_000);
    expect(await redis.zscore(dueIndex.shards[0].leased, a)).toBe(String(now + 15_000));
    expect(await redis.zscore(dueIndex.shards[2].leased, c)).toBe(String(now + 15_000));

    expect(await dueIndex.giveBack([{ id: b, claim: byId(b).claim, runAt: now + 2_000 }])).toBe(1);
    expect(await redis.zscore(dueIndex.shards[1].due, b)).toBe(String(now + 2_000));
    expect(await redis.zscore(dueIndex.shards[1].leased, b)).toBeNull();

    await dueIndex.settle([a, c], now);
    for (const [shard, id] of [
      [0, a],
      [2, c],
    ] as const) {
      expect(await redis.zscore(dueIndex.shards[shard].leased, id)).toBeNull();
      expect(await redis.zscore(dueIndex.shards[shard].settled, id)).toBe(String(now));
    }
    expect(await dueIndex.stats(now)).toMatchObject({ scheduled: 1, claimed: 0, armed: 0 });

    // A reconciler pass skips what settled in its shard, and forgets old settled marks in every shard.
    expect(
      await dueIndex.reconcile(
        [a, b, c, cancelled].map((id) => ({ id, runAt: now + 3_000 })),
        now - 1,
      ),
    ).toBe(1);
    expect(await redis.zscore(dueIndex.shards[1].due, b)).toBe(String(now + 3_000));
    expect(await dueIndex.reconcile([], now + 1)).toBe(0);
    const settledLeft = await Promise.all(dueIndex.shards.map((keys) => redis.zcard(keys.settled)));
    expect(settledLeft).toEqual([0, 0, 0]);
  });
});
