/** GET, HEAD, PUT and DELETE of manifests by tag or digest. */
import { Hono } from "hono";
import type { Context } from "hono";
import { algorithmOf, digestWith, type Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { parseManifest, type Descriptor, type ParsedManifest } from "../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../core/oci/media-types.ts";
import { parseReference, TAG_RULE, validateTag, type Reference } from "../../core/oci/reference.ts";
import { LABEL_SYNTAX, splitSemanticTag } from "../../core/tdfs/label.ts";
import type { AppEnv } from "../env.ts";
import { absolute, repoName } from "../http.ts";
import { negotiate } from "../manifests/accept.ts";
import { resolveManifest } from "../manifests/resolve.ts";
import { checkReferences } from "../manifests/verify.ts";
import type { ReferrerRecord } from "../storage/manifests.ts";
import { forgetManifest, forgetTags } from "../storage/edge-reads.ts";
import { readLimited } from "../storage/streams.ts";

export const manifests = new Hono<AppEnv>();

/** Manifests are small; anything larger is refused before it is read into memory. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
/**
 * `?tag=` parameters one push by digest may carry: ten times the spec's minimum, and few enough
 * that their writes stay well inside a Worker request's budget of subrequests.
 */
const TAGS_PER_PUSH_MAX = 100;

manifests.on(["GET", "HEAD"], "/:name{.+}/manifests/:reference", async (c) => {
  const name = repoName(c);
  const ref = pullReference(c.req.param("reference"));
  const found = await resolveManifest(c, name, ref);
  const m = await negotiate(c, name, found);
  const headers = new Headers({
    "Content-Type": m.mediaType,
    "Content-Length": String(m.bytes.byteLength),
    "Docker-Content-Digest": m.digest,
    ETag: `"${m.digest}"`,
    // By digest the bytes can never change; a tag can move, so caches must ask again.
    "Cache-Control": ref.kind === "digest" ? "public, max-age=31536000, immutable" : "no-cache",
  });
  if (c.req.header("if-none-match") === `"${m.digest}"`) return new Response(null, { status: 304, headers });
  return new Response(c.req.method === "HEAD" ? null : m.bytes, { status: 200, headers });
});

manifests.put("/:name{.+}/manifests/:reference", async (c) => {
  const name = repoName(c);
  const ref = parseReference(c.req.param("reference"));
  // Every tag is checked before anything is read or stored: one bad tag refuses the whole push.
  const tags = ref.kind === "tag" ? [ref.tag] : queryTags(c);
  const store = c.var.store;
  const bytes = await readLimited(c.req.raw.body, MANIFEST_MAX_BYTES);
  const parsed = parseManifest(bytes, c.req.header("content-type") ?? null, { pushed: true });
  // Pushed by digest, the manifest is checked and kept under that digest's algorithm (sha256 or
  // sha512); pushed by tag, it is named by its sha256, which is what clients expect back.
  const digest = await digestWith(ref.kind === "digest" ? algorithmOf(ref.digest) : "sha256", bytes);
  if (ref.kind === "digest" && ref.digest !== digest) {
    throw new RegistryError("DIGEST_INVALID", "manifest digest does not match its bytes", {
      reference: ref.digest,
      computed: digest,
    });
  }
  const existed = await store.manifests.exists(name, digest);
  await checkReferences(c, name, parsed, { recordFacts: true });
  const referrer = await referrerOf(c, name, parsed, digest, bytes.byteLength);
  await store.manifests.put(name, { digest, mediaType: parsed.mediaType, bytes }, referrer);
  // Checked again once stored: a garbage collection that swept a referenced blob between the
  // first check and the write is caught here (docs/gc.md, "Safety"); one that sweeps later sees
  // the stored manifest and keeps what it references.
  try {
    await checkReferences(c, name, parsed, { recordFacts: false });
  } catch (e) {
    if (!existed) await store.manifests.delete(name, digest);
    throw e;
  }
  await store.manifests.tag(name, tags, { digest, mediaType: parsed.mediaType, bytes }, referrer);
  // A tag moved here is seen here at once (worker/storage/edge-reads.ts).
  await forgetTags(store, name, tags);
  await store.catalog.touch(name);
  const headers = new Headers({
    Location: absolute(c, `/v2/${name}/manifests/${digest}`),
    "Docker-Content-Digest": digest,
    "Content-Length": "0",
  });
  if (referrer) headers.set("OCI-Subject", referrer.subject);
  // One field per tag a push by digest asked for: how a client learns that this registry took them.
  if (ref.kind === "digest") for (const tag of tags) headers.append("OCI-Tag", tag);
  return new Response(null, { status: 201, headers });
});

manifests.delete("/:name{.+}/manifests/:reference", async (c: Context<AppEnv>) => {
  const name = repoName(c);
  const ref = parseReference(c.req.param("reference") ?? "");
  const store = c.var.store;
  const deleted =
    ref.kind === "digest"
      ? await store.manifests.delete(name, ref.digest)
      : await store.manifests.deleteTag(name, ref.tag);
  if (!deleted) throw new RegistryError("MANIFEST_UNKNOWN", undefined, { reference: c.req.param("reference") });
  // Gone here at once; other locations forget it within EDGE_TTL_SECONDS.
  if (ref.kind === "digest") await forgetManifest(store, name, ref.digest);
  else await forgetTags(store, name, [ref.tag]);
  return c.body(null, 202);
});

/**
 * A reference to pull. One that cannot be a tag names no manifest: 404, the only error the spec
 * (end-3) allows a pull, with the reason in the detail. A semantic tag too long or malformed for
 * the tag grammar is answered like any other unknown partition, with the label syntax.
 */
function pullReference(raw: string): Reference {
  try {
    return parseReference(raw);
  } catch (e) {
    if (!(e instanceof RegistryError) || e.code !== "TAG_INVALID") throw e;
    const reference = raw.slice(0, 200);
    const detail = { reference, reason: `not a valid tag: ${TAG_RULE}` };
    const message = splitSemanticTag(raw)
      ? `"${reference}" is not a valid semantic tag; ${LABEL_SYNTAX}`
      : `"${reference}" is not a valid tag, so no manifest has it`;
    throw new RegistryError("MANIFEST_UNKNOWN", message, detail);
  }
}

/** The distinct `?tag=` values of a push by digest, each valid (the spec's multi-tag push). */
function queryTags(c: Context<AppEnv>): string[] {
  const tags = [...new Set(c.req.queries("tag") ?? [])];
  if (tags.length > TAGS_PER_PUSH_MAX) {
    throw new RegistryError("TOO_MANY_TAGS", `at most ${TAGS_PER_PUSH_MAX} tags per push`, {
      tags: tags.length,
      max: TAGS_PER_PUSH_MAX,
    });
  }
  return tags.map(validateTag);
}

/**
 * The descriptor the referrers API lists for a manifest that names a subject. A subject that is a
 * partition (a signature of `repo:v1--jetson`, say) is no pushed manifest: the record then names
 * the stored manifest the partition came from, which keeps it from being collected.
 */
async function referrerOf(
  c: Context<AppEnv>,
  name: string,
  parsed: ParsedManifest,
  digest: Digest,
  size: number,
): Promise<ReferrerRecord | undefined> {
  const subject = parsed.manifest.subject;
  if (!subject) return undefined;
  const store = c.var.store;
  const provenance = (await store.manifests.exists(name, subject.digest))
    ? null
    : await store.derived.provenance(name, subject.digest);
  const m = parsed.manifest;
  const artifactType =
    m.artifactType ??
    (parsed.kind === "manifest" && !isIndexMediaType(parsed.mediaType) ? parsed.manifest.config.mediaType : undefined);
  const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size };
  if (artifactType) descriptor.artifactType = artifactType;
  if (m.annotations) descriptor.annotations = m.annotations;
  return { subject: subject.digest, descriptor, ...(provenance ? { derivedFrom: provenance.source } : {}) };
}
