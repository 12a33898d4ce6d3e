/**
 * Build progress on stderr: a byte bar on a terminal (bytes read from sources, ETA), otherwise
 * one plain line with the plan; the per-allotment result goes to stdout at the end.
 */
import cliProgress from "cli-progress";
import type { BuildEvent } from "../build/build.ts";
import { formatBytes } from "../../../core/format.ts";
import type { Output } from "./output.ts";

export function buildProgress(out: Output): { onEvent: (e: BuildEvent) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let read = 0;
  const onEvent = (e: BuildEvent): void => {
    if (e.type === "plan") {
      if (out.tty && e.bytesToRead > 0) {
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: "building |{bar}| {percentage}% {done}/{all} ETA {eta_formatted}",
            hideCursor: true,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(e.bytesToRead, 0, { done: formatBytes(0), all: formatBytes(e.bytesToRead) });
      } else if (!out.json) {
        process.stderr.write(
          `${e.allotments} allotments, ${e.toBuild} to build (${formatBytes(e.bytesToRead)} to read)\n`,
        );
      }
    } else if (e.type === "read") {
      read += e.bytes;
      bar?.update(read, { done: formatBytes(read) });
    }
  };
  return { onEvent, stop: () => bar?.stop() };
}
