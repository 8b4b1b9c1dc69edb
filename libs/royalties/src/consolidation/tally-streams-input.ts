import { setTimeout as sleep } from 'node:timers/promises';
import type { InputPolicy } from '../inputs/input-policy';
import { openInput } from '../inputs/input-source';
import type { Consolidation, ConsolidationOptions } from './consolidation';
import { checkHeader, fileSize, readFirstLine, STREAMS_HEADER, streamCsv } from './csv-input';
import type { ProblemLog } from './problem-log';
import type { ProgressWatch } from './progress-watch';
import type { TrackLabels } from './read-track-labels';
import { SharedUserIndex } from './shared-user-index';
import { RangeUsers, StreamTally, StreamTallyResult, TallyContext } from './stream-tally';
import { lineAlignedRanges, tallyRange, tallyRangesInThreads } from './streams-ranges';
import type { UserLedger } from './user-ledger';

/** What every tally of the streams file gets: track -> label, and room for the problems still kept. */
export function tallyContext(labels: TrackLabels, problems: ProblemLog, maxLineBytes: number): TallyContext {
  const labelTracks = [...labels.trackLabel];
  return {
    trackIds: labelTracks.map(([trackId]) => trackId),
    trackLabels: Int32Array.from(labelTracks, ([, label]) => label),
    labelCount: labels.labelNames.length,
    maxReportedProblems: problems.room,
    maxLineBytes,
  };
}

/**
 * Phase 3: tallies the streams file. A large local file is cut in byte ranges of whole lines: this thread
 * reads the first, worker threads the others, each summing per ledger position through one shared index
 * of the users file's ids (and by id for users missing from it); mergeStreamTallies adds the tallies to
 * the ledger. Progress and cancellation are checked between this thread's chunks, then while it waits.
 * Otherwise (a URL, a small file, one thread configured) this thread reads it all, into the ledger.
 * The tallies come back in file order.
 */
export async function tallyStreamsInput(
  location: string,
  policy: InputPolicy,
  context: TallyContext,
  ledger: UserLedger,
  watch: ProgressWatch,
  options: Pick<ConsolidationOptions, 'streamThreads' | 'minBytesPerThread' | 'checkIntervalMs'>,
): Promise<{ tallies: StreamTallyResult[]; streamsInput: Consolidation['streamsInput'] }> {
  const what = 'streams CSV';
  const threads = Math.max(
    1,
    Math.min(
      options.streamThreads ?? 1,
      Math.floor((await fileSize(location, policy)) / (options.minBytesPerThread ?? 16 * 1024 * 1024)),
    ),
  );
  if (threads < 2) {
    const tally = new StreamTally(context, ledger);
    const streamsInput = await streamCsv(
      location,
      policy,
      'streams',
      what,
      STREAMS_HEADER,
      watch,
      (rows, _firstLine, skip) => tally.addRows(rows, skip),
    );
    return { tallies: [tally.result()], streamsInput };
  }
  const input = await openInput(location, policy, { what });
  input.stream.destroy();
  // The file the policy allowed, symlinks resolved: the ranges and threads read that one.
  const path = input.path!;
  watch.startPhase('streams', input.sizeBytes);
  checkHeader(await readFirstLine(path, policy.maxLineBytes, what), STREAMS_HEADER, what);
  const [first, ...rest] = await lineAlignedRanges(path, input.sizeBytes!, threads);
  const countChunk = (bytes: number, lines: number) => {
    watch.rowsRead += lines;
    watch.addBytes(bytes);
  };
  // The ledger holds the users file's users only (positions 0 to size - 1): unlisted ones are added by the merge.
  const listed = SharedUserIndex.build(ledger.ids());
  const others = tallyRangesInThreads(path, rest, context, listed, countChunk);
  others.results.catch(() => undefined); // awaited below; a failure also ends this thread's reading
  try {
    // This thread reads the first range while the others run, through the same shared index (a lookup
    // there costs about a third of a `Map` lookup of a freshly parsed id); merged like the others.
    const firstTally = await tallyRange(
      { path, range: first, skipLines: 1, context },
      async (bytes, lines) => {
        countChunk(bytes, lines);
        await watch.checkpoint(false);
      },
      new RangeUsers(listed),
    );
    const interval = Math.max(20, options.checkIntervalMs ?? 500);
    let finished = false;
    const settled = others.results.then(
      () => void (finished = true),
      () => void (finished = true),
    );
    while (!finished) {
      await Promise.race([settled, sleep(interval)]);
      if (!finished) await watch.checkpoint(false);
    }
    const tallies = [firstTally, ...(await others.results)];
    await watch.checkpoint(true);
    return { tallies, streamsInput: { sizeBytes: input.sizeBytes, modifiedMs: input.modifiedMs } };
  } catch (error) {
    others.stop(error as Error);
    throw error;
  }
}
