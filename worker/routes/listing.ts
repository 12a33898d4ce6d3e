/** Tag lists, the referrers API and the catalog: the registry's read-only listings. */
import { Hono } from "hono";
import { parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { listVisible } from "../auth/catalog.ts";
import { catalogFilter } from "../auth/middleware.ts";
import type { AppEnv } from "../env.ts";
import { nextLink, pageParams, repoName } from "../http.ts";
import { registryReferrers } from "../signing/respond.ts";

export const listing = new Hono<AppEnv>();

const PAGE_DEFAULT = 1000;
const PAGE_MAX = 10_000;

listing.get("/_catalog", async (c) => {
  const { n, last } = pageParams(c, PAGE_DEFAULT, PAGE_MAX);
  // Callers see only the repositories they may pull.
  const visible = catalogFilter(c);
  const catalog = c.var.store.catalog;
  const { repositories, more } = visible ? await listVisible(catalog, n, last, visible) : await catalog.list(n, last);
  const tail = repositories.at(-1);
  if (more && tail !== undefined) c.header("Link", nextLink("/v2/_catalog", n, tail));
  return c.json({ repositories });
});

listing.get("/:name{.+}/tags/list", async (c) => {
  const name = repoName(c);
  const store = c.var.store;
  const { n, last } = pageParams(c, PAGE_DEFAULT, PAGE_MAX);
  const { tags, more } = await store.manifests.listTags(name, n, last);
  if (tags.length === 0 && last === undefined && !(await store.catalog.exists(name))) {
    throw new RegistryError("NAME_UNKNOWN", undefined, { name });
  }
  const tail = tags.at(-1);
  if (more && tail !== undefined) c.header("Link", nextLink(`/v2/${name}/tags/list`, n, tail));
  return c.json({ name, tags });
});

listing.get("/:name{.+}/referrers/:digest", async (c) => {
  const name = repoName(c);
  const subject = parseDigest(c.req.param("digest"));
  const artifactType = c.req.query("artifactType");
  let manifests = await c.var.store.manifests.referrers(name, subject);
  // A partition nobody pre-signed may be signed by the registry's own key (worker/signing/).
  manifests = [...manifests, ...(await registryReferrers(c, name, subject))];
  if (artifactType !== undefined) {
    manifests = manifests.filter((d) => d.artifactType === artifactType);
    c.header("OCI-Filters-Applied", "artifactType");
  }
  c.header("Content-Type", MediaType.OciIndex);
  return c.body(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
});
