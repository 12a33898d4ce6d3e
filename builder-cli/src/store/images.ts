/**
 * The local image store: one OCI layout per repository, `<images>/<registry>/<repository>`,
 * each tag an entry in its index.json. A port's ":" becomes "_" so paths stay portable.
 */
import path from "node:path";
import { formatImageRef, parseImageRef, type ImageRef } from "../registry/ref.ts";
import { InputError } from "../spec/errors.ts";
import { imagesDir } from "./paths.ts";

export interface StoredRef {
  ref: ImageRef;
  /** The layout directory holding the repository. */
  dir: string;
  tag: string;
  /** The canonical name, as written into `2dfs.image.name`. */
  name: string;
}

export function storedRef(target: string, storeRoot: string = imagesDir(), plainHttp = false): StoredRef {
  const ref = parseImageRef(target, plainHttp ? { plainHttp: true } : {});
  if (ref.digest) throw new InputError(`"${target}" names a digest; a built image needs a tag`);
  const tag = ref.tag ?? "latest";
  const dir = path.join(storeRoot, ref.registry.replaceAll(":", "_"), ...ref.repository.split("/"));
  return { ref, dir, tag, name: formatImageRef({ ...ref, tag }) };
}

/**
 * A name to build or push: as storedRef, but its tag may not contain "--". The registry reads
 * `<tag>--<label>` as a partition of `<tag>`, so such an image would be served only literally and
 * none of its partitions could ever be pulled.
 */
export function targetRef(target: string, storeRoot?: string, plainHttp = false): StoredRef {
  const stored = storedRef(target, storeRoot, plainHttp);
  if (stored.tag.includes("--")) {
    throw new InputError(
      `target tag "${stored.tag}" contains "--", which the registry reads as <tag>--<partition>: ` +
        `the image's partitions could never be pulled; choose a tag without "--" (e.g. "${stored.tag.replaceAll("--", "-")}")`,
    );
  }
  return stored;
}
