/**
 * Makes request number `index` of a run from the run's seed: which route, which method, path and query
 * parameters, headers, content type and body, or a malformed HTTP message written byte by byte. Each
 * request draws from its own random stream (`seed`, `index`), so one request is described again by its
 * index; ids reused from earlier answers depend on what the api answered.
 */
import { SeededRandom } from '../chaos/random';
import { DomainValues } from './domain-values';
import {
  deeplyNested,
  FuzzJson,
  JsonSchema,
  jsonText,
  NOT_JSON_NUMBERS,
  randomAscii,
  randomJson,
  randomString,
  randomUnicode,
  SchemaValues,
} from './json-values';
import { percentEncoded } from './percent-encoding';
import { FuzzRoute, routeLabel } from './routes';

export const INCREMENT_ROUTE = 'POST /api/v1/increment';

export interface FuzzRequest {
  index: number;
  /** The route it was made for (`GET /timers/{id}`), `random path` or `malformed HTTP: <how>`. */
  label: string;
  method: string;
  /** Path and query as sent (percent-encoded unless the point is that it is not). */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** A message sent as these bytes on its own connection (malformed HTTP), instead of by the HTTP client. */
  raw?: Buffer;
  /** The `x-request-id` sent, when the api keeps it: the api's log lines carry it. */
  requestId?: string;
  /** For the accounting: what this request asks to add, when it is a POST /api/v1/increment. */
  increment?: { bodyText: string; smuggled: boolean };
}

export interface GeneratorSettings {
  seed: number;
  apiKey: string;
  boardAuthorization: string;
  /** Largest body the api accepts (Fastify bodyLimit). */
  bodyLimit: number;
}

const CONTENT_TYPES = [
  undefined,
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=fuzz',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/json, text/plain',
  'application/xml',
  'application/octet-stream',
  '*/*',
  ';',
  'application/json;',
  'application/',
  'json',
  'application/json; charset="utf-8"; foo=bar',
  'application/jsonx',
];

/** Which kind of request, with its share of a run. */
const KINDS: Array<[kind: string, share: number]> = [
  ['increment', 0.28],
  ['openapi', 0.34],
  ['undocumented', 0.04],
  ['board', 0.08],
  ['wrong-method', 0.05],
  ['random-path', 0.08],
  ['malformed', 0.13],
];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

export class RequestGenerator {
  private readonly values: SchemaValues;
  private readonly byKind: Record<string, FuzzRoute[]>;

  constructor(
    private readonly settings: GeneratorSettings,
    private readonly routes: FuzzRoute[],
    components: Record<string, JsonSchema>,
    private readonly domain: DomainValues,
  ) {
    this.values = new SchemaValues(components, (name, schema, random) => domain.semantic(name, schema, random));
    const increment = routes.filter((route) => routeLabel(route) === INCREMENT_ROUTE);
    if (increment.length !== 1)
      throw new Error(`the OpenAPI document must describe ${INCREMENT_ROUTE} (accounting relies on it)`);
    this.byKind = {
      increment,
      openapi: routes.filter((route) => route.source === 'openapi' && routeLabel(route) !== INCREMENT_ROUTE),
      undocumented: routes.filter((route) => route.source === 'undocumented'),
      board: routes.filter((route) => route.source === 'bull-board'),
    };
  }

  request(index: number): FuzzRequest {
    const random = new SeededRandom(new SeededRandom(this.settings.seed).derive(index).seed);
    const kind = pickWeighted(random, KINDS);
    switch (kind) {
      case 'random-path':
        return this.randomPath(index, random);
      case 'malformed':
        return this.malformed(index, random);
      case 'wrong-method': {
        const route = random.pick(this.routes);
        const method = random.pick(METHODS.filter((candidate) => candidate !== route.method));
        return this.routeRequest(index, random, route, method, `wrong method: ${method} ${route.path}`);
      }
      default: {
        const route = random.pick(this.byKind[kind]);
        return this.routeRequest(index, random, route, route.method, routeLabel(route));
      }
    }
  }

  private routeRequest(
    index: number,
    random: SeededRandom,
    route: FuzzRoute,
    method: string,
    label: string,
  ): FuzzRequest {
    const family = route.path.split('/')[1] ?? '';
    const headers = this.headers(random, route);
    const target = this.target(random, route, family, headers);
    let body: Buffer | undefined;
    let increment: FuzzRequest['increment'];
    if (
      route.body !== undefined && method !== 'GET' && method !== 'HEAD' ? random.next() < 0.95 : random.next() < 0.1
    ) {
      const text = this.bodyText(random, route);
      body = this.encoded(random, text);
      if (random.next() < 0.8) headers['content-type'] = 'application/json';
      else {
        const type = random.pick(CONTENT_TYPES);
        if (type !== undefined) headers['content-type'] = type;
      }
      if (routeLabel(route) === INCREMENT_ROUTE && method === 'POST')
        increment = { bodyText: body.toString('utf8'), smuggled: false };
    } else if (random.next() < 0.05) headers['content-type'] = random.pick(CONTENT_TYPES) ?? 'application/json';
    return {
      index,
      label,
      method,
      target,
      headers,
      body,
      requestId:
        headers['x-request-id'] && /^[\w.:-]{1,128}$/.test(headers['x-request-id'])
          ? headers['x-request-id']
          : undefined,
      increment,
    };
  }

  /** The route's path with its parameters filled in, and a query string. */
  private target(random: SeededRandom, route: FuzzRoute, family: string, headers: Record<string, string>): string {
    const validBoardAuth = headers.authorization === this.settings.boardAuthorization;
    let path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      let value = this.domain.parameter(name, family, random) ?? randomString(random);
      // A route that changes a queue is sent with valid credentials only for a queue that does not exist.
      if (route.boardMutation && validBoardAuth && name === 'queueName' && this.domain.isKnownQueue(value))
        value = `no-such-queue-${value}`;
      return encodePathSegment(random, value);
    });
    if (route.boardMutation && validBoardAuth && !route.path.includes('{queueName}')) delete headers.authorization;
    if (random.next() < 0.05)
      path = random.pick([
        `${path}/`,
        `${path}//`,
        path.toUpperCase(),
        `${path}/..`,
        `/.${path}`,
        `${path}%20`,
        `${path};x=1`,
        `/${path}`,
      ]);
    const query = this.query(random, route, family);
    return query ? `${path}?${query}` : path;
  }

  private query(random: SeededRandom, route: FuzzRoute, family: string): string {
    const pairs: string[] = [];
    for (const parameter of route.parameters.filter((candidate) => candidate.in === 'query')) {
      if (random.next() < 0.5) continue;
      const value =
        this.domain.parameter(parameter.name, family, random) ??
        this.values.valid(parameter.schema, random, parameter.name);
      pairs.push(
        `${parameter.name}=${encodeQueryValue(random, typeof value === 'string' ? value : jsonText(value as FuzzJson))}`,
      );
      if (random.next() < 0.05) pairs.push(`${parameter.name}=${encodeQueryValue(random, randomString(random))}`);
      if (random.next() < 0.05) pairs.push(`${parameter.name}[]=1&${parameter.name}[x]=2`);
    }
    if (random.next() < 0.1) {
      pairs.push(
        random.pick([
          '__proto__[polluted]=1',
          'constructor[prototype][polluted]=1',
          '&&&',
          '=',
          'a',
          '%',
          `x=${'y'.repeat(random.int(1, 10_000))}`,
          `${encodeQueryValue(random, randomString(random))}=${encodeQueryValue(random, randomString(random))}`,
        ]),
      );
    }
    return pairs.join('&');
  }

  private headers(random: SeededRandom, route: FuzzRoute): Record<string, string> {
    const headers: Record<string, string> = {};
    const roll = random.next();
    if (roll < 0.9) headers['x-api-key'] = this.settings.apiKey;
    else if (roll < 0.95) headers['x-api-key'] = latin1(random, randomAscii(random, random.int(0, 300)));
    if (route.access === 'board' || random.next() < 0.02) {
      const auth = random.next();
      if (auth < 0.75) headers.authorization = this.settings.boardAuthorization;
      else if (auth < 0.85)
        headers.authorization = `Basic ${Buffer.from(`admin:${randomAscii(random, random.int(0, 20))}`).toString('base64')}`;
      else if (auth < 0.95)
        headers.authorization = latin1(
          random,
          random.pick([
            'Basic',
            'Basic ',
            'Basic !!!',
            'Bearer x',
            `Basic ${'A'.repeat(5_000)}`,
            'basic YWRtaW46YWRtaW4=',
            randomAscii(random, 40),
          ]),
        );
    }
    headers['x-request-id'] =
      random.next() < 0.85
        ? `fz${this.settings.seed}-${random.int(0, 1e9)}`
        : latin1(random, random.pick([randomAscii(random, random.int(0, 200)), 'x'.repeat(129), '../..', '']));
    if (random.next() < 0.15)
      headers['x-forwarded-for'] = latin1(
        random,
        random.pick([
          '1.2.3.4',
          '::1',
          '127.0.0.1, 10.0.0.1',
          'garbage',
          '999.999.999.999',
          Array.from({ length: 200 }, (_, i) => `10.0.${i}.1`).join(', '),
          randomAscii(random, 40),
        ]),
      );
    if (random.next() < 0.1)
      headers.accept = random.pick(['application/json', '*/*', 'text/html', 'application/xml', 'garbage/;;', '']);
    if (random.next() < 0.05)
      headers['accept-encoding'] = random.pick([
        'gzip',
        'br',
        'deflate',
        'identity;q=0',
        'zstd',
        '*;q=0',
        'x'.repeat(1_000),
      ]);
    if (random.next() < 0.03)
      headers['content-encoding'] = random.pick(['gzip', 'br', 'deflate', 'identity', 'compress', 'garbage']);
    if (random.next() < 0.1 && route.path === '/timers')
      headers['idempotency-key'] = latin1(
        random,
        random.pick([
          randomAscii(random, random.int(1, 40)),
          'x'.repeat(256),
          'has space',
          '',
          `fz-${random.int(0, 20)}`,
        ]),
      );
    if (random.next() < 0.05) headers.range = random.pick(['bytes=0-0', 'bytes=-1', 'bytes=9999999999-', 'garbage']);
    if (random.next() < 0.05) headers.cookie = latin1(random, randomAscii(random, random.int(0, 2_000)));
    for (let extra = random.next() < 0.1 ? random.int(1, 20) : 0; extra > 0; extra -= 1)
      headers[`x-fuzz-${extra}`] = latin1(random, randomAscii(random, random.int(0, 500)));
    return headers;
  }

  private bodyText(random: SeededRandom, route: FuzzRoute): string {
    const schema = route.body ?? {};
    const roll = random.next();
    if (roll < 0.45) return jsonText(this.values.valid(schema, random));
    if (roll < 0.75) return jsonText(this.values.mutated(schema, random));
    if (roll < 0.83) return jsonText(randomJson(random, 4));
    if (roll < 0.87) return deeplyNested(random, random.pick([100, 1_000, 10_000, 100_000])).text;
    if (roll < 0.9) return '';
    if (roll < 0.93) {
      const valid = jsonText(this.values.valid(schema, random));
      return random.pick([
        valid.slice(0, random.int(0, Math.max(0, valid.length - 1))),
        `${valid}${valid}`,
        `${valid},`,
        `[${valid}`,
        random.pick(NOT_JSON_NUMBERS),
        `{"key":"a","value":${random.pick(NOT_JSON_NUMBERS)}}`,
        `{'key':'a','value':1}`,
        `{key:"a",value:1}`,
        `{"key":"a","value":1}\u0000`,
        '\ufeff{"key":"a","value":1}',
        'key=a&value=1',
        randomUnicode(random, random.int(0, 200)),
      ]);
    }
    if (roll < 0.96) return this.bigBody(random);
    // Duplicate fields: JSON parsers disagree on which one counts.
    const valid = jsonText(this.values.valid(schema, random));
    if (!valid.startsWith('{')) return valid;
    return `{"value":${random.int(-5, 5)},"key":${JSON.stringify(this.domain.counterKey(random))},${valid.slice(1)}`;
  }

  /** Near the body limit, over it, or a batch as large as allowed (or one past). */
  private bigBody(random: SeededRandom): string {
    const roll = random.next();
    if (roll < 0.3) return jsonText(this.domain.hugeBatch(random));
    const limit = this.settings.bodyLimit;
    const size = random.pick([limit - 100, limit - 1, limit, limit + 1, Math.floor(limit * 1.5)]);
    if (roll < 0.6)
      return JSON.stringify({
        key: this.domain.counterKey(random),
        value: 1,
        padding: 'x'.repeat(Math.max(0, size - 60)),
      }).slice(0, size);
    const item = `{"key":${JSON.stringify(`${this.domain.keyPrefix}${random.int(0, 39)}`)},"value":1}`;
    return `{"increments":[${Array.from({ length: random.pick([1_000, 1_001, Math.floor(size / (item.length + 1))]) }, () => item).join(',')}]}`;
  }

  /** The body's bytes: UTF-8, now and then with bytes no UTF-8 decoder accepts. */
  private encoded(random: SeededRandom, text: string): Buffer {
    const bytes = Buffer.from(text, 'utf8');
    if (random.next() >= 0.04 || bytes.length === 0) return bytes;
    const bad = random.pick([
      [0xff],
      [0xc3],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0x00],
      [0xef, 0xbb, 0xbf],
    ]);
    const at = random.int(0, bytes.length);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]);
  }

  private randomPath(index: number, random: SeededRandom): FuzzRequest {
    const segments = Array.from({ length: random.int(0, 8) }, () => {
      const roll = random.next();
      if (roll < 0.3)
        return random.pick([
          'api',
          'v1',
          'increment',
          'timers',
          'royalties',
          'builds',
          'health',
          'admin',
          'queues',
          'docs',
          'metrics',
          'users',
          'static',
          '..',
          '.',
          '',
        ]);
      if (roll < 0.6) return encodeURIComponent(randomAscii(random, random.int(1, 20)));
      return encodePathSegment(random, randomString(random));
    });
    let target = `/${segments.join('/')}`;
    if (random.next() < 0.1) target += `/${'a'.repeat(random.pick([2_000, 8_000, 16_000, 70_000]))}`;
    const headers = this.headers(random, {
      method: 'GET',
      path: target,
      parameters: [],
      access: 'api-key',
      source: 'undocumented',
    });
    return {
      index,
      label: 'random path',
      method: random.pick(METHODS),
      target,
      headers,
      requestId: headers['x-request-id'],
    };
  }

  /** A message no HTTP client would send, written as bytes on its own connection. */
  private malformed(index: number, random: SeededRandom): FuzzRequest {
    const route = random.pick(this.routes);
    const base = this.routeRequest(index, random, route, route.method, routeLabel(route));
    const crlf = '\r\n';
    const body = base.body ?? Buffer.alloc(0);
    const headerLines = (headers: Record<string, string>) =>
      Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
    const plainHeaders = { host: '127.0.0.1', connection: 'close', ...base.headers };
    let how: string;
    let head: string[];
    let payload: Buffer = body;
    let smuggled = false;
    switch (random.int(0, 17)) {
      case 0:
        how = 'header value with raw UTF-8, NUL or a bare CR';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `x-odd: ${random.pick(['é😀', 'a\u0000b', 'a\rb', '\u00ff\u0080', randomUnicode(random, 20)])}`,
          `content-length: ${body.length}`,
        ];
        break;
      case 1:
        how = 'invalid header name';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `${random.pick(['bad name', 'bad:name', 'é', '', '(x)', 'x\u0000'])}: 1`,
          `content-length: ${body.length}`,
        ];
        break;
      case 2:
        how = 'headers larger than the server reads';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          random.next() < 0.5
            ? `x-big: ${'b'.repeat(random.pick([16_000, 20_000, 100_000]))}`
            : Array.from({ length: 3_000 }, (_, i) => `x-h${i}: ${i}`).join(crlf),
          `content-length: ${body.length}`,
        ];
        break;
      case 3:
        how = 'two different content-length headers';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
          `content-length: ${body.length + 5}`,
        ];
        break;
      case 4:
        how = 'content-length and transfer-encoding both';
        smuggled = true;
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
          'transfer-encoding: chunked',
        ];
        break;
      case 5:
        how = 'content-length longer than the body';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length + random.int(1, 1_000_000)}`,
        ];
        break;
      case 6:
        how = 'content-length shorter than the body (the rest read as a second request)';
        smuggled = true;
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines({ ...plainHeaders, connection: 'keep-alive' }),
          `content-length: ${Math.max(0, body.length - random.int(1, 20))}`,
        ];
        break;
      case 7:
        how = 'broken chunked encoding';
        head = [`${base.method} ${base.target} HTTP/1.1`, ...headerLines(plainHeaders), 'transfer-encoding: chunked'];
        payload = Buffer.from(
          random.pick([
            `zz${crlf}${body.toString('latin1')}${crlf}0${crlf}${crlf}`,
            `${(body.length + 10).toString(16)}${crlf}${body.toString('latin1')}${crlf}0${crlf}${crlf}`,
            `${body.length.toString(16)};ext="${'x'.repeat(5_000)}"${crlf}${body.toString('latin1')}${crlf}0${crlf}${crlf}`,
            `ffffffffffffffffff${crlf}x${crlf}`,
            `${body.length.toString(16)}${crlf}${body.toString('latin1')}${crlf}`,
            `-1${crlf}x${crlf}0${crlf}${crlf}`,
          ]),
          'latin1',
        );
        break;
      case 8:
        how = 'bare LF line endings';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
        ];
        return this.rawRequest(
          base,
          how,
          Buffer.concat([Buffer.from(`${head.join('\n')}\n\n`, 'latin1'), payload]),
          smuggled,
        );
      case 9:
        how = 'odd HTTP version';
        head = [
          `${base.method} ${base.target} ${random.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1.1', 'http/1.1', 'HTTP/', ''])}`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
        ];
        break;
      case 10:
        how = 'odd method';
        head = [
          `${random.pick(['get', 'G ET', 'FOO', 'CONNECT', 'TRACE', 'PROPFIND', 'M'.repeat(5_000), 'POST\u0000', 'PRI'])} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
        ];
        break;
      case 11:
        how = 'odd request target';
        head = [
          `${base.method} ${random.pick([`http://127.0.0.1${base.target}`, '*', base.target.slice(1) || 'x', `${base.target} extra`, `${base.target}#fragment`, `${base.target}\u0000`, `${base.target}\u00e9\u00ff`, `//${base.target}`, `/%${base.target}`])} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
        ];
        break;
      case 12:
        how = 'long URL';
        head = [
          `${base.method} ${base.target}${base.target.includes('?') ? '&' : '?'}q=${'u'.repeat(random.pick([8_000, 16_500, 65_000, 200_000]))} HTTP/1.1`,
          ...headerLines(plainHeaders),
          `content-length: ${body.length}`,
        ];
        break;
      case 13:
        how = 'random bytes';
        return this.rawRequest(
          base,
          how,
          Buffer.from(Array.from({ length: random.int(1, 4_000) }, () => random.int(0, 255))),
          smuggled,
        );
      case 14:
        how = 'a valid request with garbage pipelined after it';
        smuggled = true;
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines({ ...plainHeaders, connection: 'keep-alive' }),
          `content-length: ${body.length}`,
        ];
        payload = Buffer.concat([body, Buffer.from(`${randomAscii(random, random.int(1, 200))}\r\n\r\n`, 'latin1')]);
        break;
      case 15:
        how = 'obsolete header line folding';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          'x-folded: first',
          ' continued',
          `content-length: ${body.length}`,
        ];
        break;
      case 16:
        how = 'missing, repeated or odd Host header';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(Object.fromEntries(Object.entries(plainHeaders).filter(([name]) => name !== 'host'))),
          ...random.pick([
            [],
            ['host: a', 'host: b'],
            ['host: ' + 'h'.repeat(3_000)],
            ['host: [::1'],
            ['host: 127.0.0.1:99999'],
          ]),
          `content-length: ${body.length}`,
        ];
        break;
      default:
        how = 'expect: 100-continue and a body compressed in name only';
        head = [
          `${base.method} ${base.target} HTTP/1.1`,
          ...headerLines(plainHeaders),
          'expect: 100-continue',
          'content-encoding: gzip',
          `content-length: ${body.length}`,
        ];
        break;
    }
    return this.rawRequest(
      base,
      how,
      Buffer.concat([Buffer.from(`${head.join(crlf)}${crlf}${crlf}`, 'latin1'), payload]),
      smuggled,
    );
  }

  private rawRequest(base: FuzzRequest, how: string, raw: Buffer, smuggled: boolean): FuzzRequest {
    return {
      ...base,
      label: `malformed HTTP: ${how}`,
      raw,
      increment: base.increment ? { ...base.increment, smuggled } : undefined,
    };
  }
}

function pickWeighted(random: SeededRandom, weighted: Array<[string, number]>): string {
  let roll = random.next() * weighted.reduce((sum, [, share]) => sum + share, 0);
  for (const [item, share] of weighted) {
    roll -= share;
    if (roll < 0) return item;
  }
  return weighted[weighted.length - 1][0];
}

/** Percent-encodes a path segment; now and then leaves it broken on purpose. */
function encodePathSegment(random: SeededRandom, value: string): string {
  if (random.next() < 0.05)
    return random.pick([
      '%',
      '%zz',
      '%E0%A4%A',
      '%00',
      '%2F',
      '%2e%2e',
      '%ED%A0%80',
      '%C0%AF',
      value.replace(/[^\x21-\x7e]/g, ''),
    ]);
  return percentEncoded(value);
}

function encodeQueryValue(random: SeededRandom, value: string): string {
  return encodePathSegment(random, value);
}

/** Header values must be Latin-1 for the HTTP client; wider characters go in malformed messages only. */
function latin1(random: SeededRandom, value: string): string {
  const cleaned = value.replace(/[^\x20-\x7e\x80-\xff\t]/g, '');
  return random.next() < 0.5 ? cleaned.trim() : cleaned.replace(/[\x80-\xff]/g, '');
}
