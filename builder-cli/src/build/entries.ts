/**
 * Expands an allotment's copies into the exact list of tar entries, in the order they are
 * written: every parent directory present, sorted by name, nothing about the host (owner, times)
 * kept. A source directory is copied recursively, its contents placed under dst (docker's COPY).
 */
import { lstat, readdir, readlink, stat } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import path from "node:path";
import { InputError } from "../spec/errors.ts";
import { joinDst } from "../spec/dst.ts";
import { allotmentName, type AllotmentSpec } from "../spec/spec.ts";

/** The identity of a source file's contents as of when it was listed; keys the stat cache. */
export interface FileStamp {
  dev: string;
  ino: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
}

export type TarEntry =
  | { type: "directory"; name: string; mode: number }
  | { type: "file"; name: string; mode: number; size: number; source: string; stamp: FileStamp }
  | { type: "symlink"; name: string; mode: number; linkname: string };

/** Directories implied by a path but not copied from a source get the usual 0755. */
const IMPLICIT_DIR_MODE = 0o755;

/** Only the permission bits: setuid/setgid/sticky are host accidents nobody means to ship. */
function permBits(s: BigIntStats): number {
  return Number(s.mode) & 0o777;
}

export async function collectEntries(a: AllotmentSpec): Promise<TarEntry[]> {
  const name = allotmentName(a.index, a.row, a.col);
  const byName = new Map<string, TarEntry>();
  const explicitDirs = new Set<string>();

  const add = (e: TarEntry): void => {
    const prev = byName.get(e.name);
    if (prev && (prev.type !== "directory" || e.type !== "directory")) {
      throw new InputError(`${name}: "/${e.name}" is written twice`);
    }
    // A directory copied from a source keeps its mode even if a deeper path implied it first.
    if (!prev || !explicitDirs.has(e.name)) byName.set(e.name, e);
  };
  const addDir = (dirName: string, mode: number | undefined): void => {
    if (dirName === "") return;
    add({ type: "directory", name: dirName, mode: mode ?? IMPLICIT_DIR_MODE });
    if (mode !== undefined) explicitDirs.add(dirName);
  };
  const addParents = (entryName: string): void => {
    const parts = entryName.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!byName.has(dir)) addDir(dir, undefined);
    }
  };

  const addPath = async (src: string, dst: string, s: BigIntStats, top: boolean): Promise<void> => {
    addParents(dst);
    if (s.isDirectory()) {
      // The image root's own mode is not ours to set.
      if (dst !== "") addDir(dst, permBits(s));
      for (const child of (await readdir(src)).sort()) {
        const childPath = path.join(src, child);
        await addPath(childPath, joinDst(dst, child), await lstat(childPath, { bigint: true }), false);
      }
    } else if (s.isFile()) {
      if (dst === "") throw new InputError(`${name}: file "${src}" needs a dst name`);
      add({ type: "file", name: dst, mode: permBits(s), size: Number(s.size), source: src, stamp: stampOf(s) });
    } else if (s.isSymbolicLink() && !top) {
      add({ type: "symlink", name: dst, mode: 0o777, linkname: await readlink(src) });
    } else {
      throw new InputError(`${name}: "${src}" is neither a file, a directory nor a symlink`);
    }
  };

  for (const c of a.copies) {
    // The named source itself is followed if it is a symlink (docker does the same); links found
    // inside a copied directory are kept as links.
    const s = await stat(c.src, { bigint: true });
    const isDir = s.isDirectory();
    const dst = !isDir && c.dstIsDir ? joinDst(c.dst, path.basename(c.src)) : c.dst;
    await addPath(c.src, dst, s, true);
  }
  return [...byName.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

function stampOf(s: BigIntStats): FileStamp {
  return {
    dev: String(s.dev),
    ino: String(s.ino),
    size: Number(s.size),
    mtimeNs: String(s.mtimeNs),
    ctimeNs: String(s.ctimeNs),
  };
}
