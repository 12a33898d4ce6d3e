/**
 * An image as the pages show it: per platform its layers, config summary and, for a 2DFS image,
 * its field with every allotment's size and compression (from the facts recorded at push, so a
 * field of any size costs one read). Reads go through the Store; nothing here writes, except
 * that a field pushed before facts were recorded has them recorded once, as a pull would.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { parseManifest, type Descriptor, type ImageIndex, type ImageManifest } from "../../core/oci/manifest.ts";
import { findFieldLayer } from "../../core/tdfs/partition.ts";
import { loadFieldFacts, recordFieldFacts, type FieldFacts } from "../partitions/facts.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import type { Store } from "../storage/store.ts";
import { compressionOf } from "./format.ts";
import type { CellInfo } from "./selection.ts";

/** An index lists a handful of platforms; more entries than this are not shown. */
const PLATFORMS_MAX = 32;
/** Configs are small JSON; a larger one is not read into memory. */
const CONFIG_MAX_BYTES = 1024 * 1024;

export interface ConfigSummary {
  created?: string;
  author?: string;
  entrypoint?: string[];
  cmd?: string[];
  workingDir?: string;
  user?: string;
  env: string[];
  labels: [string, string][];
  history: number;
}

export interface FieldView {
  /** The field layer itself. */
  layer: Descriptor;
  rows: number;
  cols: number;
  /** Row-major. */
  cells: CellInfo[];
}

export interface PlatformView {
  /** `os/arch[/variant]`; `unknown` when neither the index nor the config says. */
  platform: string;
  manifest: Descriptor;
  annotations: Record<string, string>;
  config: Descriptor;
  /** Layers below the field (all layers of a plain image). */
  layers: Descriptor[];
  configSummary?: ConfigSummary;
  field?: FieldView;
  /** Why the field could not be shown, when the manifest has one. */
  fieldError?: string;
}

export interface ImageView {
  repo: string;
  tag: string;
  digest: Digest;
  mediaType: string;
  size: number;
  annotations: Record<string, string>;
  platforms: PlatformView[];
  isIndex: boolean;
}

/** The image a tag points to, or null when the tag does not exist. `details` adds config summaries. */
export async function loadImage(store: Store, repo: string, tag: string, details: boolean): Promise<ImageView | null> {
  const digest = await store.manifests.resolveTag(repo, tag);
  const top = digest ? await store.manifests.get(repo, digest) : null;
  if (!top) return null;
  const parsed = parseStored(top);
  const view: ImageView = {
    repo,
    tag,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.bytes.byteLength,
    annotations: parsed.manifest.annotations ?? {},
    platforms: [],
    isIndex: parsed.kind === "index",
  };
  if (parsed.kind === "manifest") {
    const descriptor: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.byteLength };
    view.platforms.push(await platformView(store, repo, descriptor, parsed.manifest, undefined, details));
    return view;
  }
  const entries = (parsed.manifest as ImageIndex).manifests.slice(0, PLATFORMS_MAX);
  const children = await Promise.all(
    entries.map(async (entry) => {
      const child = await store.manifests.get(repo, entry.digest);
      if (!child) return undefined;
      const p = parseStored(child);
      if (p.kind !== "manifest") return undefined;
      return platformView(store, repo, entry, p.manifest, entry.platform && platformName(entry.platform), details);
    }),
  );
  for (const child of children) if (child) view.platforms.push(child);
  return view;
}

/** Total bytes of the distinct blobs an image references: configs, layers, fields and every allotment (not manifests). */
export function imageBytes(view: ImageView): number {
  const blobs = new Map<string, number>();
  for (const p of view.platforms) {
    blobs.set(p.config.digest, p.config.size);
    for (const l of p.layers) blobs.set(l.digest, l.size);
    if (p.field) blobs.set(p.field.layer.digest, p.field.layer.size);
    for (const c of p.field?.cells ?? []) blobs.set(c.digest, c.size);
  }
  let n = 0;
  for (const size of blobs.values()) n += size;
  return n;
}

export function platformName(p: { os: string; architecture: string; variant?: string | undefined }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

function parseStored(m: StoredManifest): ReturnType<typeof parseManifest> {
  return parseManifest(m.bytes, m.mediaType);
}

async function platformView(
  store: Store,
  repo: string,
  descriptor: Descriptor,
  manifest: ImageManifest,
  platform: string | undefined,
  details: boolean,
): Promise<PlatformView> {
  let fieldLayer: Descriptor | undefined;
  let fieldError: string | undefined;
  try {
    fieldLayer = findFieldLayer(manifest);
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    fieldError = e.message;
  }
  const config = details || platform === undefined ? await readConfig(store, repo, manifest.config) : undefined;
  const view: PlatformView = {
    platform: platform ?? (config ? configPlatform(config) : "unknown"),
    manifest: descriptor,
    annotations: manifest.annotations ?? {},
    config: manifest.config,
    layers: fieldLayer ? manifest.layers.slice(0, -1) : manifest.layers,
  };
  if (details && config) view.configSummary = summarizeConfig(config);
  if (fieldError) view.fieldError = fieldError;
  if (fieldLayer) {
    try {
      view.field = fieldView(fieldLayer, await fieldFacts(store, repo, fieldLayer.digest, manifest));
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      view.fieldError = e.message;
    }
  }
  return view;
}

async function fieldFacts(store: Store, repo: string, digest: Digest, manifest: ImageManifest): Promise<FieldFacts> {
  const facts = await loadFieldFacts(store, repo, digest);
  if (facts) return facts;
  // Pushed before facts were recorded: record them now, once, as a partition pull would.
  await recordFieldFacts(store, repo, manifest);
  const recorded = await loadFieldFacts(store, repo, digest);
  if (!recorded) throw new RegistryError("MANIFEST_INVALID", "the field's facts could not be recorded");
  return recorded;
}

function fieldView(layer: Descriptor, facts: FieldFacts): FieldView {
  let rows = facts.field.rowWidths?.length ?? 0;
  let cols = Math.max(0, ...(facts.field.rowWidths ?? []));
  const cells: CellInfo[] = facts.field.allotments.map((a) => {
    rows = Math.max(rows, a.row + 1);
    cols = Math.max(cols, a.col + 1);
    const d = `sha256:${a.digest}`;
    const fact = facts.facts[d];
    return {
      row: a.row,
      col: a.col,
      digest: d,
      size: fact?.size ?? 0,
      compression: compressionOf(fact?.mediaType ?? ""),
    };
  });
  return { layer, rows, cols, cells };
}

async function readConfig(store: Store, repo: string, d: Descriptor): Promise<Record<string, unknown> | undefined> {
  const info = await store.blobs.stat(repo, d.digest);
  if (!info || info.size > CONFIG_MAX_BYTES) return undefined;
  try {
    const json: unknown = JSON.parse(await new Response(await store.blobs.open(info)).text());
    return json && typeof json === "object" && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function configPlatform(config: Record<string, unknown>): string {
  const os = str(config.os);
  const architecture = str(config.architecture);
  if (!os || !architecture) return "unknown";
  return platformName({ os, architecture, variant: str(config.variant) });
}

function summarizeConfig(config: Record<string, unknown>): ConfigSummary {
  const inner = (config.config && typeof config.config === "object" ? config.config : {}) as Record<string, unknown>;
  const labels = inner.Labels && typeof inner.Labels === "object" ? (inner.Labels as Record<string, unknown>) : {};
  const out: ConfigSummary = {
    env: strings(inner.Env),
    labels: Object.entries(labels).flatMap(([k, v]) => (typeof v === "string" ? [[k, v] as [string, string]] : [])),
    history: Array.isArray(config.history) ? config.history.length : 0,
  };
  const set = <K extends keyof ConfigSummary>(key: K, value: ConfigSummary[K] | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set("created", str(config.created));
  set("author", str(config.author));
  set("entrypoint", Array.isArray(inner.Entrypoint) ? strings(inner.Entrypoint) : undefined);
  set("cmd", Array.isArray(inner.Cmd) ? strings(inner.Cmd) : undefined);
  set("workingDir", str(inner.WorkingDir) || undefined);
  set("user", str(inner.User) || undefined);
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
