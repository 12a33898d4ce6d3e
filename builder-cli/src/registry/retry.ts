/**
 * Retrying what may succeed a moment later: network errors, 5xx, 408 and 429. Delays grow
 * exponentially with full jitter (a random delay up to the cap), so parallel uploads that failed
 * together do not come back together; a server's Retry-After is honoured when it asks for longer.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** An error that says whether trying again may help, and after how long at least. */
export interface MaybeTransient {
  transient?: boolean;
  retryAfterMs?: number;
}

export function isTransient(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  if ((e as MaybeTransient).transient !== undefined) return (e as MaybeTransient).transient === true;
  // undici's fetch fails with a TypeError for every network error (Transport unwraps the
  // ones caused by a failing body stream into their SourceError, which is final).
  return e instanceof TypeError;
}

export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A failure reading the bytes to upload: local, so never retried. */
export class SourceError extends Error {
  override readonly cause: unknown;
  constructor(message: string, cause?: unknown) {
    super(message);
    this.name = "SourceError";
    this.cause = cause;
  }
}

export function backoffDelay(policy: RetryPolicy, failures: number, retryAfterMs?: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
  const jittered = Math.random() * cap;
  return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: () => Promise<T>,
  onRetry?: (error: unknown, failures: number, delayMs: number) => void,
): Promise<T> {
  for (let failures = 0; ;) {
    try {
      return await attempt();
    } catch (e) {
      failures++;
      if (!isTransient(e) || failures >= policy.attempts) throw e;
      const delay = backoffDelay(policy, failures, (e as MaybeTransient).retryAfterMs);
      onRetry?.(e, failures, delay);
      await sleep(delay);
    }
  }
}
