/**
 * The store lock as the commands take it (store/lock.ts): builds, pushes and exports share it,
 * rm and prune hold it alone; each says on stderr what it waits for, so a user who sees nothing
 * happen knows why.
 */
import { describeHolder, withExclusiveLock, withSharedLock, type LockHolder } from "../store/lock.ts";
import { cacheDir } from "../store/paths.ts";

export function sharedStoreLock<T>(command: string, fn: () => Promise<T>): Promise<T> {
  return withSharedLock({ cacheRoot: cacheDir(), command, onWait: tell }, fn);
}

export function exclusiveStoreLock<T>(command: string, fn: () => Promise<T>): Promise<T> {
  return withExclusiveLock({ cacheRoot: cacheDir(), command, onWait: tell }, fn);
}

function tell(holders: readonly LockHolder[]): void {
  process.stderr.write(`waiting for ${holders.map(describeHolder).join("; ")} to finish\n`);
}
