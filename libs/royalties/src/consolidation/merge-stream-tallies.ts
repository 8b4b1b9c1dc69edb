import type { BuildCounts } from './consolidation';
import type { ProblemLog } from './problem-log';
import { SAMPLE_SIZE, StreamTallyResult } from './stream-tally';
import type { UserLedger } from './user-ledger';

export interface StreamsTallied {
  counts: BuildCounts['streams'];
  /** Seconds streamed per label index: the weights of the payout split. */
  labelSeconds: Float64Array;
}

/**
 * Phase 3, merge: adds the tallies to the ledger and to the label seconds, and their problems to the log,
 * in file order, so first appearances, samples and problems come out as one pass would give them.
 */
export function mergeStreamTallies(
  tallies: StreamTallyResult[],
  ledger: UserLedger,
  labelCount: number,
  problems: ProblemLog,
): StreamsTallied {
  const labelSeconds = new Float64Array(labelCount);
  const streams: BuildCounts['streams'] = {
    lines: 0,
    valid: 0,
    bad: 0,
    blank: 0,
    seconds: 0,
    unknownTrackStreams: 0,
    unknownTrackSeconds: 0,
    unknownTrackSample: [],
    unknownUserStreams: 0,
    unknownUsers: 0,
    unknownUserSample: [],
  };
  let lineOffset = 0;
  for (const tally of tallies) {
    streams.lines += tally.lines;
    streams.valid += tally.valid;
    streams.bad += tally.bad;
    streams.blank += tally.blank;
    streams.seconds += tally.seconds;
    streams.unknownTrackStreams += tally.unknownTrackStreams;
    streams.unknownTrackSeconds += tally.unknownTrackSeconds;
    for (const trackId of tally.unknownTrackSample) {
      if (streams.unknownTrackSample.length < SAMPLE_SIZE && !streams.unknownTrackSample.includes(trackId))
        streams.unknownTrackSample.push(trackId);
    }
    for (let label = 0; label < labelSeconds.length; label++) labelSeconds[label] += tally.labelSeconds[label];
    // A thread's sums: by ledger position for the users file's users, then by id for the others.
    for (let user = 0; user < tally.listedUsers; user++) {
      ledger.seconds[user] += tally.userSeconds[user];
      ledger.streams[user] += tally.userStreams[user];
    }
    tally.unlistedIds.forEach((userId, k) => {
      const user = ledger.indexOf(userId) ?? ledger.addUnlisted(userId);
      ledger.seconds[user] += tally.userSeconds[tally.listedUsers + k];
      ledger.streams[user] += tally.userStreams[tally.listedUsers + k];
    });
    tally.problems.forEach(({ line, reason }) =>
      problems.report({ source: 'streams', line: lineOffset + line, reason }),
    );
    problems.countUnreported(tally.problemCount - tally.problems.length);
    lineOffset += tally.physicalLines;
  }
  streams.unknownUsers = ledger.unlistedCount;
  streams.unknownUserSample = ledger.unlistedSample.slice(0, SAMPLE_SIZE);
  for (let user = 0; user < ledger.size; user++)
    if (ledger.origin[user] === 0) streams.unknownUserStreams += ledger.streams[user];
  return { counts: streams, labelSeconds };
}
