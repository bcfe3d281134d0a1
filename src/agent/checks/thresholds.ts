/**
 * Consul's success/failure thresholds, as a small state machine fed one raw result at a
 * time: a check flips to passing only after `successBeforePassing` successes in a row and
 * to critical only after `failuresBeforeCritical` failures in a row, so one blip does not
 * flap the service in and out of load balancing. Warning is reported at once (the service
 * says it is degraded, not that a probe was unlucky) and breaks both runs.
 */
import type { CheckStatus } from './types.js';

export class StatusFilter {
  #current: CheckStatus;
  #successes = 0;
  #failures = 0;

  readonly #successBeforePassing: number;
  readonly #failuresBeforeCritical: number;

  constructor(successBeforePassing: number, failuresBeforeCritical: number, initial: CheckStatus = 'critical') {
    this.#successBeforePassing = successBeforePassing;
    this.#failuresBeforeCritical = failuresBeforeCritical;
    this.#current = initial;
  }

  /** The status to report. */
  get status(): CheckStatus {
    return this.#current;
  }

  get consecutiveSuccesses(): number {
    return this.#successes;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Feeds one run's raw status; returns the status to report after it. */
  observe(raw: CheckStatus): CheckStatus {
    switch (raw) {
      case 'passing':
        this.#successes++;
        this.#failures = 0;
        if (this.#successes >= this.#successBeforePassing) this.#current = 'passing';
        break;
      case 'critical':
        this.#failures++;
        this.#successes = 0;
        if (this.#failures >= this.#failuresBeforeCritical) this.#current = 'critical';
        break;
      case 'warning':
        this.#successes = 0;
        this.#failures = 0;
        this.#current = 'warning';
        break;
    }
    return this.#current;
  }
}
