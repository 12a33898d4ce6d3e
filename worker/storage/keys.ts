/**
 * Every R2 key the registry uses, built here and nowhere else.
 *
 *   blobs/sha256/<hex>                          blob bytes, or a 0-byte pointer whose customMetadata.loc names
 *                                               the data object (blobs assembled from chunked uploads)
 *   data/<uuid>                                 bytes of a chunked upload (an R2 multipart object; R2 has no
 *                                               rename, so the bytes stay where the upload put them)
 *   uploads/<uuid>                              upload session state (JSON)
 *   uploads/<uuid>/tail/<offset>                bytes received after the last full multipart part
 *   catalog/<name>                              marker: the repository exists
 *   repos/<name>/_blobs/sha256/<hex>            link: the blob belongs to the repository
 *   repos/<name>/_manifests/sha256/<hex>        manifest bytes (Content-Type = its media type)
 *   repos/<name>/_tags/<tag>                    tag -> customMetadata.digest
 *   repos/<name>/_referrers/sha256/<subject>/sha256/<hex>   referrer descriptor (JSON)
 *   repos/<name>/_fields/sha256/<hex>           facts about a field's allotments, recorded at push
 *   derived/<name>/_manifests/sha256/<hex>      partition manifests and indexes, computed on request
 *                                               (customMetadata.lastAccess, ms: refreshed at most daily)
 *   derived/<name>/_blobs/sha256/<hex>          partition configs
 *                                               Derived objects are content-addressed, never tags, and
 *                                               collectable: they can always be computed again.
 *   gc/state                                    the collection in progress: phase, cursor, totals (JSON)
 *   gc/last-report                              the report of the last finished collection (JSON)
 *
 * Repository names are validated against the spec grammar before they reach this file: each path
 * component starts with [a-z0-9], so `<name>` can never produce a `_`-prefixed segment and no
 * repository can reach another's keys or an internal prefix.
 */
import type { Digest } from "../../core/oci/digest.ts";

const hex = (d: Digest): string => d.slice("sha256:".length);

export const keys = {
  blob: (d: Digest) => `blobs/sha256/${hex(d)}`,
  blobsPrefix: "blobs/sha256/",
  data: (uuid: string) => `data/${uuid}`,
  dataPrefix: "data/",
  upload: (uuid: string) => `uploads/${uuid}`,
  uploadTail: (uuid: string, offset: number) => `uploads/${uuid}/tail/${offset}`,
  uploadTailPrefix: (uuid: string) => `uploads/${uuid}/tail/`,
  uploadsPrefix: "uploads/",
  catalog: (name: string) => `catalog/${name}`,
  catalogPrefix: "catalog/",
  repoPrefix: (name: string) => `repos/${name}/`,
  reposPrefix: "repos/",
  blobLink: (name: string, d: Digest) => `repos/${name}/_blobs/sha256/${hex(d)}`,
  blobLinksPrefix: (name: string) => `repos/${name}/_blobs/sha256/`,
  manifest: (name: string, d: Digest) => `repos/${name}/_manifests/sha256/${hex(d)}`,
  manifestsPrefix: (name: string) => `repos/${name}/_manifests/sha256/`,
  tag: (name: string, tag: string) => `repos/${name}/_tags/${tag}`,
  tagsPrefix: (name: string) => `repos/${name}/_tags/`,
  referrer: (name: string, subject: Digest, d: Digest) =>
    `repos/${name}/_referrers/sha256/${hex(subject)}/sha256/${hex(d)}`,
  referrersPrefix: (name: string, subject: Digest) => `repos/${name}/_referrers/sha256/${hex(subject)}/`,
  allReferrersPrefix: (name: string) => `repos/${name}/_referrers/sha256/`,
  fieldFacts: (name: string, field: Digest) => `repos/${name}/_fields/sha256/${hex(field)}`,
  fieldFactsPrefix: (name: string) => `repos/${name}/_fields/sha256/`,
  derivedManifest: (name: string, d: Digest) => `derived/${name}/_manifests/sha256/${hex(d)}`,
  derivedBlob: (name: string, d: Digest) => `derived/${name}/_blobs/sha256/${hex(d)}`,
  derivedPrefix: "derived/",
  gcState: "gc/state",
  gcLastReport: "gc/last-report",
} as const;

/**
 * KV keys. KV holds only immutable mappings: a partition's result is fixed by (repository, stored
 * image digest, canonical selection), hashed so that any selection fits KV's 512-byte key limit.
 */
export const kvKeys = {
  partition: (selectionHash: string) => `partition/v1/${selectionHash}`,
} as const;

/** The digest at the end of a `.../sha256/<hex>` key. */
export function digestFromKey(key: string): Digest {
  return `sha256:${key.slice(key.lastIndexOf("/") + 1)}`;
}
