import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { parser as jsonTokens } from 'stream-json';
import { BuildInputError, InputRefusedError, InputUnavailableError } from './input-errors';
import { InputPolicy, STRICT_INPUT_POLICY } from './input-policy';
import { openInput } from './input-source';

export interface TrackRecord {
  trackId: string;
  trackName: string;
  label: string;
}

export interface TrackMetadata {
  tracks: TrackRecord[];
  /** The keys were the first track's values (header lost upstream); that track was recovered from them. */
  recoveredFromKeys: boolean;
  /** Array elements that are not objects of three scalar values, by zero-based index. */
  problems: Array<{ element: number; reason: string }>;
}

const EXPECTED_KEYS = ['track_id', 'track_name', 'label'];

/**
 * Reads the track metadata JSON (a local file or an http(s) URL, as the policy allows): an array of
 * objects whose values are, by position, track id, track name and label. Values are read in document
 * order from a token stream, because a plain JSON.parse reorders integer-like keys and would scramble a
 * mangled file's positions. Keys and values arrive in chunks and are assembled here, so one longer than
 * the policy's `maxLineBytes` fails the read before it is held whole.
 */
export async function readTrackMetadata(
  location: string,
  policy: InputPolicy = STRICT_INPUT_POLICY,
): Promise<TrackMetadata> {
  const { stream } = await openInput(location, policy, { what: 'track metadata' });
  const maxBytes = policy.maxLineBytes;
  const objects: Array<{ keys: string[]; values: Array<string | null> } | { invalid: string }> = [];
  let depth = 0;
  let current: { keys: string[]; values: Array<string | null> } | null = null;
  let invalid: string | null = null;
  let sawTopArray = false;
  let text = '';
  let textBytes = 0;
  const scalar = (value: string | null) => {
    if (depth === 2 && current) current.values.push(value);
    else if (depth === 1) objects.push({ invalid: 'not an object' });
  };
  const assembler = new Writable({
    objectMode: true,
    write(token: { name: string; value?: string }, _encoding, callback) {
      switch (token.name) {
        case 'startKey':
        case 'startString':
        case 'startNumber':
          text = '';
          textBytes = 0;
          break;
        case 'stringChunk':
        case 'numberChunk':
          textBytes += Buffer.byteLength(token.value!);
          if (textBytes > maxBytes)
            return callback(
              new BuildInputError(
                `track metadata: a key or value is longer than ${maxBytes} bytes (ROYALTIES_MAX_LINE_BYTES)`,
              ),
            );
          text += token.value;
          break;
        case 'startArray':
        case 'startObject':
          if (depth === 0) {
            if (token.name !== 'startArray')
              return callback(new BuildInputError('track metadata: expected a JSON array of track objects'));
            sawTopArray = true;
          } else if (depth === 1) {
            if (token.name === 'startObject') current = { keys: [], values: [] };
            else invalid = 'not an object';
          } else if (depth === 2) invalid = 'has a nested value';
          depth++;
          break;
        case 'endArray':
        case 'endObject':
          depth--;
          if (depth === 1) {
            objects.push(invalid || !current ? { invalid: invalid ?? 'not an object' } : current);
            current = null;
            invalid = null;
          }
          break;
        case 'endKey':
          if (depth === 2 && current) current.keys.push(text);
          break;
        case 'endString':
        case 'endNumber':
          scalar(text);
          break;
        case 'nullValue':
          scalar(null);
          break;
        case 'trueValue':
        case 'falseValue':
          scalar(token.name === 'trueValue' ? 'true' : 'false');
          break;
      }
      callback();
    },
  });
  try {
    await pipeline(stream, jsonTokens({ packValues: false, streamValues: true }), assembler);
  } catch (error) {
    if (
      error instanceof BuildInputError ||
      error instanceof InputUnavailableError ||
      error instanceof InputRefusedError
    )
      throw error;
    throw new BuildInputError(`track metadata: not valid JSON (${(error as Error).message})`);
  }
  if (!sawTopArray) throw new BuildInputError('track metadata: expected a JSON array of track objects');

  const first = objects.find((object): object is { keys: string[]; values: Array<string | null> } => 'keys' in object);
  const recoveredFromKeys =
    !!first &&
    (first.keys.length !== EXPECTED_KEYS.length ||
      first.keys.some((key, i) => key.trim().toLowerCase() !== EXPECTED_KEYS[i]));
  const tracks: TrackRecord[] = [];
  const problems: TrackMetadata['problems'] = [];
  const accept = (values: Array<string | null>, element: number) => {
    if (values.length !== 3)
      return problems.push({ element, reason: `expected 3 values (track id, name, label), found ${values.length}` });
    const [trackId, trackName, label] = values.map((value) => (value ?? '').trim());
    if (!trackId || !label) return problems.push({ element, reason: 'track id and label must not be empty' });
    tracks.push({ trackId, trackName, label });
  };
  if (recoveredFromKeys && first) accept(first.keys, -1);
  objects.forEach((object, element) =>
    'invalid' in object ? problems.push({ element, reason: object.invalid }) : accept(object.values, element),
  );
  return { tracks, recoveredFromKeys, problems };
}
