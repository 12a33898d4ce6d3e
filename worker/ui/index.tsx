/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The web view under /ui/: server-rendered pages (pages/) plus one small client script
 * (client/), every response with a strict Content-Security-Policy. Pages judge their visitor
 * with the API's rules (viewer.ts); a repository the visitor may not pull answers exactly like
 * one that does not exist.
 */
import { Hono, type Context } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import { RegistryError } from "../../core/oci/errors.ts";
import type { Digest } from "../../core/oci/digest.ts";
import { validateName } from "../../core/oci/reference.ts";
import {
  LabelError,
  NAMED_PARTITION_PREFIX,
  namedPartitions,
  parseLabel,
  splitSemanticTag,
  type Rect,
} from "../../core/tdfs/label.ts";
import { listVisible } from "../auth/catalog.ts";
import type { AppEnv } from "../env.ts";
import { asset, ASSET_PREFIX } from "./assets.ts";
import { listFiles } from "./files.ts";
import { loadImage, type ImageView } from "./images.ts";
import { Layout, Notice, type Crumb } from "./pages/layout.tsx";
import { ImagePage } from "./pages/image.tsx";
import { FilesPage } from "./pages/files.tsx";
import { Repositories } from "./pages/repositories.tsx";
import { Tags, type TagRow } from "./pages/tags.tsx";
import { pageTarget } from "./path.ts";
import { cellKey, summarize, type PlatformField, type PullTarget } from "./selection.ts";
import { signaturesView, type SignatureView } from "./signatures.ts";
import { viewerOf, type Viewer } from "./viewer.ts";
import { producePartition } from "../partitions/produce.ts";

type Ctx = Context<AppEnv>;

/** No script but ours, no inline script or style, nothing from elsewhere, no framing. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Pages shown before the visitor is known (assets, errors): nothing to pull, no sign-in form. */
const NOBODY: Viewer = { authOn: false, staleCredentials: false, mayPull: () => false, anonymousMayPull: () => false };

const REPOS_PER_PAGE = 200;
const TAGS_PER_PAGE = 25;
const COMPARE_TAGS_MAX = 200;

export const ui = new Hono<AppEnv>();

ui.use("*", async (c, next) => {
  await next();
  c.header("Content-Security-Policy", CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  // What a page shows depends on who asks.
  if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  c.header("Vary", "Authorization");
});

ui.get("/", (c) => c.redirect("/ui/", 301));

ui.get(`${ASSET_PREFIX.slice(3)}*`, (c) => {
  const found = asset(new URL(c.req.url).pathname);
  if (!found) return page(c, 404, "Not found", [], <Notice title="Not found" />);
  return c.body(found.body, 200, {
    "Content-Type": found.type,
    "Cache-Control": "public, max-age=31536000, immutable",
  });
});

ui.post(`${ASSET_PREFIX.slice(3)}signin`, (c) =>
  page(
    c,
    400,
    "Sign in",
    [],
    <Notice title="Signing in needs JavaScript">
      <p>The sign-in form keeps your token in this browser tab only, which takes the page's script.</p>
    </Notice>,
  ),
);

ui.get("/*", async (c) => {
  const target = pageTarget(new URL(c.req.url).pathname);
  const viewer = await viewerOf(c);
  switch (target.kind) {
    case "repositories":
      return repositoriesPage(c, viewer);
    case "repository":
      return repositoryPage(c, viewer, target.name);
    case "image":
      return imagePage(c, viewer, target.name, target.tag);
    case "blob":
      return blobPage(c, viewer, target.name, target.digest);
    case "none":
      return notFound(c, viewer);
  }
});

ui.onError((err, c) => {
  // A registry error keeps its status (a misconfigured auth setup is still 5xx); anything else is ours.
  const status = err instanceof RegistryError ? err.status : 500;
  if (!(err instanceof RegistryError)) console.error("ui error", err);
  const message = err instanceof RegistryError && status < 500 ? err.message : "Something went wrong on our side.";
  return c.html(
    <Layout title="Error" viewer={NOBODY} crumbs={[]}>
      <Notice title={status >= 500 ? "Error" : "Cannot show this"}>
        <p>{message}</p>
      </Notice>
    </Layout>,
    status as 400,
  );
});

function page(
  c: Ctx,
  status: number,
  title: string,
  crumbs: Crumb[],
  body: JSX.Element,
  viewer?: Viewer,
): Response | Promise<Response> {
  return c.html(
    <Layout title={title} viewer={viewer ?? NOBODY} crumbs={crumbs}>
      {body}
    </Layout>,
    status as 200,
  );
}

/** Missing and hidden look the same: a visitor learns nothing about what they may not pull. */
function notFound(c: Ctx, viewer: Viewer, crumbs: Crumb[] = []): Response | Promise<Response> {
  return page(
    c,
    404,
    "Not found",
    crumbs,
    <Notice title="Not found">
      <p>Nothing is here, or you may not pull it.{viewer.authOn && !viewer.user ? " Signing in may show more." : ""}</p>
    </Notice>,
    viewer,
  );
}

async function repositoriesPage(c: Ctx, viewer: Viewer): Promise<Response> {
  const query = (c.req.query("q") ?? "").trim().slice(0, 256);
  const last = c.req.query("last") || undefined;
  const visible = (repo: string): boolean => viewer.mayPull(repo) && repo.includes(query);
  const { repositories, more } = await listVisible(c.var.store.catalog, REPOS_PER_PAGE, last, visible);
  const tail = repositories.at(-1);
  const next = more && tail ? `/ui/?${new URLSearchParams({ q: query, last: tail })}` : undefined;
  return page(
    c,
    200,
    "Repositories",
    [],
    <Repositories repositories={repositories} query={query} {...(next ? { next } : {})} />,
    viewer,
  );
}

async function repositoryPage(c: Ctx, viewer: Viewer, name: string): Promise<Response> {
  const store = c.var.store;
  if (!viewer.mayPull(name) || !(await store.catalog.exists(name))) return notFound(c, viewer);
  const { tags } = await c.var.store.manifests.tagsNewestFirst(name);
  const pageNo = Math.max(0, Math.min(Number(c.req.query("page") ?? 0) | 0, Math.floor(tags.length / TAGS_PER_PAGE)));
  const shown = tags.slice(pageNo * TAGS_PER_PAGE, (pageNo + 1) * TAGS_PER_PAGE);
  const rows: TagRow[] = await Promise.all(
    shown.map(async (t) => ({ ...t, image: await loadImage(store, name, t.tag, false) })),
  );
  const next = (pageNo + 1) * TAGS_PER_PAGE < tags.length ? `/ui/${name}?page=${pageNo + 1}` : undefined;
  return page(
    c,
    200,
    name,
    [{ text: name }],
    <Tags repo={name} rows={rows} total={tags.length} {...(next ? { next } : {})} />,
    viewer,
  );
}

async function imagePage(c: Ctx, viewer: Viewer, name: string, tag: string): Promise<Response> {
  const store = c.var.store;
  const crumbs: Crumb[] = [{ text: name, href: `/ui/${name}` }, { text: tag }];
  if (!viewer.mayPull(name)) return notFound(c, viewer, crumbs);
  const image = await loadImage(store, name, tag, true);
  if (!image) {
    // `model:v1--edge` is the partition view of `model:v1`.
    const split = splitSemanticTag(tag);
    if (split && (await store.manifests.resolveTag(name, split.base))) {
      return c.redirect(`/ui/${name}:${split.base}?${new URLSearchParams({ sel: split.label })}`, 302);
    }
    return notFound(c, viewer, crumbs);
  }
  const partitions = partitionsOf(image.annotations);
  const usable = Object.fromEntries(partitions.usable);
  const withField = image.platforms.filter((p) => p.field);
  const wanted = c.req.query("platform");
  const platform =
    image.platforms.find((p) => p.platform === wanted)?.platform ??
    (withField[0] ?? image.platforms[0])?.platform ??
    "unknown";

  const compareTag = c.req.query("compare") || undefined;
  const previous = compareTag && compareTag !== tag ? await loadImage(store, name, compareTag, false) : null;
  const fields = platformFields(image, previous);
  const rects = selectionOf(c.req.query("sel"), usable);
  const host = new URL(c.req.url).host;
  const plainHttp = new URL(c.req.url).protocol === "http:";
  const field = fields.get(platform);
  const target: PullTarget = { host, plainHttp, repo: name, tag, multiPlatform: image.platforms.length > 1 };
  if (viewer.user && !viewer.anonymousMayPull(name)) target.user = viewer.user;
  const summary = field ? summarize(field, rects, usable, target) : undefined;
  const { tags } = await c.var.store.manifests.tagsNewestFirst(name);
  const otherTags = tags
    .map((t) => t.tag)
    .filter((t) => t !== tag)
    .slice(0, COMPARE_TAGS_MAX);
  const referrers = await store.manifests.referrers(name, image.digest);
  const signatures = await signaturesView(c, name, image.digest);
  const partitionSignatures =
    summary && rects.length > 0 ? await partitionSignaturesOf(c, name, `${tag}--${summary.label}`) : undefined;
  return page(
    c,
    200,
    `${name}:${tag}`,
    crumbs,
    <ImagePage
      image={image}
      platform={platform}
      fields={fields}
      rects={rects}
      {...(summary ? { summary } : {})}
      partitions={partitions}
      {...(compareTag ? { compare: { tag: compareTag, found: previous !== null } } : {})}
      otherTags={otherTags}
      referrers={referrers}
      signatures={signatures}
      {...(partitionSignatures ? { partitionSignatures } : {})}
      target={target}
      origin={{ r0: coordinate(c.req.query("r0")), c0: coordinate(c.req.query("c0")) }}
      query={withoutWindow(new URL(c.req.url).searchParams)}
    />,
    viewer,
  );
}

async function blobPage(c: Ctx, viewer: Viewer, name: string, digest: Digest): Promise<Response> {
  const store = c.var.store;
  const crumbs: Crumb[] = [{ text: name, href: `/ui/${name}` }, { text: digest.slice(0, 19) }];
  if (!viewer.mayPull(validateName(name))) return notFound(c, viewer, crumbs);
  const info = await store.blobs.stat(name, digest);
  if (!info) return notFound(c, viewer, crumbs);
  const listing = await listFiles(store, info);
  if ((c.req.header("accept") ?? "").includes("application/json")) {
    return c.json({ digest, size: info.size, compression: info.compression, ...listing });
  }
  return page(
    c,
    200,
    "Files",
    crumbs,
    <FilesPage repo={name} digest={digest} size={info.size} compression={info.compression} listing={listing} />,
    viewer,
  );
}

/**
 * The signatures of the partition a selection pulls: the partition is computed (and kept, as a
 * pull would keep it) to learn its digest. A selection the registry would refuse shows none.
 */
async function partitionSignaturesOf(
  c: Ctx,
  name: string,
  semanticTag: string,
): Promise<(SignatureView & { reference: string }) | undefined> {
  let produced;
  try {
    produced = await producePartition(c.var.store, name, semanticTag);
  } catch (e) {
    if (e instanceof RegistryError && e.status < 500) return undefined;
    throw e;
  }
  if (!produced) return undefined;
  return { ...(await signaturesView(c, name, produced.digest)), reference: `${name}:${semanticTag}` };
}

/** Each platform's field as a selection is costed, with the compared image's field of the same platform. */
function platformFields(image: ImageView, previous: ImageView | null): Map<string, PlatformField> {
  const fields = new Map<string, PlatformField>();
  for (const p of image.platforms) {
    if (!p.field) continue;
    const data: PlatformField = {
      platform: p.platform,
      base: p.layers.map((l) => ({ digest: l.digest, size: l.size })),
      cells: p.field.cells,
    };
    if (previous) {
      const old = previous.platforms.find((o) => o.platform === p.platform);
      data.previous = {
        base: old?.layers.map((l) => l.digest) ?? [],
        cells: new Map((old?.field?.cells ?? []).map((cell) => [cellKey(cell.row, cell.col), cell.digest])),
      };
    }
    fields.set(p.platform, data);
  }
  return fields;
}

/** Every `2dfs.partition.*` annotation: those a tag can name, and those it cannot (shown, never offered). */
function partitionsOf(annotations: Record<string, string>): {
  usable: [string, string][];
  unusable: [string, string][];
} {
  const usable = namedPartitions(annotations);
  const unusable = Object.entries(annotations)
    .filter(
      ([k]) => k.startsWith(NAMED_PARTITION_PREFIX) && !Object.hasOwn(usable, k.slice(NAMED_PARTITION_PREFIX.length)),
    )
    .map(([k, v]): [string, string] => [k.slice(NAMED_PARTITION_PREFIX.length), v]);
  return { usable: Object.entries(usable), unusable };
}

/** A window position from the address: a number from 0, anything else 0. */
function coordinate(raw: string | undefined): number {
  return raw !== undefined && /^\d{1,5}$/.test(raw) ? Number(raw) : 0;
}

function withoutWindow(params: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(params);
  out.delete("r0");
  out.delete("c0");
  return out;
}

/** The selection a shared address names (`?sel=<label>`); a label that does not parse selects nothing. */
function selectionOf(sel: string | undefined, partitions: Record<string, string>): Rect[] {
  if (!sel) return [];
  try {
    return parseLabel(sel, partitions);
  } catch (e) {
    if (e instanceof LabelError) return [];
    throw e;
  }
}
