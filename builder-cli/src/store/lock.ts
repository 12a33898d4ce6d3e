/**
 * The store lock: many builds and pushes at once, or one `prune` or `rm` alone. A running build
 * writes blobs before any image references them (an allotment lands in the cache, then in the
 * image's layout, and only the last step tags the image), so a prune that ran beside it would
 * take them for garbage. Builds, pushes and exports hold the lock shared; prune and rm hold it
 * exclusively, and wait for the shared holders to finish (and they for it).
 *
 * Node has no flock, so the lock is files, under the cache that every store shares:
 *
 *   <cache>/locks/shared/<pid>-<random>.json   one per shared holder: { pid, host, command, since }
 *   <cache>/locks/exclusive                    the exclusive holder, created with O_EXCL
 *
 * A shared holder writes its file and then looks for `exclusive`; the exclusive holder creates
 * `exclusive` and then looks for shared files. Whichever comes second sees the other, and the
 * shared one backs off (removes its file and waits), so the two never run together. A holder
 * that died (its pid is gone, on this host) holds nothing: its files are stale and cleared.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { tempPathFor, writeFileAtomic } from "./atomic.ts";

export interface LockHolder {
  pid: number;
  host: string;
  /** What it is running, for the waiting message. */
  command: string;
  since: string;
}

export interface LockOptions {
  /** The cache directory the lock lives under. */
  cacheRoot: string;
  /** What this process is doing, as others will be told. */
  command: string;
  /** Told once per change of what it waits for. */
  onWait?: (holders: LockHolder[]) => void;
  /** Between two looks at the lock files. */
  pollMs?: number;
}

const POLL_MS = 100;

export async function withSharedLock<T>(opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const dir = path.join(opts.cacheRoot, "locks");
  const mine = path.join(dir, "shared", `${process.pid}-${randomBytes(4).toString("hex")}.json`);
  const waiting = waiter(opts);
  for (;;) {
    await writeFileAtomic(mine, JSON.stringify(me(opts.command)));
    const holder = await readHolder(path.join(dir, "exclusive"));
    if (!holder || !alive(holder)) break;
    await rm(mine, { force: true });
    await waiting([holder]);
  }
  try {
    return await fn();
  } finally {
    await rm(mine, { force: true });
  }
}

export async function withExclusiveLock<T>(opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const dir = path.join(opts.cacheRoot, "locks");
  const exclusive = path.join(dir, "exclusive");
  const waiting = waiter(opts);
  const self = me(opts.command);
  await mkdir(dir, { recursive: true });
  for (;;) {
    // Written whole beside it, then linked into place: link() fails if the name exists, so the
    // file is created at most once and never seen empty.
    const tmp = tempPathFor(exclusive);
    await writeFile(tmp, JSON.stringify(self));
    try {
      await link(tmp, exclusive);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      await rm(tmp, { force: true });
    }
    const holder = await readHolder(exclusive);
    // One that died left its file behind.
    if (holder && !alive(holder)) await rm(exclusive, { force: true });
    else await waiting(holder ? [holder] : []);
  }
  try {
    for (;;) {
      const holders = await sharedHolders(path.join(dir, "shared"));
      if (holders.length === 0) break;
      await waiting(holders);
    }
    return await fn();
  } finally {
    // Only if it is still ours: one taken for stale and replaced belongs to its new holder.
    const holder = await readHolder(exclusive);
    if (holder?.pid === self.pid && holder.since === self.since) await rm(exclusive, { force: true });
  }
}

function me(command: string): LockHolder {
  return { pid: process.pid, host: os.hostname(), command, since: new Date().toISOString() };
}

/** Sleeps a poll interval, telling `onWait` when the holders differ from the last ones told. */
function waiter(opts: LockOptions): (holders: LockHolder[]) => Promise<void> {
  let told = "";
  return async (holders) => {
    const key = holders.map((h) => `${h.host}:${h.pid}`).join(",");
    if (holders.length && key !== told) opts.onWait?.(holders);
    told = key;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? POLL_MS));
  };
}

/** The live shared holders; the files of dead ones are removed. */
async function sharedHolders(dir: string): Promise<LockHolder[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const live: LockHolder[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const holder = await readHolder(path.join(dir, name));
    if (!holder) continue;
    if (alive(holder)) live.push(holder);
    else await rm(path.join(dir, name), { force: true });
  }
  return live;
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(file, "utf8")) as Partial<LockHolder>;
    if (typeof h.pid !== "number" || typeof h.host !== "string") return undefined;
    return { pid: h.pid, host: h.host, command: String(h.command ?? "?"), since: String(h.since ?? "") };
  } catch {
    return undefined;
  }
}

/** A holder on another host cannot be checked, so it counts as alive. */
function alive(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return true;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `2dfs-push build scratch x/y:v1 (pid 4242, since 10:02:03)` */
export function describeHolder(h: LockHolder): string {
  const since = h.since ? `, since ${new Date(h.since).toLocaleTimeString()}` : "";
  return `${h.command} (pid ${h.pid}${h.host === os.hostname() ? "" : ` on ${h.host}`}${since})`;
}
