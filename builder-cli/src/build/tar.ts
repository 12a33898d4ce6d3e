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
/** The owner fields of every header written here. */
export const NEUTRAL_OWNER = { uid: 0, gid: 0, uname: "", gname: "", mtime: TAR_MTIME } as const;

const READ_CHUNK = 1 << 20;

type TarHeader = Parameters<tar.Pack["entry"]>[0];

export interface PackHooks {
  /** Called once per file with the sha256 (hex) of exactly the bytes written into the tar. */
  onFileHashed?(entry: Extract<TarEntry, { type: "file" }>, hex: string): void;
  /** Called as file bytes are read, for progress. */
  onBytes?(n: number): void;
}

/** Returns the tar stream of `entries`, which must already be sorted with parents first. */
export function packEntries(entries: readonly TarEntry[], hooks: PackHooks = {}): Readable {
  return packStream(async (pack) => {
    for (const e of entries) {
      const header = { ...NEUTRAL_OWNER, name: e.name, mode: e.mode };
      if (e.type === "directory") {
        await addEntry(pack, { ...header, type: "directory" });
      } else if (e.type === "symlink") {
        await addEntry(pack, { ...header, type: "symlink", linkname: e.linkname });
      } else {
        const hash = createHash("sha256");
        await addFileEntry(pack, { ...header, type: "file", size: e.size }, e.source, (chunk) => {
          hash.update(chunk);
          hooks.onBytes?.(chunk.length);
        });
        hooks.onFileHashed?.(e, hash.digest("hex"));
      }
    }
  });
}

/** A tar stream filled by `fill`; an error in `fill` fails the stream. */
export function packStream(fill: (pack: tar.Pack) => Promise<void>): Readable {
  const pack = tar.pack();
  fill(pack).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err as Error),
  );
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

export function addEntry(pack: tar.Pack, header: TarHeader): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}

/** Streams `file` in as the entry's body; tar-stream fails it if the size changed meanwhile. */
export async function addFileEntry(
  pack: tar.Pack,
  header: TarHeader,
  file: string,
  onChunk?: (chunk: Buffer) => void,
): Promise<void> {
  let finished!: (err?: Error | null) => void;
  const done = new Promise<void>((resolve, reject) => (finished = (err) => (err ? reject(err) : resolve())));
  // streamx's Writable, typed without a bare end(); node's stream shape fits how it is used here.
  const sink = pack.entry(header, (err) => finished(err)) as unknown as NodeJS.WritableStream;
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) {
    onChunk?.(chunk);
    if (!sink.write(chunk)) await once(sink, "drain");
  }
  sink.end();
  await done;
}
