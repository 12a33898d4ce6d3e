/**
 * From a reference to stored manifest bytes. Tags and digests are looked up in the store; a miss
 * on a tag is handed to on-demand producers (2DFS partitions) before it becomes MANIFEST_UNKNOWN.
 */
import type { Context } from "hono";
import { RegistryError } from "../../core/oci/errors.ts";
import type { Reference } from "../../core/oci/reference.ts";
import type { AppEnv } from "../env.ts";
import type { StoredManifest } from "../storage/manifests.ts";

export async function resolveManifest(c: Context<AppEnv>, name: string, ref: Reference): Promise<StoredManifest> {
  const store = c.var.store.manifests;
  const digest = await store.digestOf(name, ref);
  const m = digest ? await store.get(name, digest) : null;
  if (m) return m;
  const reference = ref.kind === "digest" ? ref.digest : ref.tag;
  throw new RegistryError("MANIFEST_UNKNOWN", undefined, { name, reference });
}
