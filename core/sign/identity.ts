/**
 * Which references a signature vouches for. A simple-signing payload claims a docker reference;
 * containers/image's default rule, matchRepoDigestOrExact, accepts it for a pull by tag only when
 * it names that exact `repo:tag`, and for a pull by digest when it names the repository. Signing
 * `repo:v1--jetson` therefore names that reference, and nothing else passes for it.
 */

export interface SignedReference {
  /** `host[:port]/repository`, as the client addressed it. */
  repository: string;
  /** The tag pulled; undefined for a pull by digest. */
  tag?: string;
}

/** The identity a signature of this reference claims. */
export function claimedIdentity(ref: SignedReference): string {
  return ref.tag === undefined ? ref.repository : `${ref.repository}:${ref.tag}`;
}

/** Whether a claimed docker reference passes for `ref` under matchRepoDigestOrExact. */
export function identityMatches(claimed: string, ref: SignedReference): boolean {
  if (ref.tag !== undefined) return claimed === `${ref.repository}:${ref.tag}`;
  return repositoryOf(claimed) === ref.repository;
}

/** The repository part of `host/name[:tag][@digest]`. */
export function repositoryOf(reference: string): string {
  const at = reference.indexOf("@");
  const noDigest = at < 0 ? reference : reference.slice(0, at);
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
