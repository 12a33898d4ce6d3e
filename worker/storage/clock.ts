/**
 * Time as the storage layer sees it: the wall clock and a way to wait. The interleaving harness
 * substitutes a logical clock and turns every wait into a scheduling point.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
