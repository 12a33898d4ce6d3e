/**
 * Every R2 key the registry uses, built here and nowhere else. docs/storage.md says who writes
 * each key, under which condition, and the invariants that hold between them.
 *
 *   blobs/<alg>/<hex>                           blob record: 0-byte object whose customMetadata says where
 *                                               the bytes are (loc, pieces), their size and compression.
 *                                               Created only if absent; a hint for deduplication and mounts.
 *   data/<id>                                   bytes of a blob stored in one request (written once, never
 *                                               overwritten: <id> is fresh for every write)
 *   data/<id>/<start>-<nonce>                   one piece of an upload: the bytes of one request (a chunk)
 *   data/<id>/table                             the ordered piece list of a blob made of several pieces
 *   uploads/<uuid>                              upload session state (JSON); every change is a put
 *                                               conditional on the etag it was read with
 *   catalog/<name>                              marker: the repository exists
 *   repos/<name>/_blobs/<alg>/<hex>             link: the blob belongs to the repository; carries the
 *                                               same location metadata as a record
 *   repos/<name>/_manifests/<alg>/<hex>         manifest bytes (Content-Type = its media type)
 *   repos/<name>/_tags/<tag>                    tag -> customMetadata.digest
 *   repos/<name>/_referrers/<alg>/<subject>/<alg>/<hex>   referrer descriptor (JSON)
 *   repos/<name>/_fields/<alg>/<hex>            facts about a field's allotments, recorded at push
 *   derived/<name>/_manifests/<alg>/<hex>       partition manifests and indexes, computed on request
 *                                               (customMetadata.lastAccess, ms: refreshed at most daily)
 *   derived/<name>/_blobs/<alg>/<hex>           partition configs
 *                                               Derived objects are content-addressed, never tags, and
 *                                               collectable: they can always be computed again.
 *   gc/state                                    the collection in progress: phase, cursor, totals (JSON)
 *   gc/last-report                              the report of the last finished collection (JSON)
 *   gc/intent/<run>                             what a collection is about to delete (JSON): links and
 *                                               data ids. Writers that reference them read it after
 *                                               writing, so one of the two always sees the other.
 *
 * Repository names are validated against the spec grammar before they reach this file: each path
 * component starts with [a-z0-9], so `<name>` can never produce a `_`-prefixed segment and no
 * repository can reach another's keys or an internal prefix (which live outside `repos/` anyway).
 */
import type { Digest } from "../../core/oci/digest.ts";

/** `<alg>:<hex>` (sha256 or sha512) as the path `<alg>/<hex>`. */
const path = (d: Digest): string => d.replace(":", "/");

export const keys = {
  blob: (d: Digest) => `blobs/${path(d)}`,
  blobsPrefix: "blobs/",
  /** Where a blob stored by one request puts its bytes; `id` is fresh for every write. */
  data: (id: string) => `data/${id}`,
  dataPrefix: "data/",
  /** One request's bytes within an upload: `nonce` keeps two racing requests apart. */
  piece: (id: string, start: number, nonce: string) => `data/${id}/${start}-${nonce}`,
  pieceTable: (id: string) => `data/${id}/table`,
  piecesPrefix: (id: string) => `data/${id}/`,
  upload: (uuid: string) => `uploads/${uuid}`,
  uploadsPrefix: "uploads/",
  catalog: (name: string) => `catalog/${name}`,
  catalogPrefix: "catalog/",
  repoPrefix: (name: string) => `repos/${name}/`,
  reposPrefix: "repos/",
  blobLink: (name: string, d: Digest) => `repos/${name}/_blobs/${path(d)}`,
  blobLinksPrefix: (name: string) => `repos/${name}/_blobs/`,
  manifest: (name: string, d: Digest) => `repos/${name}/_manifests/${path(d)}`,
  manifestsPrefix: (name: string) => `repos/${name}/_manifests/`,
  tag: (name: string, tag: string) => `repos/${name}/_tags/${tag}`,
  tagsPrefix: (name: string) => `repos/${name}/_tags/`,
  referrer: (name: string, subject: Digest, d: Digest) => `repos/${name}/_referrers/${path(subject)}/${path(d)}`,
  referrersPrefix: (name: string, subject: Digest) => `repos/${name}/_referrers/${path(subject)}/`,
  allReferrersPrefix: (name: string) => `repos/${name}/_referrers/`,
  fieldFacts: (name: string, field: Digest) => `repos/${name}/_fields/${path(field)}`,
  fieldFactsPrefix: (name: string) => `repos/${name}/_fields/`,
  derivedManifest: (name: string, d: Digest) => `derived/${name}/_manifests/${path(d)}`,
  derivedBlob: (name: string, d: Digest) => `derived/${name}/_blobs/${path(d)}`,
  derivedPrefix: "derived/",
  gcState: "gc/state",
  gcLastReport: "gc/last-report",
  gcIntent: (runId: string) => `gc/intent/${runId}`,
  gcIntentPrefix: "gc/intent/",
} as const;

/**
 * KV keys. KV holds only immutable mappings: a partition's result is fixed by (repository, stored
 * image digest, canonical selection), hashed so that any selection fits KV's 512-byte key limit.
 */
export const kvKeys = {
  partition: (selectionHash: string) => `partition/v1/${selectionHash}`,
} as const;

/**
 * Paths of what a location keeps in its Cache API for EDGE_TTL_SECONDS (edge-memo.ts), below the
 * request's origin. `/_edge/` is no route of the registry: these are read only by its own code.
 * Each names the repository, so a lookup always goes through that repository's auth first.
 */
export const edgeKeys = {
  tag: (name: string, tag: string) => `/_edge/tag/${name}/${encodeURIComponent(tag)}`,
  manifest: (name: string, digest: Digest) => `/_edge/manifest/${name}/${path(digest)}`,
  partition: (name: string, image: Digest, label: string) =>
    `/_edge/partition/${name}/${path(image)}/${encodeURIComponent(label)}`,
  blob: (name: string, digest: Digest) => `/_edge/blob/${name}/${path(digest)}`,
} as const;

/** The digest at the end of a `.../<alg>/<hex>` key. */
export function digestFromKey(key: string): Digest {
  const parts = key.split("/");
  return `${parts.at(-2)}:${parts.at(-1)}` as Digest;
}

/** The subject digest of a referrer key below `allReferrersPrefix(name)`. */
export function subjectFromReferrerKey(name: string, key: string): Digest {
  const [alg, hex] = key.slice(keys.allReferrersPrefix(name).length).split("/");
  return `${alg}:${hex}` as Digest;
}

/** The data id that a `data/...` key belongs to: every key under `data/<id>` shares its fate. */
export function dataIdOf(key: string): string | undefined {
  if (!key.startsWith(keys.dataPrefix)) return undefined;
  return key.slice(keys.dataPrefix.length).split("/")[0];
}
