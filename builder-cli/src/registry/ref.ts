/**
 * Image references as docker spells them: `[host[:port]/]name[:tag][@digest]`. A first component
 * is a registry host only if it looks like one (has a `.` or `:`, or is `localhost`, or is a
 * bracketed IPv6 address); otherwise the reference is on Docker Hub, where one-component names
 * live under `library/`. Loopback registries speak plain http, as docker assumes.
 */
import { isSha256Digest } from "../../../core/oci/digest.ts";
import { isValidName, isValidTag } from "../../../core/oci/reference.ts";

export interface ImageRef {
  /** host[:port] to send API requests to (`registry-1.docker.io` for Docker Hub). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  plainHttp: boolean;
}

export class ImageRefError extends Error {
  constructor(ref: string, why: string) {
    super(`invalid image reference "${ref}": ${why}`);
    this.name = "ImageRefError";
  }
}

const DOCKER_HUB_API = "registry-1.docker.io";
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", DOCKER_HUB_API]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

export function parseImageRef(s: string, opts: { plainHttp?: boolean } = {}): ImageRef {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isSha256Digest(digest)) throw new ImageRefError(s, `"${digest}" is not a sha256 digest`);
  }

  let registry = "docker.io";
  const slash = rest.indexOf("/");
  if (slash >= 0 && looksLikeHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ImageRefError(s, `"${tag}" is not a valid tag`);
  }

  const hub = DOCKER_HUB_ALIASES.has(registry);
  const repository = hub && !rest.includes("/") ? `library/${rest}` : rest;
  if (!isValidName(repository)) {
    throw new ImageRefError(s, `"${repository}" is not a valid repository name (lowercase, [a-z0-9._-] and /)`);
  }

  const ref: ImageRef = {
    registry: hub ? DOCKER_HUB_API : registry,
    repository,
    plainHttp: opts.plainHttp === true || LOOPBACK_HOSTS.has(hostOf(registry)),
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The reference a manifest request names: the digest when pinned, else the tag, else `latest`. */
export function manifestReference(ref: ImageRef): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** `host[:port]/repo[:tag][@digest]`, with Docker Hub spelled `docker.io` as users write it. */
export function formatImageRef(ref: ImageRef): string {
  const host = ref.registry === DOCKER_HUB_API ? "docker.io" : ref.registry;
  return `${host}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

/** The base URL of a registry's API. */
export function registryBaseUrl(registry: string, plainHttp: boolean): string {
  return `${plainHttp ? "http" : "https"}://${registry}`;
}

function looksLikeHost(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost" || component.startsWith("[");
}

/** `host` without its port: `127.0.0.1:5000` -> `127.0.0.1`, `[::1]:5000` -> `[::1]`. */
function hostOf(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(0, registry.indexOf("]") + 1);
  const colon = registry.indexOf(":");
  return colon >= 0 ? registry.slice(0, colon) : registry;
}
