import type { LinkState } from './state-machine.js';

/** What the control API and `linkmux status` show of one link's health (HealthMonitor.status). */
export interface LinkHealthStatus {
  link: string;
  state: LinkState;
  /** When the link entered its state, in clock ms (monotonic, not wall time). */
  since: number;
  /** RTT of the last successful probe round, ms. */
  lastRttMs?: number;
  /** The most recent failure, active or passive. */
  lastFailure?: { reason: string; at: number };
  /** Consecutive failed probe rounds. */
  failStreak: number;
  /** Consecutive successful probe rounds. */
  successStreak: number;
  /** Why the link is in its state (the reason of the last state change); absent until one happened. */
  reason?: string;
}
