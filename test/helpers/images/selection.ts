/**
 * What a partition of a built 2DFS image holds (docs/format.md §5), worked out from the build, for
 * tests to compare with what the registry serves and what a runtime unpacks.
 */
import type { Platform } from "../../../core/oci/manifest.ts";
import { anImage, type ImageBuilder } from "./builder.ts";
import { formatPlatform } from "./platform.ts";
import type { BuiltAllotment, BuiltImage, BuiltPlatform, StoredBlob } from "./types.ts";

export type Cell = readonly [row: number, col: number];

/** The allotments of platform `p` at `cells`, in the field's row-major order; every cell must hold one. */
export function allotmentsAt<B extends StoredBlob>(p: BuiltPlatform<B>, cells: readonly Cell[]): BuiltAllotment<B>[] {
  const want = new Set(cells.map(([r, c]) => `${r},${c}`));
  const found = p.allotments.filter((a) => want.has(`${a.row},${a.col}`));
  if (found.length !== want.size) throw new Error(`cells ${[...want].join(" ")} are not all in the field of ${p.slug}`);
  return found;
}

/** Every file a runtime unpacks for platform `p` when it pulls the partition `cells`, sorted. */
export function expectedFiles(p: BuiltPlatform<StoredBlob>, cells: readonly Cell[]): string[] {
  return [...new Set([...p.files, ...allotmentsAt(p, cells).flatMap((a) => a.layer.files)])].sort();
}

/** The platform of `img` that is `platform` (`linux/arm64`, or a parsed one). */
export function platformOf<B extends StoredBlob>(img: BuiltImage<B>, platform: string | Platform): BuiltPlatform<B> {
  const name = typeof platform === "string" ? platform : formatPlatform(platform);
  const found = img.platforms.find((p) => formatPlatform(p.platform) === name);
  if (!found) throw new Error(`the image has no platform ${name}`);
  return found;
}

/**
 * An ordinary image of the same blobs as the partition `cells` of `img`: per platform, the base
 * layers and then the selected allotments, each with its diff_id in the config. What a registry
 * without 2DFS would have to be given to serve that partition.
 */
export function flatImageOf<B extends StoredBlob>(img: BuiltImage<B>, cells: readonly Cell[]): ImageBuilder<B> {
  return anImage()
    .platforms(img.platforms.map((p) => formatPlatform(p.platform)))
    .index(true)
    .layersFrom((platform) => {
      const p = platformOf(img, platform);
      return [...p.layers, ...allotmentsAt(p, cells).map((a) => a.layer)];
    });
}
