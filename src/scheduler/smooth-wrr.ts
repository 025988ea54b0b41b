/**
 * Smooth weighted round-robin, as nginx does it: on each pick every entry's
 * current weight grows by its weight, the largest current weight wins (the
 * first on a tie) and the winner gives back the total. Used by the weighted
 * policy (one pick per connection) and the gateway (a whole cycle, laid out
 * as an nft map).
 *
 * Guarantees: pure apart from the `current` array it is handed; over W picks
 * (W = sum of weights) with fixed weights each entry wins exactly its weight,
 * spread out rather than in bursts (5,1,1 gives a a b a c a a; 2,1,1 gives
 * a b a c); an entry of weight 0 never wins.
 */

/** One pick: updates `current` in place and returns the winner's index, or -1 when no weight is positive. */
export function smoothPick(weights: readonly number[], current: number[]): number {
  let total = 0;
  let best = -1;
  weights.forEach((w, i) => {
    current[i] = (current[i] ?? 0) + w;
    total += w;
    if (w > 0 && (best < 0 || (current[i] ?? 0) > (current[best] ?? 0))) best = i;
  });
  if (best >= 0) current[best] = (current[best] ?? 0) - total;
  return best;
}

/** One whole cycle: an index per unit of weight (length = the sum of the weights). */
export function smoothSequence(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  return Array.from({ length: total }, () => smoothPick(weights, current));
}
