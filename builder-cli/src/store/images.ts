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
