/**
 * What the local image store holds: every layout under the store's root (one per repository,
 * see images.ts), every tagged image in it, and every blob each image references, allotments
 * included (they are named only inside the field, so they are read from there). `images`, `du`
 * and `prune` all start from this.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { isSha256Digest, type Digest } from "../../../core/oci/digest.ts";
import { imageBlobs, imageManifests } from "./blobs.ts";
import { loadImage } from "./graph.ts";
import { OciLayout, REF_NAME } from "./layout.ts";
import { formatPlatform } from "./platform.ts";
import { LayoutSource } from "./source.ts";
import { lastUsed } from "./usage.ts";

export interface StoredImage {
  /** registry/repository:tag */
  reference: string;
  tag: string;
  layout: OciLayout;
  digest: Digest;
  platforms: string[];
  /** The field of the first platform: its extent and how many allotments it holds. */
  field?: { rows: number; cols: number; allotments: number };
  /** Every blob the image references, with its size in the layout (undefined if missing). */
  blobs: Map<Digest, number | undefined>;
  lastUsed: Date;
  /** Why the image could not be read; its blobs are then unknown. */
  damaged?: string;
}

export interface StoreLayout {
  layout: OciLayout;
  /** The repository's name: registry/repository. */
  repository: string;
  images: StoredImage[];
}

export async function readStore(root: string): Promise<StoreLayout[]> {
  const out: StoreLayout[] = [];
  for (const dir of await layoutDirs(root)) {
    const layout = await OciLayout.open(dir);
    const repository = repositoryName(root, dir);
    const images: StoredImage[] = [];
    const { manifests } = await layout.readIndex();
    const indexTime = (await stat(path.join(dir, "index.json"))).mtime;
    for (const entry of manifests) {
      const tag = entry.annotations?.[REF_NAME];
      if (!tag) continue;
      const used = (await lastUsed({ root, dir, tag })) ?? indexTime;
      images.push(await readImage(layout, `${repository}:${tag}`, tag, entry.digest, used));
    }
    out.push({ layout, repository, images });
  }
  return out;
}

async function readImage(
  layout: OciLayout,
  reference: string,
  tag: string,
  digest: Digest,
  used: Date,
): Promise<StoredImage> {
  const image: StoredImage = { reference, tag, layout, digest, platforms: [], blobs: new Map(), lastUsed: used };
  try {
    const graph = await loadImage(new LayoutSource(layout), digest, [], { keepAll: true });
    image.platforms = graph.platforms.map((p) => formatPlatform(p.platform));
    const cells = graph.platforms[0]?.field?.field.allotments;
    if (cells) {
      const rows = Math.max(-1, ...cells.map((a) => a.row)) + 1;
      const cols = Math.max(-1, ...cells.map((a) => a.col)) + 1;
      image.field = { rows, cols, allotments: cells.length };
    }
    const digests = [...imageManifests(graph).map((m) => m.digest), ...imageBlobs(graph).map((b) => b.digest)];
    for (const d of digests) image.blobs.set(d, await layout.blobSize(d));
  } catch (e) {
    image.damaged = e instanceof Error ? e.message : String(e);
  }
  return image;
}

/** Every directory below `root` that is an OCI layout; a layout may hold deeper repositories. */
async function layoutDirs(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.name === "oci-layout" && e.isFile())) found.push(dir);
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith(".") && !(e.name === "blobs" && found.at(-1) === dir)) {
        await walk(path.join(dir, e.name));
      }
    }
  };
  await walk(root);
  return found.sort();
}

/** `<root>/127.0.0.1_5000/ml/llm` -> `127.0.0.1:5000/ml/llm` (images.ts turns a port's ":" into "_"). */
function repositoryName(root: string, dir: string): string {
  const [registry, ...repo] = path.relative(root, dir).split(path.sep);
  return [registry!.replace(/_(\d+)$/, ":$1"), ...repo].join("/");
}

/** The blobs in a layout's blobs/sha256, by digest; other names there are leftovers of interrupted writes. */
export async function layoutBlobFiles(layout: OciLayout): Promise<{ blobs: Digest[]; leftovers: string[] }> {
  return blobFiles(path.join(layout.dir, "blobs", "sha256"));
}

export async function blobFiles(dir: string): Promise<{ blobs: Digest[]; leftovers: string[] }> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const blobs: Digest[] = [];
  const leftovers: string[] = [];
  for (const n of names) {
    const d = `sha256:${n}`;
    if (isSha256Digest(d)) blobs.push(d);
    else leftovers.push(path.join(dir, n));
  }
  return { blobs, leftovers };
}
