import { DeliverySlots } from './delivery-slots';

/** Starts tasks through the slots and lets a test finish them one by one. */
function harness(perProcess: number, perHost: number) {
  const slots = new DeliverySlots(perProcess, perHost);
  const running = new Map<string, () => void>();
  const started: string[] = [];
  const run = (host: string, name: string) =>
    slots.run(host, (done) => {
      started.push(name);
      running.set(name, done);
    });
  const finish = (name: string) => {
    const done = running.get(name)!;
    running.delete(name);
    done();
  };
  return { slots, running, started, run, finish };
}

describe('DeliverySlots', () => {
  it('runs at most the per-process cap at once and starts waiting tasks in arrival order', () => {
    const { slots, started, run, finish } = harness(2, 10);
    ['a1', 'b1', 'c1', 'd1'].forEach((name) => run(name.slice(0, 1), name));
    expect(started).toEqual(['a1', 'b1']);
    expect(slots.inFlight).toBe(2);
    finish('b1');
    expect(started).toEqual(['a1', 'b1', 'c1']);
    finish('a1');
    finish('c1');
    expect(started).toEqual(['a1', 'b1', 'c1', 'd1']);
    finish('d1');
    expect(slots.inFlight).toBe(0);
    expect(slots.hostCount).toBe(0);
  });

  it('runs at most the per-host cap for one host, and a task waiting for its host holds no process slot', () => {
    const { started, run, finish } = harness(3, 2);
    ['x1', 'x2', 'x3', 'x4'].forEach((name) => run('x', name));
    run('y', 'y1');
    // x3 and x4 wait for host x; y1 takes the third process slot.
    expect(started).toEqual(['x1', 'x2', 'y1']);
    finish('x1');
    expect(started).toEqual(['x1', 'x2', 'y1', 'x3']);
    finish('y1');
    expect(started).toHaveLength(4); // x4 still waits for host x (x2, x3 running)
    finish('x2');
    expect(started).toEqual(['x1', 'x2', 'y1', 'x3', 'x4']);
  });

  it('counts a task that calls done twice once', () => {
    const slots = new DeliverySlots(1, 1);
    const started: number[] = [];
    let first: (() => void) | undefined;
    slots.run('h', (done) => {
      started.push(1);
      first = done;
    });
    slots.run('h', () => started.push(2));
    slots.run('h', () => started.push(3));
    first!();
    first!();
    expect(started).toEqual([1, 2]);
    expect(slots.inFlight).toBe(1);
  });

  it('keeps arrival order over many waiting tasks', () => {
    const { started, running, run } = harness(1, 1);
    for (let i = 0; i < 5_000; i++) run('h', String(i));
    while (running.size) {
      const [name, done] = running.entries().next().value!;
      running.delete(name);
      done();
    }
    expect(started).toEqual(Array.from({ length: 5_000 }, (_, i) => String(i)));
  });
});
