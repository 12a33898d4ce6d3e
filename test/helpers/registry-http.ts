/**
 * Pushes and pulls over plain HTTP (fetch), each step answering what the registry said rather
 * than throwing, so that concurrency tests and the load bench can race the steps and judge every
 * answer. Reads hash the body as it streams: "intact" always means the right length and digest.
 *
 *   const blob = randomBlob(11 * MiB);
 *   const session = await openUpload(base, "race/a");
 *   const patched = await patchStreamed(session, blob.bytes);
 *   const [put, del] = await Promise.all([closeUpload(patched.location, blob.digest), cancelUpload(patched.location)]);
 */
import { createHash, randomFillSync } from "node:crypto";
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor, ImageIndex, ImageManifest } from "../../core/oci/manifest.ts";
import { isIndexMediaType, MediaType } from "../../core/oci/media-types.ts";
import { sha256Of, withQuery } from "./oci.ts";

export const MiB = 1024 * 1024;

export interface BlobBytes {
  bytes: Buffer;
  digest: Digest;
}

export function randomBlob(size: number): BlobBytes {
  const bytes = randomFillSync(Buffer.allocUnsafe(size));
  return { bytes, digest: sha256Of(bytes) };
}

/** A registry answer: status, the body as text (error JSON), and the upload headers when present. */
export interface Step {
  status: number;
  body: string;
  /** Absolute Location, when the answer had one. */
  location?: string;
  range?: string;
}

async function stepOf(res: Response, base: string): Promise<Step> {
  const body = await res.text();
  const location = res.headers.get("location");
  const range = res.headers.get("range");
  return {
    status: res.status,
    body,
    ...(location ? { location: new URL(location, base).toString() } : {}),
    ...(range ? { range } : {}),
  };
}

/** What a failed step said, for assertion messages: `PUT 500 {"errors":[...]}`. */
export function said(what: string, s: Step): string {
  return `${what} ${s.status} ${s.body.slice(0, 300)}`;
}

/** The first OCI error code of a step's body, if it carries error JSON. */
export function errorCode(s: Step): string | undefined {
  try {
    return (JSON.parse(s.body) as { errors?: { code?: string }[] }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** POST of a new upload session: 202 with its Location. */
export async function startUpload(base: string, repo: string): Promise<Step> {
  return stepOf(await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" }), base);
}

/** A PATCH of the whole blob without Content-Range, as skopeo and containerd stream a layer. */
export async function patchStreamed(location: string, bytes: Uint8Array): Promise<Step> {
  const res = await fetch(location, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.byteLength) },
    body: bytes,
  });
  return stepOf(res, location);
}

/** A Content-Range PATCH of `bytes` starting at `offset`. */
export async function patchRange(location: string, offset: number, bytes: Uint8Array): Promise<Step> {
  const res = await fetch(location, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${offset}-${offset + bytes.byteLength - 1}`,
      "Content-Length": String(bytes.byteLength),
    },
    body: bytes,
  });
  return stepOf(res, location);
}

/** The closing PUT ?digest= with no body. */
export async function closeUpload(location: string, digest: Digest): Promise<Step> {
  const res = await fetch(withQuery(location, { digest }), { method: "PUT" });
  return stepOf(res, location);
}

export async function cancelUpload(location: string): Promise<Step> {
  return stepOf(await fetch(location, { method: "DELETE" }), location);
}

/** GET of the session: 204 with `Range: 0-<last byte>` while it is open. */
export async function uploadStatus(location: string): Promise<Step> {
  return stepOf(await fetch(location), location);
}

/** A monolithic upload: POST ?digest= with the whole blob. */
export async function postWhole(base: string, repo: string, blob: BlobBytes): Promise<Step> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(blob.bytes.byteLength) },
    body: blob.bytes,
  });
  return stepOf(res, base);
}

export interface BlobRead {
  status: number;
  /** Bytes received and their digest (of the error body, when the status is not 200). */
  size: number;
  digest: Digest;
}

/** GETs a blob, hashing the body as it streams. */
export async function readBlob(base: string, repo: string, digest: Digest): Promise<BlobRead> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  const hash = createHash("sha256");
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      hash.update(chunk);
      size += chunk.byteLength;
    }
  }
  return { status: res.status, size, digest: `sha256:${hash.digest("hex")}` };
}

/** Why a read is not `blob` byte for byte, or undefined when it is. */
export function readProblem(read: BlobRead, expected: Pick<Descriptor, "digest" | "size">): string | undefined {
  if (read.status !== 200) return `GET ${expected.digest} answered ${read.status}`;
  if (read.size !== expected.size || read.digest !== expected.digest) {
    return `GET ${expected.digest} returned ${read.size} bytes hashing to ${read.digest}, expected ${expected.size}`;
  }
  return undefined;
}

/**
 * Pushes an image manifest over `layers` (already linked into `repo`) with a small config of its
 * own, tagged `tag`. The layers are opaque bytes to the registry; only their digests and sizes count.
 */
export async function pushImage(
  base: string,
  repo: string,
  tag: string,
  layers: readonly Pick<Descriptor, "digest" | "size">[],
): Promise<Step> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      history: layers.map((_, i) => ({ created_by: `${repo}:${tag} layer ${i}` })),
    }),
  );
  const configStep = await postWhole(base, repo, { bytes: config, digest: sha256Of(config) });
  if (configStep.status !== 201) return configStep;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256Of(config), size: config.byteLength },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayerTar, digest: l.digest, size: l.size })),
  };
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": MediaType.OciManifest },
    body: JSON.stringify(manifest),
  });
  return stepOf(res, base);
}

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifest, MediaType.DockerManifestList];

export interface PullResult {
  /** Everything that did not come back as the manifests described it; empty when the pull is intact. */
  problems: string[];
  /** Each request of the pull: what kind, how long, its status. */
  requests: { kind: "manifest" | "blob"; ms: number; status: number }[];
  /** The config and layer digests the manifests named, in order, per platform. */
  blobs: Digest[];
}

/**
 * Pulls `reference` as a client would: the manifest (through an index, into every platform),
 * then the config and every layer, each checked against its descriptor's digest and size.
 */
export async function pullImage(base: string, repo: string, reference: string): Promise<PullResult> {
  const out: PullResult = { problems: [], requests: [], blobs: [] };
  const timed = async <T>(kind: "manifest" | "blob", work: () => Promise<T & { status: number }>): Promise<T> => {
    const start = performance.now();
    const r = await work();
    out.requests.push({ kind, ms: performance.now() - start, status: r.status });
    return r;
  };
  const getManifest = async (ref: string): Promise<{ status: number; bytes: Buffer; type: string }> => {
    const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT.join(", ") } });
    return {
      status: res.status,
      bytes: Buffer.from(await res.arrayBuffer()),
      type: res.headers.get("content-type") ?? "",
    };
  };
  const top = await timed("manifest", () => getManifest(reference));
  if (top.status !== 200) {
    out.problems.push(`GET manifest ${repo}:${reference} answered ${top.status} ${top.bytes.toString().slice(0, 200)}`);
    return out;
  }
  let manifests: { ref: string; bytes: Buffer }[] = [{ ref: reference, bytes: top.bytes }];
  if (isIndexMediaType(top.type)) {
    const index = JSON.parse(top.bytes.toString()) as ImageIndex;
    manifests = [];
    for (const d of index.manifests) {
      const m = await timed("manifest", () => getManifest(d.digest));
      if (m.status !== 200 || sha256Of(m.bytes) !== d.digest) {
        out.problems.push(`GET manifest ${repo}@${d.digest} answered ${m.status} (${m.bytes.byteLength} bytes)`);
      } else {
        manifests.push({ ref: d.digest, bytes: m.bytes });
      }
    }
  }
  for (const m of manifests) {
    const manifest = JSON.parse(m.bytes.toString()) as ImageManifest;
    out.blobs.push(manifest.config.digest, ...manifest.layers.map((l) => l.digest));
    const reads = await Promise.all(
      [manifest.config, ...manifest.layers].map(async (d) => ({
        d,
        read: await timed("blob", () => readBlob(base, repo, d.digest)),
      })),
    );
    for (const { d, read } of reads) {
      const problem = readProblem(read, d);
      if (problem) out.problems.push(`${repo}:${reference}: ${problem}`);
    }
  }
  return out;
}

/**
 * Runs a whole collection (POST /admin/gc until it reports itself complete) and returns the
 * last report. Needs a registry whose admin endpoint the caller may reach (AUTH_MODE none).
 */
export async function collectGarbage(base: string, maxRuns = 50): Promise<{ complete: boolean; total: unknown }> {
  for (let i = 0; i < maxRuns; i++) {
    const res = await fetch(`${base}/admin/gc`, { method: "POST" });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`POST /admin/gc answered ${res.status} ${text.slice(0, 300)}`);
    const report = JSON.parse(text) as { complete: boolean; total: unknown };
    if (report.complete) return report;
  }
  throw new Error(`the collection did not complete in ${maxRuns} runs`);
}
