import { SharedUserIndex } from './shared-user-index';

describe('SharedUserIndex', () => {
  it('finds every id at the position it was given, and nothing for ids it does not hold', () => {
    const ids = Array.from({ length: 50_000 }, (_, i) => `u${i}`);
    const index = SharedUserIndex.build(ids);
    expect(index.size).toBe(50_000);
    ids.forEach((id, position) => expect(index.positionOf(id)).toBe(position));
    for (const absent of ['u50000', 'u', '', 'u1 ', 'U1', 'u01', 'ghost1', 'u123456789'])
      expect(index.positionOf(absent)).toBeUndefined();
  });

  it('compares ids unit by unit, also beyond Latin-1 (stored two bytes per unit then)', () => {
    const ids = ['é', 'ü1', 'user-Ω', '用户7', '😀', 'plain'];
    const index = SharedUserIndex.build(ids);
    expect(index.buffers.wide).toBe(true);
    ids.forEach((id, position) => expect(index.positionOf(id)).toBe(position));
    expect(index.positionOf('用户8')).toBeUndefined();
    expect(index.positionOf('Ω')).toBeUndefined();
    expect(SharedUserIndex.build(['é', 'ÿ']).buffers.wide).toBe(false);
  });

  it('answers the same from another view of its shared buffers, as a worker thread receives them', () => {
    const index = SharedUserIndex.build(['a', 'b', 'c']);
    for (const buffer of [index.buffers.chars, index.buffers.starts, index.buffers.slots])
      expect(buffer).toBeInstanceOf(SharedArrayBuffer);
    const view = SharedUserIndex.from(structuredClone(index.buffers));
    expect(['a', 'b', 'c', 'd'].map((id) => view.positionOf(id))).toEqual([0, 1, 2, undefined]);
  });

  it('holds no id when built from none', () => {
    const index = SharedUserIndex.build([]);
    expect(index.size).toBe(0);
    expect(index.positionOf('u1')).toBeUndefined();
  });
});
