/**
 * When to suspect the probe targets rather than the links: a pure decision over
 * what the monitor knows of every link's latest probe rounds.
 *
 * The targets are suspect when every monitored link's latest counted round
 * failed (no link reaches them now) and at least one link has failed
 * `failThreshold` rounds in a row (the point where it would go offline). A
 * network that blocks the targets looks exactly like that, while a link that
 * really broke fails alone: the others' rounds keep succeeding. Links added a
 * moment ago with no round yet are not evidence either way, so they hold the
 * suspicion back until their first round (a broken link then goes offline by
 * the ordinary rule and is moved to unverified at its next failed round).
 *
 * A lone link is never suspect. Its failing probes cannot be told from a dead
 * link, and the new default targets include this system's DNS servers, which
 * a network that blocks the public anycast hosts still answers; so one link
 * keeps the ordinary rule (offline), and the monitor logs a hint to set
 * health.targets. (Calling it unverified would turn the clear, immediate
 * LINKMUX_ERR_NO_LINKS of a dead single uplink into a 10 s connect timeout.)
 */

export interface ProbeView {
  /** Consecutive failed rounds (0 after a success). */
  failStreak: number;
  /** True once at least one round was counted for the link. */
  probed: boolean;
}

export function targetsSuspect(links: readonly ProbeView[], failThreshold: number): boolean {
  if (links.length < 2) return false;
  const fail = Math.max(1, failThreshold);
  return links.every((l) => l.probed && l.failStreak > 0) && links.some((l) => l.failStreak >= fail);
}

/** The reason shown for unverified links, and the one warning's text. */
export function suspectReason(targets: readonly string[]): string {
  return (
    `every link failed its probes to ${targets.join(', ')}: the probe targets look unreachable ` +
    'on this network (blocked?); set health.targets to hosts reachable from here'
  );
}
