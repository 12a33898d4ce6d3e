/**
 * The push progress renderer on a terminal (a stream that says it is a TTY, as stderr on a
 * laptop does) and in a log: every finished blob gets its line, the last one included, and an
 * upload whose bytes have all gone into the socket shows 99 % until the registry answers.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { PushEvent } from "../../builder-cli/src/registry/events.ts";
import { createProgressReporter, shownOffset } from "../../builder-cli/src/registry/progress.ts";

/** A terminal-like stream that keeps everything written to it. */
function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  Object.assign(w, { isTTY: true, columns: 120, rows: 40 });
  return { stream: w as unknown as NodeJS.WriteStream, text: () => chunks.join("") };
}

const digest = (i: number): string => `sha256:${String(i).padStart(2, "0").repeat(32)}`;

/** Eight blobs uploaded one after another, as fast as a loopback registry answers. */
function uploads(n: number): PushEvent[] {
  const events: PushEvent[] = [];
  for (let i = 0; i < n; i++) {
    const d = digest(i);
    events.push({
      type: "blob-start",
      digest: d,
      size: 1000,
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      offset: 0,
    });
    events.push({ type: "blob-progress", digest: d, offset: 1000, size: 1000 });
    events.push({ type: "blob-done", digest: d, size: 1000, bytesSent: 1000, seconds: 0.01 });
  }
  return events;
}

describe("push progress", () => {
  it("prints every uploaded line on a terminal, the last one before stop included", () => {
    const term = fakeTerminal();
    const reporter = createProgressReporter({ stream: term.stream, tty: true });
    for (const e of uploads(8)) reporter.onEvent(e);
    reporter.onEvent({ type: "manifest-pushed", digest: digest(99), reference: "v1", mediaType: "x" });
    reporter.stop();
    const lines = term.text().match(/uploaded sha256:\d{12}…/g) ?? [];
    expect(lines).toHaveLength(8);
    expect(new Set(lines).size).toBe(8);
    expect(term.text()).toMatch(/manifest sha256:\d{12}… as v1/);
  });

  it("prints skipped and mounted lines on a terminal even when nothing is uploaded", () => {
    const term = fakeTerminal();
    const reporter = createProgressReporter({ stream: term.stream, tty: true });
    reporter.onEvent({ type: "blob-skipped", digest: digest(1), size: 10 });
    reporter.onEvent({ type: "blob-mounted", digest: digest(2), size: 20, from: "ml/other" });
    reporter.stop();
    expect(term.text()).toMatch(/skipped  sha256:\d{12}… 10 B \(exists\)/);
    expect(term.text()).toMatch(/mounted  sha256:\d{12}… 20 B from ml\/other/);
  });

  it("holds a bar at 99 % while the registry has not answered", () => {
    const term = fakeTerminal();
    const reporter = createProgressReporter({ stream: term.stream, tty: true });
    const d = digest(3);
    reporter.onEvent({ type: "blob-start", digest: d, size: 50_000_000, mediaType: "x", offset: 0 });
    reporter.onEvent({ type: "blob-progress", digest: d, offset: 50_000_000, size: 50_000_000 });
    // A retry line makes the bars redraw, as the next timer tick would.
    reporter.onEvent({
      type: "blob-retry",
      digest: d,
      failures: 1,
      delayMs: 1,
      error: "forces a redraw",
    });
    const before = term.text();
    expect(before).toMatch(/ 99% \| 49\.5 MB of 50\.0 MB/);
    expect(before).not.toMatch(/100%/);
    reporter.onEvent({ type: "blob-done", digest: d, size: 50_000_000, bytesSent: 50_000_000, seconds: 1 });
    reporter.stop();
    expect(term.text()).toMatch(/uploaded sha256:\d{12}… 50\.0 MB in 1\.0s/);
  });

  it("holds the plain log's progress below the whole size too", () => {
    expect(shownOffset(1000, 1000)).toBe(990);
    expect(shownOffset(500, 1000)).toBe(500);
    expect(shownOffset(0, 0)).toBe(0);
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }) as unknown as NodeJS.WriteStream;
    const reporter = createProgressReporter({ stream, tty: false, plainIntervalMs: 0 });
    const d = digest(4);
    reporter.onEvent({ type: "blob-start", digest: d, size: 2_000_000, mediaType: "x", offset: 0 });
    reporter.onEvent({ type: "blob-progress", digest: d, offset: 2_000_000, size: 2_000_000 });
    expect(lines.at(-1)).toMatch(/^pushing  sha256:\d{12}… 2\.0 MB of 2\.0 MB \(99%\)\n$/);
  });
});
