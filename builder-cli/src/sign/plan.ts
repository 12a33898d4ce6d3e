/**
 * What a signing run signs, all worked out before anything is signed: the image's index and its
 * platform manifests, and for each partition (every named one, `all`, and each --sign-partition
 * label) its index and platform manifests, each under the exact reference a fleet pulls
 * (`host/repo:v1--jetson`). Each partition is computed here with core's partitionImage, the
 * function the registry answers with, and must be exactly what the registry serves for the
 * semantic tag: a mismatch names both digests and nothing is signed.
 */
import type { Digest } from "../../../core/oci/digest.ts";
import { imageIndexSchema, type Descriptor } from "../../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../../core/oci/media-types.ts";
import { isValidTag } from "../../../core/oci/reference.ts";
import { claimedIdentity } from "../../../core/sign/identity.ts";
import type { SignTarget } from "../../../core/sign/sign.ts";
import { ALL_PARTITION, LabelError, namedPartitions } from "../../../core/tdfs/label.ts";
import {
  partitionImage,
  selectionOf,
  type ImagePartition,
  type PartitionSource,
  type SourceManifest,
} from "../../../core/tdfs/partition-image.ts";
import type { RegistryClient } from "../registry/client.ts";
import { formatImageRef, type ImageRef } from "../registry/ref.ts";
import { InputError } from "../spec/errors.ts";

export interface SigningPlan {
  targets: SignTarget[];
  /** The partitions found, by label, with their digest: what the run reports. */
  partitions: { label: string; reference: string; digest: string }[];
}

/** What is to be signed, computed from the image as the signer holds it, before anything is sent. */
export interface LocalPlan {
  root: SourceManifest;
  /** Whether the image itself is signed (a push, or `sign REF`), or only partitions (`sign REF--label`). */
  whole: boolean;
  partitions: { label: string; partition: Extract<ImagePartition, { kind: "partition" }> }[];
}

/**
 * The partitions to sign: with `whole`, every named one, `all` and `labels`; otherwise `labels`
 * alone. A label that is malformed, too long for a tag, or selects nothing is the user's to fix
 * (InputError); a named partition that selects nothing on this field is left out.
 */
export async function planLocally(input: {
  root: SourceManifest;
  tag: string;
  source: PartitionSource;
  whole: boolean;
  labels: readonly string[];
  name: string;
}): Promise<LocalPlan> {
  const { root } = input;
  const labels = input.whole
    ? [...new Set([...Object.keys(namedPartitions(annotationsOf(root))), ALL_PARTITION, ...input.labels])]
    : [...new Set(input.labels)];
  const partitions: LocalPlan["partitions"] = [];
  for (const label of labels) {
    const semantic = `${input.tag}--${label}`;
    if (!isValidTag(semantic)) throw new InputError(`"${semantic}" is too long or malformed for a tag`);
    let rects;
    try {
      rects = selectionOf(label, root);
    } catch (e) {
      if (e instanceof LabelError) throw new InputError(`partition ${label}: ${e.message}`);
      throw e;
    }
    const part = await partitionImage(root, rects, input.source);
    if (part.kind === "not-2dfs") throw new InputError(`${input.name} is not a 2DFS image: ${part.reason}`);
    if (part.kind === "nothing-selected") {
      if (input.labels.includes(label)) throw new InputError(`"${label}" selects no allotment of ${input.name}`);
      continue;
    }
    partitions.push({ label, partition: part });
  }
  return { root, whole: input.whole, partitions };
}

/**
 * Every signature to write, once the registry is checked to serve exactly what was computed: the
 * image under its tag, and each partition under its semantic tag. Any difference stops the run
 * with both digests named, before anything is signed.
 */
export async function planSignatures(
  client: RegistryClient,
  ref: ImageRef & { tag: string },
  local: LocalPlan,
): Promise<SigningPlan> {
  const repo = ref.repository;
  const { root } = local;
  const served = await client.findManifest(repo, ref.tag);
  if (!served) {
    throw new InputError(`${formatImageRef(ref)} is not in the registry: push it before signing it`);
  }
  if (served.digest !== root.digest) {
    throw new Error(
      `${formatImageRef(ref)} is ${served.digest} in the registry, not the ${root.digest} built here; nothing was signed`,
    );
  }
  const repository = formatImageRef({ ...ref, tag: undefined, digest: undefined });
  const targets: SignTarget[] = local.whole ? imageTargets(claimedIdentity({ repository, tag: ref.tag }), root) : [];
  const partitions: SigningPlan["partitions"] = [];
  for (const { label, partition: part } of local.partitions) {
    const tag = `${ref.tag}--${label}`;
    const answer = await client.findManifest(repo, tag);
    if (!answer) throw new Error(`the registry does not serve ${repository}:${tag} (it should be ${part.root.digest})`);
    if (answer.digest !== part.root.digest) {
      throw new Error(
        `${repository}:${tag}: the registry serves ${answer.digest}, but the partition computed here is ` +
          `${part.root.digest}; nothing was signed`,
      );
    }
    const identity = claimedIdentity({ repository, tag });
    targets.push({ identity, subject: describe(part.root) });
    for (const m of part.manifests) {
      if (m.manifest.digest !== part.root.digest) {
        targets.push({
          identity,
          subject: { mediaType: m.mediaType, digest: m.manifest.digest, size: m.manifest.size },
        });
      }
    }
    partitions.push({ label, reference: `${repository}:${tag}`, digest: part.root.digest });
  }
  return { targets, partitions };
}

/** The root, and for an index each platform manifest it lists, under one identity. */
function imageTargets(identity: string, root: SourceManifest): SignTarget[] {
  const targets: SignTarget[] = [
    { identity, subject: { mediaType: root.mediaType, digest: root.digest, size: root.bytes.length } },
  ];
  if (isIndexMediaType(root.mediaType)) {
    const index = imageIndexSchema.parse(JSON.parse(new TextDecoder().decode(root.bytes)));
    for (const d of index.manifests.filter((m: Descriptor) => !isIndexMediaType(m.mediaType))) {
      targets.push({ identity, subject: { mediaType: d.mediaType, digest: d.digest, size: d.size } });
    }
  }
  return targets;
}

function describe(c: { mediaType: string; digest: Digest; size: number }): SignTarget["subject"] {
  return { mediaType: c.mediaType, digest: c.digest, size: c.size };
}

function annotationsOf(root: SourceManifest): Record<string, string> | undefined {
  const json = JSON.parse(new TextDecoder().decode(root.bytes)) as { annotations?: Record<string, string> };
  return json.annotations;
}
