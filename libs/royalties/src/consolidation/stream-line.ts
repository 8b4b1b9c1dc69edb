/** One line of the streams CSV, as its fields are read: what a tally adds up and a consolidated page shows. */
export interface StreamLine {
  date: string;
  userId: string;
  region: string;
  trackId: string;
  seconds: number;
}

/** One data line of the streams CSV, or the reason it is malformed. */
export function readStreamLine(fields: string[]): StreamLine | string {
  const stream: StreamLine = { date: '', userId: '', region: '', trackId: '', seconds: 0 };
  return readStreamFields(fields, stream) ?? stream;
}

/**
 * Validates a streams CSV data line into `into` (reused across lines); the reason it is malformed, or null.
 * Reasons name the field, never its content: they reach the build's status and error, and an input
 * that is not what it claims to be (another file, an internal page) must not come back through them.
 */
export function readStreamFields(fields: string[], into: StreamLine): string | null {
  if (fields.length !== 5) return `expected 5 fields separated by ';', found ${fields.length}`;
  // trim() returns the field itself when there is nothing to trim, so clean lines allocate nothing here.
  const date = fields[0].trim();
  if (dayMonthYear(date) < 0) return 'date is not a day/month/year date';
  const userId = fields[1].trim();
  if (!userId) return 'user_id is empty';
  const region = fields[2].trim();
  if (!region) return 'region is empty';
  const trackId = fields[3].trim();
  if (!trackId) return 'track id is empty';
  const seconds = parseSeconds(fields[4]);
  if (seconds < 0) return 'seconds is not a non-negative integer';
  into.date = date;
  into.userId = userId;
  into.region = region;
  into.trackId = trackId;
  into.seconds = seconds;
  return null;
}

/**
 * Digits only, at most 15 (exact in a double), with surrounding whitespace allowed (a CRLF line's CR
 * ends its last field); -1 otherwise. Char codes: this runs once per stream line.
 */
function parseSeconds(field: string): number {
  const text =
    isDigitCode(field.charCodeAt(0)) && isDigitCode(field.charCodeAt(field.length - 1)) ? field : field.trim();
  const length = text.length;
  if (length === 0 || length > 15) return -1;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function isDigitCode(code: number): boolean {
  return code >= 48 && code <= 57;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `d/m/yyyy` (day and month of one or two digits) packed as yyyymmdd, or -1 when it is not a calendar
 * date. Char codes and no allocation: this runs once per stream line.
 */
function dayMonthYear(text: string): number {
  const firstSlash = text.indexOf('/');
  const secondSlash = text.indexOf('/', firstSlash + 1);
  if (
    firstSlash < 1 ||
    firstSlash > 2 ||
    secondSlash - firstSlash < 2 ||
    secondSlash - firstSlash > 3 ||
    text.length - secondSlash !== 5
  )
    return -1;
  const day = digitsValue(text, 0, firstSlash);
  const month = digitsValue(text, firstSlash + 1, secondSlash);
  const year = digitsValue(text, secondSlash + 1, text.length);
  if (day < 1 || month < 1 || month > 12 || year < 0 || day > DAYS_IN_MONTH[month - 1]) return -1;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return -1;
  return year * 10_000 + month * 100 + day;
}

function digitsValue(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** `01/03/2019` (day/month/year) -> `2019-03-01`; null when not a calendar date. */
export function dayMonthYearToIso(text: string): string | null {
  const packed = dayMonthYear(text.trim());
  if (packed < 0) return null;
  const digits = String(packed).padStart(8, '0');
  return `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6)}`;
}
