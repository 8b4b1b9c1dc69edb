import { STRICT_INPUT_POLICY } from '../inputs/input-policy';
import { attributeToLabels } from './attribute-to-labels';
import type { BuildInputs, Consolidation, ConsolidationOptions } from './consolidation';
import { mergeStreamTallies } from './merge-stream-tallies';
import { ProblemLog } from './problem-log';
import { ProgressWatch } from './progress-watch';
import { readTrackLabels } from './read-track-labels';
import { readUsers } from './read-users';
import { summariseRevenue } from './summarise-revenue';
import { tallyContext, tallyStreamsInput } from './tally-streams-input';

/**
 * Turns the three inputs into per-user seconds, per-label seconds and payouts, and revenue. Memory is
 * bounded by users, tracks and labels: the tracks and users are loaded first, then the streams file is
 * streamed once and only accumulated. Parsing runs chunk by chunk, so the event loop keeps turning.
 * Each input is judged as soon as it is read: too many malformed lines fail the build before the next.
 */
export async function consolidateRoyalties(inputs: BuildInputs, options: ConsolidationOptions): Promise<Consolidation> {
  const problems = new ProblemLog(options.maxReportedProblems ?? 100);
  const watch = new ProgressWatch(options);
  const policy = options.inputPolicy ?? STRICT_INPUT_POLICY;
  const maxShare = options.maxBadLineShare;

  watch.startPhase('tracks', null);
  await watch.checkpoint(true);
  const trackLabels = await readTrackLabels(inputs.tracks, policy, problems);
  const { bad: badTracks, tracks } = trackLabels;
  problems.failOnBadShare('track metadata elements', badTracks, badTracks + tracks.length, maxShare, 'tracks');

  const { ledger, counts: users, fees } = await readUsers(inputs.usersCsv, policy, watch, problems);
  problems.failOnBadShare('users CSV lines', users.bad, users.lines, maxShare, 'users');

  const context = tallyContext(trackLabels, problems, policy.maxLineBytes);
  const { tallies, streamsInput } = await tallyStreamsInput(inputs.streamsCsv, policy, context, ledger, watch, options);
  const { counts: streams, labelSeconds } = mergeStreamTallies(tallies, ledger, context.labelCount, problems);
  problems.failOnBadShare('streams CSV lines', streams.bad, streams.lines, maxShare, 'streams');

  const { revenue, totalCents } = summariseRevenue(fees);
  const { labels, unallocatedCents } = attributeToLabels(totalCents, trackLabels.labelNames, labelSeconds);
  return {
    ledger,
    tracks,
    labels,
    revenue,
    unallocatedCents,
    counts: {
      users,
      streams,
      tracks: { count: tracks.length, bad: badTracks, recoveredFromKeys: trackLabels.recoveredFromKeys },
    },
    problems: problems.reported,
    problemCount: problems.count,
    streamsInput,
  };
}
