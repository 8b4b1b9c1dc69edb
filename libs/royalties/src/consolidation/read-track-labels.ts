import type { InputPolicy } from '../inputs/input-policy';
import { readTrackMetadata, TrackRecord } from '../inputs/track-metadata';
import type { ProblemLog } from './problem-log';

/** The track metadata as the streams phase needs it: each track's label, labels numbered by first appearance. */
export interface TrackLabels {
  /** The tracks kept (the first listing of each track id). */
  tracks: TrackRecord[];
  /** Label names by label index. */
  labelNames: string[];
  /** Track id -> label index. */
  trackLabel: Map<string, number>;
  /** Elements that are malformed or repeat a track id. */
  bad: number;
  recoveredFromKeys: boolean;
}

/** Phase 1: reads the track metadata, reporting malformed elements and repeated track ids. */
export async function readTrackLabels(
  location: string,
  policy: InputPolicy,
  problems: ProblemLog,
): Promise<TrackLabels> {
  const metadata = await readTrackMetadata(location, policy);
  const labelIndex = new Map<string, number>();
  const labelNames: string[] = [];
  const trackLabel = new Map<string, number>();
  const tracks: TrackRecord[] = [];
  let bad = metadata.problems.length;
  metadata.problems.forEach(({ element, reason }) => problems.report({ source: 'tracks', element, reason }));
  metadata.tracks.forEach((track) => {
    if (trackLabel.has(track.trackId)) {
      bad++;
      return problems.report({ source: 'tracks', reason: 'track id listed twice (the first is kept)' });
    }
    let label = labelIndex.get(track.label);
    if (label === undefined) label = labelIndex.set(track.label, labelNames.push(track.label) - 1).get(track.label)!;
    trackLabel.set(track.trackId, label);
    tracks.push(track);
  });
  return { tracks, labelNames, trackLabel, bad, recoveredFromKeys: metadata.recoveredFromKeys };
}
