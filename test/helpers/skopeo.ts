/**
 * A thin typed wrapper over the skopeo binary (Debian package `skopeo`). Registry references are
 * `docker://127.0.0.1:PORT/repo:tag`; TLS verification is always off for them because the test
 * registries speak plain http on loopback. A private signature policy that accepts anything keeps
 * the tests independent of /etc/containers.
 */
import { renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, type RunResult } from "./process.ts";

export interface CopyOptions {
  /** Copy every platform of an index (`--multi-arch all`); skopeo copies only the host's by default. */
  all?: boolean;
  /** Refuse any change of digest (`--preserve-digests`). */
  preserveDigests?: boolean;
  /** Run with `--debug`: the returned stderr then lists every request skopeo made. */
  debug?: boolean;
  /** `user:password` for both ends. */
  creds?: string;
  /** Let `--format` pick the manifest type written (oci or v2s2). */
  format?: "oci" | "v2s2";
}

export interface InspectOptions {
  /** The manifest (or index) bytes exactly as served. */
  raw?: boolean;
  /** The image config instead of the manifest. */
  config?: boolean;
  creds?: string;
}

/** What `skopeo inspect` (without --raw) reports about an image. */
export interface InspectResult {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
  LayersData?: { MIMEType: string; Digest: string; Size: number }[];
}

let policyPath: string | undefined;

/** The accept-anything policy: staged under a per-process name and renamed, so readers never see it half-written. */
function policy(): string {
  if (!policyPath) {
    const path = join(tmpdir(), "2dfs-skopeo-policy.json");
    const staging = `${path}.${process.pid}`;
    writeFileSync(staging, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    renameSync(staging, path);
    policyPath = path;
  }
  return policyPath;
}

const isRegistry = (ref: string): boolean => ref.startsWith("docker://");

function skopeo(args: string[], debug = false): Promise<RunResult> {
  return run("skopeo", [...(debug ? ["--debug"] : []), "--policy", policy(), ...args]);
}

export async function copy(src: string, dest: string, opts: CopyOptions = {}): Promise<RunResult> {
  const args = ["copy", "--retry-times", "0"];
  if (isRegistry(src)) args.push("--src-tls-verify=false");
  if (isRegistry(dest)) args.push("--dest-tls-verify=false");
  if (opts.all) args.push("--multi-arch", "all");
  if (opts.preserveDigests) args.push("--preserve-digests");
  if (opts.format) args.push("--format", opts.format);
  if (opts.creds) {
    if (isRegistry(src)) args.push("--src-creds", opts.creds);
    if (isRegistry(dest)) args.push("--dest-creds", opts.creds);
  }
  return skopeo([...args, src, dest], opts.debug);
}

export async function inspectRaw(ref: string, opts: Omit<InspectOptions, "raw"> = {}): Promise<Buffer> {
  const res = await skopeo(["inspect", "--raw", ...inspectFlags(ref, opts), ref]);
  // skopeo prints the raw bytes followed by a newline of its own.
  return Buffer.from(res.stdout.replace(/\n$/, ""), "utf8");
}

export async function inspect(ref: string, opts: Omit<InspectOptions, "raw"> = {}): Promise<InspectResult> {
  const res = await skopeo(["inspect", ...inspectFlags(ref, opts), ref]);
  return JSON.parse(res.stdout) as InspectResult;
}

export async function inspectConfig(ref: string, opts: Omit<InspectOptions, "raw" | "config"> = {}): Promise<unknown> {
  const res = await skopeo(["inspect", "--config", "--raw", ...inspectFlags(ref, opts), ref]);
  return JSON.parse(res.stdout);
}

/** Tags of a repository: `ref` is `docker://HOST/REPO` (no tag). */
export async function listTags(ref: string, opts: { creds?: string } = {}): Promise<string[]> {
  const res = await skopeo(["list-tags", ...inspectFlags(ref, opts), ref]);
  return (JSON.parse(res.stdout) as { Tags: string[] }).Tags;
}

export async function deleteImage(ref: string, opts: { creds?: string } = {}): Promise<void> {
  await skopeo(["delete", ...inspectFlags(ref, opts), ref]);
}

function inspectFlags(ref: string, opts: { creds?: string }): string[] {
  const flags: string[] = [];
  if (isRegistry(ref)) flags.push("--tls-verify=false");
  if (opts.creds) flags.push("--creds", opts.creds);
  return flags;
}
