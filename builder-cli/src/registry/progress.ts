/**
 * Push progress for people: on a TTY one cli-progress bar per running upload (bytes, rate, ETA),
 * with finished blobs logged above the bars; elsewhere (CI logs, pipes) plain lines, plus a line
 * every few seconds for each long upload so a log shows it is alive.
 *
 * Progress events count bytes handed to the socket, which runs ahead of the registry by whatever
 * the buffers hold (a whole small blob at once). So an upload is shown at 99 % at most until the
 * registry has answered for it (blob-done): a bar never sits at 100 % while the upload goes on.
 */
import { MultiBar, Presets, type SingleBar } from "cli-progress";
import { formatBytes, shortDigest } from "../../../core/format.ts";
import type { PushEvent } from "./events.ts";
import type { PushReport } from "./image.ts";

export interface ProgressReporter {
  onEvent(e: PushEvent): void;
  /** Stops the bars; call it whether the push succeeded or not. */
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Defaults to whether the stream is a TTY. */
  tty?: boolean;
  /** Plain mode: the least time between two progress lines of one blob. */
  plainIntervalMs?: number;
}

export function createProgressReporter(opts: ProgressOptions = {}): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  return (opts.tty ?? stream.isTTY === true)
    ? new BarReporter(stream)
    : new LineReporter((line) => stream.write(`${line}\n`), opts.plainIntervalMs ?? 10_000);
}

export function formatSeconds(s: number): string {
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** Bytes to show for an upload in flight: what was sent, held below 100 % until the registry answers. */
export function shownOffset(offset: number, size: number): number {
  return Math.min(offset, Math.floor(size * 0.99));
}

function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : "-";
}

/** The one-line outcome of a push. */
export function formatReport(r: PushReport): string {
  const parts = [`${r.blobsUploaded} uploaded (${formatBytes(r.bytesUploaded)})`, `${r.blobsSkipped} already there`];
  if (r.blobsMounted) parts.push(`${r.blobsMounted} mounted (${formatBytes(r.bytesMounted)} not sent)`);
  return `pushed ${r.digest}: ${r.blobsTotal} blobs, ${parts.join(", ")} in ${formatSeconds(r.seconds)}`;
}

/** Lines shared by both reporters; undefined for events only bars show. */
function lineFor(e: PushEvent): string | undefined {
  switch (e.type) {
    case "blob-skipped":
      return `skipped  ${shortDigest(e.digest)} ${formatBytes(e.size)} (exists)`;
    case "blob-mounted":
      return `mounted  ${shortDigest(e.digest)} ${formatBytes(e.size)} ${e.from ? `from ${e.from}` : "(the registry had it)"}`;
    case "blob-done":
      return `uploaded ${shortDigest(e.digest)} ${formatBytes(e.size)} in ${formatSeconds(e.seconds)} (${formatRate(e.bytesSent, e.seconds)})`;
    case "blob-retry":
      return `retrying ${shortDigest(e.digest)} in ${formatSeconds(e.delayMs / 1000)} (failure ${e.failures}): ${e.error}`;
    case "manifest-pushed":
      return `manifest ${shortDigest(e.digest)} as ${e.reference.startsWith("sha256:") ? "digest" : e.reference}`;
    default:
      return undefined;
  }
}

class LineReporter implements ProgressReporter {
  readonly #write: (line: string) => void;
  readonly #intervalMs: number;
  readonly #lastLine = new Map<string, number>();

  constructor(write: (line: string) => void, intervalMs: number) {
    this.#write = write;
    this.#intervalMs = intervalMs;
  }

  onEvent(e: PushEvent): void {
    if (e.type === "blob-start") {
      this.#lastLine.set(e.digest, Date.now());
      const resumed = e.offset > 0 ? `, resuming at ${formatBytes(e.offset)}` : "";
      this.#write(`pushing  ${shortDigest(e.digest)} ${formatBytes(e.size)}${resumed}`);
      return;
    }
    if (e.type === "blob-progress") {
      const last = this.#lastLine.get(e.digest) ?? 0;
      if (Date.now() - last < this.#intervalMs) return;
      this.#lastLine.set(e.digest, Date.now());
      const shown = shownOffset(e.offset, e.size);
      const percent = e.size > 0 ? Math.floor((shown / e.size) * 100) : 0;
      this.#write(`pushing  ${shortDigest(e.digest)} ${formatBytes(shown)} of ${formatBytes(e.size)} (${percent}%)`);
      return;
    }
    if (e.type === "blob-done") this.#lastLine.delete(e.digest);
    const line = lineFor(e);
    if (line) this.#write(line);
  }

  stop(): void {}
}

class BarReporter implements ProgressReporter {
  readonly #bars: MultiBar;
  readonly #running = new Map<string, { bar: SingleBar; started: number; startOffset: number }>();

  constructor(stream: NodeJS.WriteStream) {
    this.#bars = new MultiBar(
      {
        stream,
        format: "{name} {bar} {percentage}% | {done} of {size} | {rate} | ETA {eta_formatted}",
        hideCursor: true,
        clearOnComplete: true,
        autopadding: true,
      },
      Presets.shades_classic,
    );
  }

  onEvent(e: PushEvent): void {
    if (e.type === "blob-start") {
      const shown = shownOffset(e.offset, e.size);
      const bar = this.#bars.create(e.size, shown, this.#payload(e.digest, shown, e.size, 0, 0));
      this.#running.set(e.digest, { bar, started: performance.now(), startOffset: e.offset });
      return;
    }
    if (e.type === "blob-progress") {
      const run = this.#running.get(e.digest);
      if (!run) return;
      const seconds = (performance.now() - run.started) / 1000;
      const shown = shownOffset(e.offset, e.size);
      run.bar.update(shown, this.#payload(e.digest, shown, e.size, e.offset - run.startOffset, seconds));
      return;
    }
    if (e.type === "blob-done") {
      const run = this.#running.get(e.digest);
      if (run) this.#bars.remove(run.bar);
      this.#running.delete(e.digest);
    }
    const line = lineFor(e);
    if (line) {
      // MultiBar prints logged lines only at its next redraw, and stop() does not redraw: a line
      // logged just before the push ends would be lost. Redraw now.
      this.#bars.log(`${line}\n`);
      this.#bars.update();
    }
  }

  stop(): void {
    this.#bars.update();
    this.#bars.stop();
  }

  #payload(digest: string, offset: number, size: number, sent: number, seconds: number): Record<string, string> {
    return {
      name: shortDigest(digest),
      done: formatBytes(offset),
      size: formatBytes(size),
      rate: formatRate(sent, seconds),
    };
  }
}
