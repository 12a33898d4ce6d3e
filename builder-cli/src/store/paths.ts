/**
 * Where the builder keeps things, by the XDG base directory spec: rebuildable data (the allotment
 * cache) under $XDG_CACHE_HOME, built images under $XDG_DATA_HOME.
 */
import os from "node:os";
import path from "node:path";

const APP = "2dfs-push";

function xdg(variable: string, fallback: string): string {
  const v = process.env[variable];
  // The spec says relative values are invalid and must be ignored.
  return v && path.isAbsolute(v) ? v : path.join(os.homedir(), fallback);
}

export function cacheDir(): string {
  return path.join(xdg("XDG_CACHE_HOME", ".cache"), APP);
}

/** Which repositories of each registry hold which blobs (registry/blob-locations.ts), beside the cache it saves uploads of. */
export function blobLocationsDir(): string {
  return path.join(cacheDir(), "blob-locations");
}

export function imagesDir(): string {
  return path.join(xdg("XDG_DATA_HOME", ".local/share"), APP, "images");
}
