/**
 * What a push is made of: blobs the client can stream (and, for resumed uploads, stream from an
 * offset), and manifests small enough to hold. The builder produces these; the registry client
 * only reads them.
 */

export interface BlobSource {
  digest: string;
  size: number;
  mediaType: string;
  /** A fresh stream of the whole blob; called again for every attempt. */
  open(): Promise<ReadableStream<Uint8Array>> | ReadableStream<Uint8Array>;
  /** A stream starting `offset` bytes in. Without it, a resumed upload reads and drops that many bytes of open(). */
  openAt?(offset: number): Promise<ReadableStream<Uint8Array>> | ReadableStream<Uint8Array>;
}

export interface ManifestToPush {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

export interface ImageToPush {
  /** The tag for the root manifest; without one the root is pushed by digest only. */
  tag?: string;
  blobs: BlobSource[];
  /** Children first, root last; only the root is tagged. */
  manifests: ManifestToPush[];
  /** A repository on the same registry to mount missing blobs from (e.g. the base image's). */
  mountFrom?: string;
}

export interface PushReport {
  blobsTotal: number;
  blobsSkipped: number;
  blobsMounted: number;
  blobsUploaded: number;
  /** Blob bytes sent, counting resent bytes of retried attempts. */
  bytesUploaded: number;
  /** Bytes of the blobs mounted: what was not sent. */
  bytesMounted: number;
  seconds: number;
  /** Digest of the root manifest. */
  digest: string;
}
