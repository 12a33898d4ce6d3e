/**
 * Deterministic tar writing. Every header carries uid/gid 0, empty user and group names, the
 * fixed mtime below and only permission bits, so the same inputs give the same bytes on any
 * machine, for any user. File contents are streamed from disk, and each file is hashed on the way
 * through (that hash keys the build cache without a second read).
 */
import { createReadStream } from "node:fs";
import { once } from "node:events";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import tar from "tar-stream";
import type { TarEntry } from "./entries.ts";

/** The Unix epoch: what reproducible-build tools use when no SOURCE_DATE_EPOCH is given. */
export const TAR_MTIME = new Date(0);

const READ_CHUNK = 1 << 20;

export interface PackHooks {
  /** Called once per file with the sha256 (hex) of exactly the bytes written into the tar. */
  onFileHashed?(entry: Extract<TarEntry, { type: "file" }>, hex: string): void;
  /** Called as file bytes are read, for progress. */
  onBytes?(n: number): void;
}

/** Returns the tar stream of `entries`, which must already be sorted with parents first. */
export function packEntries(entries: readonly TarEntry[], hooks: PackHooks = {}): Readable {
  const pack = tar.pack();
  const fill = async (): Promise<void> => {
    for (const e of entries) {
      const header = { name: e.name, mode: e.mode, uid: 0, gid: 0, uname: "", gname: "", mtime: TAR_MTIME };
      if (e.type === "directory") {
        await entryDone(pack, { ...header, type: "directory" });
      } else if (e.type === "symlink") {
        await entryDone(pack, { ...header, type: "symlink", linkname: e.linkname });
      } else {
        let finished: ((err?: Error | null) => void) | undefined;
        const done = new Promise<void>((resolve, reject) => {
          finished = (err) => (err ? reject(err) : resolve());
        });
        const sink = pack.entry({ ...header, type: "file", size: e.size }, (err) => finished!(err));
        const hash = createHash("sha256");
        for await (const chunk of createReadStream(e.source, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) {
          hash.update(chunk);
          hooks.onBytes?.(chunk.length);
          if (!sink.write(chunk)) await once(sink as unknown as NodeJS.EventEmitter, "drain");
        }
        sink.end();
        await done;
        hooks.onFileHashed?.(e, hash.digest("hex"));
      }
    }
    pack.finalize();
  };
  fill().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

function entryDone(pack: tar.Pack, header: tar.Headers): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}
