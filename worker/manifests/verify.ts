/** What must exist before a manifest is accepted: every blob and child manifest it references. */
import type { Context } from "hono";
import type { Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import type { Descriptor, ParsedManifest } from "../../core/oci/manifest.ts";
import type { AppEnv } from "../env.ts";
import { recordFieldFacts } from "../partitions/facts.ts";

export async function checkReferences(
  c: Context<AppEnv>,
  name: string,
  parsed: ParsedManifest,
  opts: { recordFacts: boolean },
): Promise<void> {
  const store = c.var.store;
  if (parsed.kind === "index") {
    await allExist(parsed.manifest.manifests, (d) => store.manifests.exists(name, d.digest), "manifest");
    return;
  }
  const m = parsed.manifest;
  // Foreign layers (with `urls`) live elsewhere by design and are not required here.
  const blobs = [m.config, ...m.layers.filter((l) => !l.urls?.length)];
  await allExist(
    blobs,
    async (d) => (await store.blobs.stat(name, d.digest)) !== null || adopt(c, name, d.digest),
    "blob",
  );
  // A 2DFS image: its allotments are referenced only from inside the field, so check them there.
  if (opts.recordFacts) await recordFieldFacts(store, name, m);
}

/**
 * A blob the repository has only as a derived object (a partition's config), made a blob of the
 * repository. A HEAD answers 200 for it, since pulls of the partition fetch it like any blob, so a
 * client pushing a manifest that uses it (a signature's empty config, a copy of a partition)
 * skips its upload; the manifest must then keep it, and derived objects are collected when unused.
 */
async function adopt(c: Context<AppEnv>, name: string, digest: Digest): Promise<boolean> {
  const store = c.var.store;
  const info = await store.derived.statBlob(name, digest);
  if (!info) return false;
  await store.blobs.putStream(name, digest, await store.blobs.open(info), info.size);
  return true;
}

async function allExist(
  descriptors: Descriptor[],
  exists: (d: Descriptor) => Promise<boolean>,
  what: "blob" | "manifest",
): Promise<void> {
  const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()];
  const results = await Promise.all(unique.map(async (d) => ({ d, ok: await exists(d) })));
  const missing = results.filter((r) => !r.ok).map((r) => r.d.digest);
  if (missing.length > 0) {
    throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `manifest references an unknown ${what}`, {
      missing: missing.slice(0, 20),
    });
  }
}
