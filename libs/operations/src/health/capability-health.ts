/**
 * A check a capability adds to `/health/ready`'s details and to `health_check_up{check}`: operations
 * finds every provider extending this class and runs its `probe` with the datastore checks. Capability
 * checks never take a replica out of rotation (only Redis decides readiness); they tell an operator
 * that a capability falls behind.
 */
export abstract class CapabilityHealth {
  /** The check's name: its key in the details and its `check` label. */
  abstract readonly check: string;

  /** Resolves with the check's details when it passes; throws (`HealthCheckFailed` for details) when not. */
  abstract probe(): Promise<Record<string, unknown>>;
}

/** A failed check, with the figures that show why. */
export class HealthCheckFailed extends Error {
  constructor(
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
  }
}
