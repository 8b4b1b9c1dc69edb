import { ZodValidationException } from 'nestjs-zod';
import type { z } from 'zod';
import { MAX_COUNTER_KEY_BYTES, MAX_INCREMENTS_PER_BATCH } from '../counters.constants';
import { checkedIncrement, incrementBatchSchema, incrementSchema, parseIncrementRequest } from './counters.dto';

const keys: unknown[] = [
  'k',
  'user-42',
  '',
  'é'.repeat(MAX_COUNTER_KEY_BYTES / 2),
  'é'.repeat(MAX_COUNTER_KEY_BYTES / 2 + 1),
  'k'.repeat(MAX_COUNTER_KEY_BYTES),
  'k'.repeat(MAX_COUNTER_KEY_BYTES + 1),
  '€'.repeat(Math.floor(MAX_COUNTER_KEY_BYTES / 3)),
  '€'.repeat(Math.floor(MAX_COUNTER_KEY_BYTES / 3) + 1),
  '😀'.repeat(MAX_COUNTER_KEY_BYTES / 4),
  '😀'.repeat(MAX_COUNTER_KEY_BYTES / 4 + 1),
  '\ud800',
  'a\udc00b',
  '\u0000',
  12,
  null,
  undefined,
  ['k'],
  { key: 'k' },
];
const values: unknown[] = [
  0,
  -0,
  1,
  -5,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2 ** 53,
  -(2 ** 53),
  1.5,
  1e21,
  NaN,
  Infinity,
  '3',
  null,
  undefined,
  true,
  [1],
  BigInt(1),
];

/** Every key against every value, as an object of the fields given, the fields left out, or one too many. */
function items(): unknown[] {
  const made: unknown[] = [];
  for (const key of keys)
    for (const value of values) {
      made.push({ key, value }, { value, key }, { key, value, extra: true });
      // What JSON.parse hands the route (a bigint has no JSON form).
      if (typeof value !== 'bigint') made.push(JSON.parse(JSON.stringify({ key, value })));
    }
  made.push({ key: 'k' }, { value: 1 }, {}, [], null, 'k', 1, [{ key: 'k', value: 1 }]);
  made.push(Object.assign(Object.create({ extra: true }) as object, { key: 'k', value: 1 }));
  made.push(Object.assign(Object.create({ value: 1 }) as object, { key: 'k' }));
  made.push(Object.assign(Object.create(null) as object, { key: 'k', value: 1 }));
  return made;
}

const schemaVerdict = <T>(schema: { safeParse(body: unknown): z.ZodSafeParseResult<T> }, body: unknown) => {
  const parsed = schema.safeParse(body);
  return parsed.success ? { data: parsed.data } : { issues: parsed.error.issues };
};

const answerOf = (body: unknown) => {
  try {
    return { request: parseIncrementRequest(body) };
  } catch (error) {
    if (!(error instanceof ZodValidationException)) throw error;
    return { issues: (error.getZodError() as { issues: unknown[] }).issues };
  }
};

describe('parseIncrementRequest', () => {
  it('takes an increment without the schema only when the schema would take it, with the same data', () => {
    let taken = 0;
    for (const item of items()) {
      const checked = checkedIncrement(item);
      if (checked === undefined) continue;
      taken++;
      expect({ item, verdict: schemaVerdict(incrementSchema, item) }).toEqual({ item, verdict: { data: checked } });
    }
    // The written-out checks serve the valid bodies (else they would be dead code the schema hides).
    expect(taken).toBeGreaterThan(50);
  });

  it('answers every single-increment body as the schema does: the same data or the same issues', () => {
    for (const body of items()) {
      const verdict = schemaVerdict(incrementSchema, body);
      const answer = answerOf(body);
      if (verdict.data)
        expect({ body, answer }).toEqual({ body, answer: { request: { increments: [verdict.data], batch: false } } });
      else expect({ body, answer }).toEqual({ body, answer: { issues: verdict.issues } });
    }
  });

  it('answers every batch as the schema does, wherever in it a bad increment sits', () => {
    const good = Array.from({ length: 5 }, (_, i) => ({ key: `key-${i}`, value: i - 2 }));
    const batches: unknown[] = [
      { increments: good },
      { increments: [] },
      { increments: Array.from({ length: MAX_INCREMENTS_PER_BATCH }, (_, i) => ({ key: `k${i}`, value: 1 })) },
      { increments: Array.from({ length: MAX_INCREMENTS_PER_BATCH + 1 }, (_, i) => ({ key: `k${i}`, value: 1 })) },
      { increments: good, extra: 1 },
      { increments: 'all' },
      { increments: { 0: good[0], length: 1 } },
      // eslint-disable-next-line no-sparse-arrays
      { increments: [good[0], , good[1]] },
    ];
    for (const bad of items().filter((item) => checkedIncrement(item) === undefined))
      for (const at of [0, 2, 4]) batches.push({ increments: good.map((item, i) => (i === at ? bad : item)) });
    for (const body of batches) {
      const verdict = schemaVerdict(incrementBatchSchema, body);
      const answer = answerOf(body);
      if (verdict.data)
        expect({ body, answer }).toEqual({
          body,
          answer: { request: { increments: verdict.data.increments, batch: true } },
        });
      else expect({ body, answer }).toEqual({ body, answer: { issues: verdict.issues } });
    }
  });
});
