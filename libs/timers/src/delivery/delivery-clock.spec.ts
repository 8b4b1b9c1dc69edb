import { DueIndex } from '../storage/due-index/due-index';
import { DeliveryClock } from './delivery-clock';

/** The part of DueIndex the clock calls when timers fall due: every timer is still held by its claim. */
class AllTakenIndex {
  calls = 0;
  take(timers: unknown[]): Promise<boolean[]> {
    this.calls++;
    return Promise.resolve(timers.map(() => true));
  }
}

describe('DeliveryClock.dueWithin', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('says whether an armed timer falls due within the given time, until it has fired', async () => {
    const index = new AllTakenIndex();
    const clock = new DeliveryClock(index as unknown as DueIndex);
    expect(clock.dueWithin(1_000)).toBe(false);

    const fired: string[] = [];
    const decided = clock.whenDue([{ id: 'a', runAt: Date.now() + 1_500, claim: 'c' }], (id) => fired.push(id));
    expect(clock.dueWithin(1_000)).toBe(false);
    expect(clock.dueWithin(2_000)).toBe(true);

    await jest.advanceTimersByTimeAsync(600);
    expect(clock.dueWithin(1_000)).toBe(true);

    await jest.advanceTimersByTimeAsync(1_000);
    expect(await decided).toEqual([]);
    expect(fired).toEqual(['a']);
    expect(index.calls).toBe(1);
    expect(clock.dueWithin(1_000)).toBe(false);
  });
});
