/** What must exist before a manifest is accepted: every blob and child manifest it references. */
import type { Context } from "hono";
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
  await allExist(blobs, async (d) => (await store.blobs.stat(name, d.digest)) !== null, "blob");
  // A 2DFS image: its allotments are referenced only from inside the field, so check them there.
  if (opts.recordFacts) await recordFieldFacts(store, name, m);
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
