/**
 * Accept negotiation. The stored bytes are served as pushed. The one conversion a registry can
 * make without re-encoding is picking a child: a client that accepts image manifests but not
 * indexes gets the linux/amd64 entry of an index, as the distribution registry does.
 */
import type { Context } from "hono";
import { imageIndexSchema } from "../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../core/oci/media-types.ts";
import type { AppEnv } from "../env.ts";
import { manifestByDigest } from "../storage/edge-reads.ts";
import type { StoredManifest } from "../storage/manifests.ts";

export async function negotiate(c: Context<AppEnv>, name: string, m: StoredManifest): Promise<StoredManifest> {
  const accept = c.req.header("accept");
  if (!accept || !isIndexMediaType(m.mediaType)) return m;
  const types = accept.split(",").map((t) => t.split(";")[0]!.trim());
  if (types.includes(m.mediaType) || types.some((t) => t === "*/*" || t === "application/*")) return m;
  const wantsImage = types.some((t) => t.endsWith("manifest.v1+json") || t.endsWith("manifest.v2+json"));
  if (!wantsImage) return m;
  const index = imageIndexSchema.safeParse(JSON.parse(new TextDecoder().decode(m.bytes)));
  if (!index.success) return m;
  const child = index.data.manifests.find((d) => d.platform?.os === "linux" && d.platform.architecture === "amd64");
  if (!child || !types.includes(child.mediaType)) return m;
  return (await manifestByDigest(c.var.store, name, child.digest)) ?? m;
}
