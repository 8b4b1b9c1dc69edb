import { dayMonthYearToIso, readStreamLine } from './stream-line';

describe('stream line fields', () => {
  it('reads day/month/year calendar dates and nothing else', () => {
    expect(dayMonthYearToIso('01/03/2019')).toBe('2019-03-01');
    expect(dayMonthYearToIso('1/3/2019')).toBe('2019-03-01');
    expect(dayMonthYearToIso('29/02/2020')).toBe('2020-02-29');
    expect(dayMonthYearToIso(' 31/12/2019 ')).toBe('2019-12-31');
    for (const bad of [
      '29/02/2019',
      '31/04/2019',
      '00/01/2019',
      '01/13/2019',
      '2019/03/01',
      '01/03/19',
      '01-03-2019',
      '001/03/2019',
      '1//2019',
      'a1/03/2019',
      '',
    ]) {
      expect(dayMonthYearToIso(bad)).toBeNull();
    }
  });

  it('accepts non-negative integer seconds only', () => {
    const line = (seconds: string) => readStreamLine(['01/03/2019', 'u1', 'nl', 't1', seconds]);
    expect(line('0')).toMatchObject({ seconds: 0 });
    expect(line(' 215 ')).toMatchObject({ seconds: 215, region: 'nl' });
    for (const bad of ['-1', '1.5', '1e3', '', 'abc', '1234567890123456']) expect(typeof line(bad)).toBe('string');
  });
});
