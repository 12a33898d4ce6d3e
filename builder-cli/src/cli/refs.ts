/**
 * Resolving an image argument: `oci:DIR[:tag]` is a layout; any other name is looked up in the
 * local store first (where `build` puts images) and otherwise fetched from its registry.
 */
import type { Digest } from "../../../core/oci/digest.ts";
import { splitSemanticTag } from "../../../core/tdfs/label.ts";
import { splitLayoutRef } from "../build/base.ts";
import type { BlobFacts, InspectOrigin } from "../inspect/inspect.ts";
import { tarPaths } from "../inspect/tar-paths.ts";
import { parseImageRef, registryBaseUrl } from "../registry/ref.ts";
import { storedRef } from "../store/images.ts";
import { OciLayout } from "../store/layout.ts";
import { layerMediaTypeOfFile } from "../store/sniff.ts";
import { LayoutSource, type ImageSource } from "../store/source.ts";
import { InputError } from "../spec/errors.ts";
import { authLookup, type RegistryFlags } from "./registry-flags.ts";

export interface OpenedImage {
  source: ImageSource;
  /** Digest or tag to load from the source. */
  reference: string;
  /** The tag the user named (for semantic tags and output names). */
  tag: string;
  /** Size (and media type and paths, for local blobs) of a blob, where the source can tell without downloading it. */
  facts: BlobFacts;
  /** Which of the places an image can be read from this one is. */
  origin: InspectOrigin;
}

export interface OpenFlags extends RegistryFlags {
  store?: string;
  /** Read from the registry even when the local store has the image. */
  remote?: boolean;
}

export async function openImage(arg: string, flags: OpenFlags): Promise<OpenedImage> {
  if (arg.startsWith("oci:")) {
    const { dir, ref } = splitLayoutRef(arg.slice(4));
    const layout = await OciLayout.open(dir);
    return local(layout, (await layout.resolve(ref)).digest, ref ?? "latest", { kind: "layout", location: dir });
  }
  const stored = storedRef(arg, flags.store, flags.plainHttp);
  if (!stored.ref.digest && !flags.remote) {
    try {
      const layout = await OciLayout.open(stored.dir);
      const digest = (await layout.resolve(stored.tag)).digest;
      return local(layout, digest, stored.tag, { kind: "local", location: stored.dir });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
    }
  }
  const ref = parseImageRef(arg, flags.plainHttp ? { plainHttp: true } : {});
  const { RegistrySource } = await import("../store/registry-source.ts");
  const source = new RegistrySource(ref, await authLookup(flags)(ref.registry));
  // A HEAD per allotment gives its size; its media type would take the bytes (registries differ
  // in the Content-Type they send for a blob).
  const facts: BlobFacts = async (d) => {
    const size = await source.client.blobSize(ref.repository, d);
    return size === undefined ? undefined : { size };
  };
  const origin: InspectOrigin = { kind: "registry", location: registryBaseUrl(ref.registry, ref.plainHttp) };
  return { source, reference: source.reference, tag: ref.tag ?? "latest", facts, origin };
}

function local(layout: OciLayout, digest: Digest, tag: string, origin: InspectOrigin): OpenedImage {
  return {
    source: new LayoutSource(layout),
    reference: digest,
    tag,
    origin,
    facts: async (d) => {
      const size = await layout.blobSize(d);
      if (size === undefined) return undefined;
      const file = layout.blobPath(d);
      return { size, mediaType: await layerMediaTypeOfFile(file), paths: await tarPaths(file) };
    },
  };
}

/** `REF--x1.y1.x2.y2[--...]` -> REF and the label; the label starts at the first "--" of the last path segment. */
export function splitLabeledRef(arg: string): { ref: string; label: string } {
  const split = maybeLabeledRef(arg);
  if (!split) throw new InputError(`"${arg}" names no partition; write REF--x1.y1.x2.y2[--...] or REF--<name>`);
  return split;
}

/** As splitLabeledRef, or undefined for a reference without a label. */
export function maybeLabeledRef(arg: string): { ref: string; label: string } | undefined {
  const slash = arg.lastIndexOf("/");
  const split = splitSemanticTag(arg.slice(slash + 1));
  return split?.base ? { ref: arg.slice(0, slash + 1) + split.base, label: split.label } : undefined;
}
