/** An image in a registry, read through the registry client. */
import { Readable } from "node:stream";
import { sha256, type Digest } from "../../../core/oci/digest.ts";
import { RegistryClient } from "../registry/client.ts";
import { manifestReference, type ImageRef } from "../registry/ref.ts";
import type { FetchedManifest, ImageSource } from "./source.ts";
import type { AuthOptions } from "../registry/auth.ts";

export class RegistrySource implements ImageSource {
  readonly name: string;
  readonly ref: ImageRef;
  readonly client: RegistryClient;

  constructor(ref: ImageRef, auth?: AuthOptions) {
    this.ref = ref;
    this.name = `${ref.registry}/${ref.repository}`;
    this.client = new RegistryClient({ registry: ref.registry, plainHttp: ref.plainHttp, ...(auth ? { auth } : {}) });
  }

  /** The reference this source was named by: its digest if it has one, else its tag. */
  get reference(): string {
    return manifestReference(this.ref);
  }

  async manifest(reference: string): Promise<FetchedManifest> {
    const m = await this.client.getManifest(this.ref.repository, reference);
    return { bytes: m.bytes, mediaType: m.mediaType, digest: m.digest as Digest };
  }

  async blobBytes(digest: Digest): Promise<Uint8Array> {
    const bytes = new Uint8Array(
      await new Response(await this.client.openBlob(this.ref.repository, digest)).arrayBuffer(),
    );
    if ((await sha256(bytes)) !== digest) throw new Error(`${this.name}: blob ${digest} arrived corrupt`);
    return bytes;
  }

  async openBlob(digest: Digest): Promise<Readable> {
    return Readable.fromWeb(
      (await this.client.openBlob(this.ref.repository, digest)) as import("node:stream/web").ReadableStream<Uint8Array>,
    );
  }
}
