/**
 * Where an image is read from: a local OCI layout or a registry. Loading, exporting, inspecting
 * and copying are written once against this interface.
 */
import type { Readable } from "node:stream";
import { isSha256Digest, sha256, type Digest } from "../../../core/oci/digest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import type { OciLayout } from "./layout.ts";

export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: Digest;
}

export interface ImageSource {
  /** How messages name the source. */
  readonly name: string;
  /** A manifest or index by tag or digest. */
  manifest(reference: string): Promise<FetchedManifest>;
  /** A small blob (config, field) read whole. */
  blobBytes(digest: Digest): Promise<Uint8Array>;
  openBlob(digest: Digest): Promise<Readable>;
}

export class LayoutSource implements ImageSource {
  readonly name: string;
  readonly layout: OciLayout;

  constructor(layout: OciLayout) {
    this.layout = layout;
    this.name = `oci:${layout.dir}`;
  }

  async manifest(reference: string): Promise<FetchedManifest> {
    const desc = isSha256Digest(reference) ? undefined : await this.layout.resolve(reference);
    const digest = desc ? desc.digest : (reference as Digest);
    const bytes = await this.layout.readBytes(digest);
    if ((await sha256(bytes)) !== digest) throw new Error(`${this.name}: blob ${digest} is corrupt`);
    return { bytes, digest, mediaType: desc?.mediaType ?? declaredMediaType(bytes) };
  }

  blobBytes(digest: Digest): Promise<Uint8Array> {
    return this.layout.readBytes(digest);
  }

  async openBlob(digest: Digest): Promise<Readable> {
    return this.layout.openBlob(digest);
  }
}

/** A manifest's own `mediaType`, or what its shape says it is. */
function declaredMediaType(bytes: Uint8Array): string {
  const json = JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: string; manifests?: unknown };
  return json.mediaType ?? (json.manifests ? MediaType.OciIndex : MediaType.OciManifest);
}
