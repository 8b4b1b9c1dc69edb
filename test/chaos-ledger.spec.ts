import { BufferUnavailableError, InvalidUpdateError } from '@bufferq/buffered-increments';
import {
  auditLedger,
  fieldKey,
  mergeLedgers,
  outcomeOfFailure,
  ProducerLedger,
  StoredDocument,
} from '../tools/chaos/ledger';

const key = (id: string, path: string) => fieldKey('c', id, path);
const stored = (...documents: StoredDocument[]) => new Map([['c', documents]]);

describe('chaos ledger', () => {
  describe('outcomeOfFailure', () => {
    it('calls a failure raised before anything was sent "refused"', () => {
      expect(outcomeOfFailure(new InvalidUpdateError('delta must be a finite number'))).toBe('refused');
      expect(
        outcomeOfFailure(
          new BufferUnavailableError('Redis is not connected (reconnecting); the update was not buffered'),
        ),
      ).toBe('refused');
    });

    it('calls every other failure "ambiguous", whatever it claims', () => {
      expect(
        outcomeOfFailure(
          new BufferUnavailableError('Redis rejected the update; it was not buffered: Connection is closed.'),
        ),
      ).toBe('ambiguous');
      expect(outcomeOfFailure(new Error('Connection is closed.'))).toBe('ambiguous');
    });
  });

  describe('$inc', () => {
    function incLedger() {
      const ledger = new ProducerLedger();
      ledger.recordIncrement(key('d1', 'n'), 5, 'acked');
      ledger.recordIncrement(key('d1', 'n'), 2, 'ambiguous');
      ledger.recordIncrement(key('d1', 'n'), 100, 'refused');
      return ledger.toJSON();
    }

    it('accepts anything from the acknowledged sum to the acknowledged plus ambiguous sum', () => {
      for (const n of [5, 6, 7]) {
        const audit = auditLedger(incLedger(), stored({ _id: 'd1', n, _bmi: 12 }));
        expect(audit.inc).toMatchObject({ acked: 5, ambiguous: 2, refused: 100, applied: n, lost: 0, doubled: 0 });
      }
    });

    it('counts what is missing below the acknowledged sum as lost, and a missing document as all lost', () => {
      expect(auditLedger(incLedger(), stored({ _id: 'd1', n: 3 })).inc).toMatchObject({ lost: 2, doubled: 0 });
      expect(auditLedger(incLedger(), stored()).inc).toMatchObject({ lost: 5, applied: 0 });
    });

    it('counts what exceeds acknowledged plus ambiguous as doubled (a refused update applied counts too)', () => {
      expect(auditLedger(incLedger(), stored({ _id: 'd1', n: 12 })).inc).toMatchObject({ lost: 0, doubled: 5 });
    });

    it('reports a shortfall on a dead-lettered document as dead-lettered, not lost', () => {
      const audit = auditLedger(incLedger(), stored({ _id: 'd1', n: 1 }), new Set(['c|d1']));
      expect(audit.inc).toMatchObject({ lost: 0, deadLettered: 4 });
    });
  });

  describe('$max', () => {
    const maxLedger = () => {
      const ledger = new ProducerLedger();
      ledger.recordMax(key('d1', 'm'), 10, 'acked');
      ledger.recordMax(key('d1', 'm'), 30, 'ambiguous');
      ledger.recordMax(key('d1', 'm'), 50, 'refused');
      return ledger.toJSON();
    };

    it('accepts the largest acknowledged value or a larger ambiguous one', () => {
      for (const m of [10, 30])
        expect(auditLedger(maxLedger(), stored({ _id: 'd1', m })).max).toMatchObject({ lost: 0, wrong: 0 });
    });

    it('counts a value below the largest acknowledged one as lost, and a value nobody sent (or a refused one) as wrong', () => {
      expect(auditLedger(maxLedger(), stored({ _id: 'd1' })).max).toMatchObject({ lost: 1, wrong: 0 });
      expect(auditLedger(maxLedger(), stored({ _id: 'd1', m: 20 })).max).toMatchObject({ lost: 0, wrong: 1 });
      expect(auditLedger(maxLedger(), stored({ _id: 'd1', m: 50 })).max).toMatchObject({ lost: 0, wrong: 1 });
    });
  });

  describe('$set', () => {
    const setLedger = (...outcomes: Array<'acked' | 'ambiguous' | 'refused'>) => {
      const ledger = new ProducerLedger();
      outcomes.forEach((outcome, value) => ledger.recordSet(key('d1', 's'), value, outcome));
      return ledger.toJSON();
    };

    it('accepts the last acknowledged value or an ambiguous one sent after it', () => {
      const ledger = setLedger('acked', 'ambiguous', 'acked', 'ambiguous', 'refused');
      for (const s of [2, 3])
        expect(auditLedger(ledger, stored({ _id: 'd1', s })).set).toMatchObject({ lost: 0, wrong: 0 });
    });

    it('counts an earlier value as lost: the last acknowledged write did not stay', () => {
      const ledger = setLedger('acked', 'ambiguous', 'acked');
      expect(auditLedger(ledger, stored({ _id: 'd1', s: 1 })).set).toMatchObject({ lost: 1, wrong: 0 });
      expect(auditLedger(ledger, stored({ _id: 'd1' })).set).toMatchObject({ lost: 1 });
    });

    it('counts a refused value as wrong, and accepts nothing stored when nothing was acknowledged', () => {
      expect(auditLedger(setLedger('acked', 'refused'), stored({ _id: 'd1', s: 1 })).set).toMatchObject({ wrong: 1 });
      expect(auditLedger(setLedger('ambiguous', 'refused'), stored()).set).toMatchObject({ lost: 0, wrong: 0 });
    });

    it('refuses values recorded out of order, and a field with two owners', () => {
      const ledger = new ProducerLedger();
      expect(() => ledger.recordSet(key('d1', 's'), 1, 'acked')).toThrow(/out of order/);
      expect(() => mergeLedgers([setLedger('acked'), setLedger('acked')])).toThrow(/two owners/);
    });
  });

  it('merges producers by summing $inc tallies and joining $max values, across namespaces of one collection', () => {
    const a = new ProducerLedger();
    const b = new ProducerLedger();
    a.recordIncrement(key('d1', 'n'), 3, 'acked');
    b.recordIncrement(key('d1', 'n'), 4, 'acked');
    a.recordMax(key('d1', 'm'), 7, 'acked');
    b.recordMax(key('d1', 'm'), 9, 'ambiguous');
    const merged = mergeLedgers([a.toJSON(), b.toJSON()]);
    expect(merged.increments[key('d1', 'n')]).toEqual({ acked: 7, ambiguous: 0, refused: 0 });
    expect(merged.counts.max).toEqual({ acked: 1, ambiguous: 1, refused: 0 });
    expect(auditLedger(merged, stored({ _id: 'd1', n: 7, m: 9 }))).toMatchObject({
      inc: { lost: 0, doubled: 0 },
      max: { lost: 0, wrong: 0 },
    });
  });

  it('reports nested fields no producer wrote, and ignores _-prefixed bookkeeping such as the marker', () => {
    const audit = auditLedger(new ProducerLedger().toJSON(), stored({ _id: 'd1', _bmi: 4, stats: { stray: 1 } }));
    expect(audit.unexpectedFields).toBe(1);
    expect(audit.problems).toEqual(['unexpected field c|d1|stats.stray = 1: no producer wrote it']);
  });
});
