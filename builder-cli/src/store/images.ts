/**
 * The local image store: one OCI layout per repository, `<images>/<registry>/<repository>`,
 * each tag an entry in its index.json. A port's ":" becomes "_" so paths stay portable.
 */
import path from "node:path";
import type { Descriptor } from "../../../core/oci/manifest.ts";
import { formatImageRef, parseImageRef, type ImageRef } from "../registry/ref.ts";
import { InputError } from "../spec/errors.ts";
import { OciLayout, REF_NAME } from "./layout.ts";
import { imagesDir } from "./paths.ts";

export interface StoredRef {
  ref: ImageRef;
  /** The store the image is (or would be) in. */
  root: string;
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
  return { ref, root: storeRoot, dir, tag, name: formatImageRef({ ...ref, tag }) };
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

/**
 * The layout and index entry of an image in the store. One that was never built is the user's
 * to fix, and the message says how: a push of a name that `build` never made says so, rather than
 * describing the directory it looked in.
 */
export async function openStoredImage(stored: StoredRef): Promise<{ layout: OciLayout; entry: Descriptor }> {
  let layout: OciLayout;
  try {
    layout = await OciLayout.open(stored.dir);
  } catch (e) {
    if (e instanceof InputError) throw notInStore(stored, []);
    throw e;
  }
  const { manifests } = await layout.readIndex();
  const entry = manifests.filter((m) => m.annotations?.[REF_NAME] === stored.tag).at(-1);
  if (!entry)
    throw notInStore(
      stored,
      manifests.flatMap((m) => m.annotations?.[REF_NAME] ?? []),
    );
  return { layout, entry };
}

function notInStore(stored: StoredRef, tags: readonly string[]): InputError {
  const repo = formatImageRef({ ...stored.ref, tag: undefined });
  const has = tags.length ? ` (it has ${repo} tagged ${[...new Set(tags)].join(", ")})` : "";
  return new InputError(
    `${stored.name} is not in the local image store ${stored.root}${has}; build it first: ` +
      `2dfs-push build [-f 2dfs.json] BASE ${stored.name} (\`2dfs-push images\` lists the store)`,
  );
}
