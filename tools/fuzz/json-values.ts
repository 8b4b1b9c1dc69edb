/**
 * JSON the fuzzer sends: values valid against a route's OpenAPI schema, the same values mutated, and
 * arbitrary values of every JSON type and size. Values are trees whose leaves may be raw JSON text, so
 * a body can carry number literals JavaScript cannot hold (`9223372036854775808`, `1e400`) and text
 * that is not JSON at all.
 */
import type { SeededRandom } from '../chaos/random';

/** JSON text put into a body verbatim. */
export class RawJson {
  constructor(readonly text: string) {}
}

export type FuzzJson = null | boolean | number | string | RawJson | FuzzJson[] | { [key: string]: FuzzJson };

/** A JSON schema as the api's OpenAPI document writes them (the subset it uses). */
export interface JsonSchema {
  $ref?: string;
  type?: string;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  enum?: unknown[];
  default?: unknown;
}

export function jsonText(value: FuzzJson): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, item]) => `${JSON.stringify(key)}:${jsonText(item)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Strings that break careless handling: odd Unicode, NUL and control characters, operators, paths, markup. */
export const ODD_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0000'.repeat(64),
  '\t\r\n',
  '\u0007\u001b[31m',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\udc00\ud800',
  '\ufeff',
  '\ufeffkey',
  '\u202eevil',
  '\u200b',
  '\u00a0',
  'e\u0301\u0301\u0301',
  'é',
  'ß',
  '😀',
  '👨‍👩‍👧‍👦',
  '\uffff',
  '\ufffe',
  '\u{10ffff}',
  '\u{e0001}',
  'Ω≈ç√∫',
  '𝕏'.repeat(128),
  '\u0300'.repeat(1_000),
  '$where',
  '$inc',
  '$',
  '$$',
  'a.b',
  '.',
  '..',
  '...',
  'a..b',
  '.a',
  'a.',
  '_id',
  '_bmiMarkers',
  '{"$gt":""}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '../../../../etc/passwd',
  '..\\..\\windows',
  '/etc/passwd',
  '%00',
  '%',
  '%zz',
  '%E0%A4%A',
  '%2e%2e%2f',
  '\\',
  '"',
  "'",
  '`',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  "'; DROP TABLE x; --",
  'null',
  'true',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '0x10',
  '1e309',
  ' 1 ',
  '*',
  '?',
  '#',
  '&',
  '=',
  '/',
  '//',
  ';',
  ',',
  '{',
  '}',
  '[',
  ']',
  '\u2028\u2029',
];

/** Number literals of every kind; several are valid JSON that JavaScript reads inexactly. */
export const NUMBER_LITERALS: readonly string[] = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '-0.5',
  '1.0',
  '1.5',
  '0.1',
  '1e2',
  '1E2',
  '-1e2',
  '1e-7',
  '1.0e0',
  '2147483647',
  '2147483648',
  '-2147483649',
  '4294967296',
  '9007199254740991',
  '-9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '-9007199254740993',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '123456789012345678901234567890',
  '1e21',
  '1e308',
  '1.7976931348623157e308',
  '1e309',
  '-1e309',
  '5e-324',
  '1e-400',
  '0.000000000000000000000000000001',
  `1${'0'.repeat(400)}`,
  `0.${'0'.repeat(400)}1`,
];

/** Literals that are not JSON but that lenient parsers take for numbers. */
export const NOT_JSON_NUMBERS: readonly string[] = [
  '00',
  '01',
  '+1',
  '.5',
  '5.',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '1_000',
  '1e',
  '--1',
  '١',
];

export function randomAscii(random: SeededRandom, length: number): string {
  let text = '';
  for (let i = 0; i < length; i += 1) text += String.fromCharCode(random.int(0x20, 0x7e));
  return text;
}

/** Any code unit, surrogates and controls included. */
export function randomUnicode(random: SeededRandom, length: number): string {
  let text = '';
  for (let i = 0; i < length; i += 1) {
    const kind = random.int(0, 5);
    if (kind === 0) text += String.fromCharCode(random.int(0, 0x1f));
    else if (kind === 1) text += String.fromCharCode(random.int(0xd800, 0xdfff));
    else if (kind === 2) text += String.fromCodePoint(random.int(0x10000, 0x10ffff));
    else text += String.fromCharCode(random.int(0x20, 0xfffd));
  }
  return text;
}

/** Lengths across the scale, mostly short. */
export function randomLength(random: SeededRandom): number {
  const roll = random.next();
  if (roll < 0.6) return random.int(0, 16);
  if (roll < 0.85) return random.int(17, 300);
  if (roll < 0.97) return random.int(301, 5_000);
  return random.int(5_001, 70_000);
}

export function randomString(random: SeededRandom): string {
  const roll = random.next();
  if (roll < 0.4) return random.pick(ODD_STRINGS);
  if (roll < 0.7) return randomAscii(random, randomLength(random));
  return randomUnicode(random, randomLength(random));
}

export function randomNumber(random: SeededRandom): FuzzJson {
  const roll = random.next();
  if (roll < 0.5) return new RawJson(random.pick(NUMBER_LITERALS));
  if (roll < 0.8) return random.int(-1_000_000, 1_000_000);
  return random.between(-1e12, 1e12);
}

/** Any JSON value, up to `depth` levels of arrays and objects. */
export function randomJson(random: SeededRandom, depth = 3): FuzzJson {
  const kind = random.int(0, depth > 0 ? 7 : 4);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random.next() < 0.5;
    case 2:
      return randomNumber(random);
    case 3:
    case 4:
      return randomString(random);
    case 5:
      return Array.from({ length: random.int(0, random.next() < 0.9 ? 5 : 300) }, () => randomJson(random, depth - 1));
    default: {
      const object: Record<string, FuzzJson> = {};
      for (let i = random.int(0, 6); i > 0; i -= 1) object[randomString(random)] = randomJson(random, depth - 1);
      return object;
    }
  }
}

/** Arrays or objects nested `depth` deep, as text (a tree that deep would overflow the serializer's stack). */
export function deeplyNested(random: SeededRandom, depth: number): RawJson {
  if (random.next() < 0.5) return new RawJson(`${'['.repeat(depth)}${']'.repeat(depth)}`);
  return new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}

/** A value for a property the fuzzer knows the meaning of (a counter key, a webhook URL, ...). */
export type SemanticValues = (name: string, schema: JsonSchema, random: SeededRandom) => FuzzJson | undefined;

export class SchemaValues {
  constructor(
    private readonly components: Record<string, JsonSchema>,
    private readonly semantic: SemanticValues,
  ) {}

  resolve(schema: JsonSchema): JsonSchema {
    if (!schema.$ref) return schema;
    const name = schema.$ref.split('/').pop()!;
    const resolved = this.components[name];
    if (!resolved) throw new Error(`the OpenAPI document has no schema ${schema.$ref}`);
    return resolved;
  }

  /** A value the schema accepts (the semantic hints may deliberately step outside it). */
  valid(schemaOrRef: JsonSchema, random: SeededRandom, name = ''): FuzzJson {
    const schema = this.resolve(schemaOrRef);
    const alternatives = schema.oneOf ?? schema.anyOf;
    if (alternatives) return this.valid(random.pick(alternatives), random, name);
    const known = this.semantic(name, schema, random);
    if (known !== undefined) return known;
    if (schema.enum) return random.pick(schema.enum) as FuzzJson;
    switch (schema.type) {
      case 'object': {
        const object: Record<string, FuzzJson> = {};
        for (const [property, propertySchema] of Object.entries(schema.properties ?? {})) {
          if (schema.required?.includes(property) || random.next() < 0.8)
            object[property] = this.valid(propertySchema, random, property);
        }
        return object;
      }
      case 'array': {
        const min = schema.minItems ?? 0;
        const max = Math.min(schema.maxItems ?? 20, random.next() < 0.95 ? min + 20 : Infinity);
        return Array.from({ length: random.int(min, Math.max(min, max)) }, () =>
          this.valid(schema.items ?? {}, random, name),
        );
      }
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? -1_000;
        const max = schema.maximum ?? 1_000;
        const roll = random.next();
        if (roll < 0.1) return min;
        if (roll < 0.2) return max;
        return random.int(Math.max(min, -1_000), Math.min(max, 1_000));
      }
      case 'string': {
        if (schema.pattern === '^[0-9a-f]{24}$' || schema.pattern === '^[a-f0-9]{24}$') return hex24(random);
        const min = schema.minLength ?? 0;
        const max = Math.min(schema.maxLength ?? 40, 40);
        return randomAscii(random, random.int(min, Math.max(min, max)));
      }
      case 'boolean':
        return random.next() < 0.5;
      default:
        return randomJson(random, 2);
    }
  }

  /** A valid value with one or a few things wrong in it: a type, a bound, a missing or extra field. */
  mutated(schemaOrRef: JsonSchema, random: SeededRandom, name = ''): FuzzJson {
    let value = this.valid(schemaOrRef, random, name);
    for (let edits = random.int(1, 3); edits > 0; edits -= 1)
      value = this.mutateOnce(value, this.resolve(schemaOrRef), random);
    return value;
  }

  private mutateOnce(value: FuzzJson, schema: JsonSchema, random: SeededRandom): FuzzJson {
    if (Array.isArray(value)) {
      const roll = random.next();
      if (roll < 0.15) return [];
      if (roll < 0.25 && schema.maxItems !== undefined)
        return Array.from({ length: schema.maxItems + 1 }, (_, i) => value[i % Math.max(1, value.length)] ?? null);
      if (roll < 0.35) return randomJson(random, 2);
      if (value.length === 0) return [randomJson(random, 1)];
      const at = random.int(0, value.length - 1);
      const copy = [...value];
      copy[at] = this.mutateOnce(copy[at], this.resolve(schema.items ?? {}), random);
      return copy;
    }
    if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
      const copy = { ...value };
      const keys = Object.keys(copy);
      const roll = random.next();
      if (roll < 0.15 && keys.length) delete copy[random.pick(keys)];
      else if (roll < 0.3)
        copy[random.next() < 0.5 ? randomString(random) : random.pick(['__proto__', 'constructor', '$set', 'extra'])] =
          randomJson(random, 1);
      else if (roll < 0.38) return random.pick([null, [], 'text', 0, true, [value]]);
      else if (keys.length) {
        const key = random.pick(keys);
        copy[key] = this.mutateOnce(copy[key], this.resolve(schema.properties?.[key] ?? {}), random);
      } else copy[randomString(random)] = randomJson(random, 1);
      return copy;
    }
    if (typeof value === 'string') {
      const roll = random.next();
      if (roll < 0.3) return randomString(random);
      if (roll < 0.4 && schema.maxLength !== undefined) return 'x'.repeat(schema.maxLength + 1);
      if (roll < 0.5) return `${value}${random.pick(ODD_STRINGS)}`;
      if (roll < 0.6) return value.repeat(random.int(2, 400));
    }
    if (typeof value === 'number' || value instanceof RawJson) {
      const roll = random.next();
      if (roll < 0.5) return new RawJson(random.pick(NUMBER_LITERALS));
      if (roll < 0.6 && schema.minimum !== undefined) return schema.minimum - 1;
      if (roll < 0.7 && schema.maximum !== undefined) return schema.maximum + 1;
      if (roll < 0.8) return String(value instanceof RawJson ? value.text : value);
    }
    return randomJson(random, 2);
  }
}

export function hex24(random: SeededRandom): string {
  let id = '';
  for (let i = 0; i < 24; i += 1) id += '0123456789abcdef'[random.int(0, 15)];
  return id;
}
