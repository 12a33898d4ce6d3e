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

export interface PlanInput {
  client: RegistryClient;
  ref: ImageRef & { tag: string };
  /** The image as the signer holds it: the local store, or the registry itself. */
  source: PartitionSource;
  /** The root as the signer holds it; the registry must serve these exact bytes for the tag. */
  root?: SourceManifest;
  /** Sign the image itself and its named partitions and `all` (a push), or only `labels`. */
  whole: boolean;
  labels: readonly string[];
}

/** Checks labels against the image before anything is pushed: a bad one is exit 2 with nothing sent. */
export function checkLabels(root: Pick<SourceManifest, "bytes">, tag: string, labels: readonly string[]): void {
  for (const label of labels) {
    const semantic = `${tag}--${label}`;
    if (!isValidTag(semantic)) throw new InputError(`"${semantic}" is too long or malformed for a tag`);
    try {
      selectionOf(label, root);
    } catch (e) {
      if (e instanceof LabelError) throw new InputError(`--sign-partition ${label}: ${e.message}`);
      throw e;
    }
  }
}

export async function planSignatures(input: PlanInput): Promise<SigningPlan> {
  const { client, ref } = input;
  const repo = ref.repository;
  const served = await client.findManifest(repo, ref.tag);
  if (!served) {
    throw new InputError(`${formatImageRef(ref)} is not in the registry: push it before signing it`);
  }
  const root: SourceManifest = input.root ?? {
    digest: served.digest as Digest,
    mediaType: served.mediaType,
    bytes: served.bytes,
  };
  if (served.digest !== root.digest) {
    throw new Error(
      `${formatImageRef(ref)} is ${served.digest} in the registry, not the ${root.digest} built here; nothing was signed`,
    );
  }
  const repository = formatImageRef({ ...ref, tag: undefined, digest: undefined });
  const targets: SignTarget[] = [];
  if (input.whole) {
    targets.push(...imageTargets(claimedIdentity({ repository, tag: ref.tag }), root));
  }
  const labels = input.whole
    ? [...new Set([...Object.keys(namedPartitions(annotationsOf(root))), ALL_PARTITION, ...input.labels])]
    : [...new Set(input.labels)];
  checkLabels(root, ref.tag, labels);
  const partitions: SigningPlan["partitions"] = [];
  for (const label of labels) {
    const tag = `${ref.tag}--${label}`;
    const part = await partitionImage(root, selectionOf(label, root), input.source);
    if (part.kind === "not-2dfs") throw new InputError(`${formatImageRef(ref)} is not a 2DFS image: ${part.reason}`);
    if (part.kind === "nothing-selected") {
      // A named partition may select nothing on this field; a label asked for by name must not.
      if (input.labels.includes(label)) throw new InputError(`"${label}" selects no allotment of this image`);
      continue;
    }
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
