/** What a push reports as it goes, for progress bars, plain logs and `--json`. */

export type PushEvent =
  /** An upload begins; `offset` is where a resumed upload continues. */
  | { type: "blob-start"; digest: string; size: number; mediaType: string; offset: number }
  /** `offset` bytes of the blob are now sent (it moves back if an attempt is restarted). */
  | { type: "blob-progress"; digest: string; offset: number; size: number }
  /** `bytesSent` counts this run's bytes, resent ones included. */
  | { type: "blob-done"; digest: string; size: number; bytesSent: number; seconds: number }
  | { type: "blob-skipped"; digest: string; size: number }
  /** `from` is absent when the registry mounted it by digest alone, from wherever it had it. */
  | { type: "blob-mounted"; digest: string; size: number; from?: string }
  | { type: "blob-retry"; digest: string; failures: number; delayMs: number; error: string }
  | { type: "manifest-pushed"; digest: string; reference: string; mediaType: string };

export type PushEventHandler = (e: PushEvent) => void;
