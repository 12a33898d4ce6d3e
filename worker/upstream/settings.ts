/**
 * UPSTREAMS: repository prefixes served from other registries (docs/upstreams.md).
 *
 *   UPSTREAMS='{"lab/":{"url":"http://127.0.0.1:5000","prefix":"","credentials":"LAB_CREDS"}}'
 *   LAB_CREDS='user:password'      a secret; named, never given, in UPSTREAMS
 *
 * With that, `lab/team/model` is `team/model` on the upstream. Parsed once per isolate; a
 * malformed setting refuses the requests that need it with 503 and says why, and touches nothing
 * else.
 */
import { RegistryError } from "../../core/oci/errors.ts";
import { isValidName } from "../../core/oci/reference.ts";
import * as z from "../../core/zod.ts";

export interface Upstream {
  /** The local prefix, ending in `/`. */
  local: string;
  /** The upstream's base URL, without a trailing `/`. */
  url: string;
  /** What replaces `local` in a name on the upstream ("" by default). */
  remote: string;
  /** `user:password`, read from the secret the setting names. */
  credentials?: { user: string; password: string };
}

const entrySchema = z.strictObject({
  url: z.string().check(z.regex(/^https?:\/\/[^/\s]+(\/[^\s]*)?$/, { message: "url must be http(s)://host[:port]" })),
  prefix: z._default(z.string(), ""),
  credentials: z.optional(z.string().check(z.regex(/^[A-Z_][A-Z0-9_]*$/, { message: "a secret's name" }))),
});
const upstreamsSchema = z.record(z.string().check(z.regex(/^[a-z0-9][a-z0-9._\-/]*\/$/)), entrySchema);

let parsed: { raw: string; upstreams: Upstream[] | RegistryError } | undefined;

/** The configured upstreams, longest prefix first (so `hub/library/` wins over `hub/`). */
export function upstreamsOf(env: Record<string, unknown>): Upstream[] {
  const raw = typeof env.UPSTREAMS === "string" ? env.UPSTREAMS.trim() : "";
  if (!raw) return [];
  if (parsed?.raw !== raw) parsed = { raw, upstreams: parse(raw, env) };
  if (parsed.upstreams instanceof RegistryError) throw parsed.upstreams;
  return parsed.upstreams;
}

/** The upstream a repository name is mirrored from, and its name there; undefined for a local repository. */
export function mirrorOf(
  env: Record<string, unknown>,
  name: string,
): { upstream: Upstream; remoteName: string } | undefined {
  // A setting that is wrong in an entry refuses only the repositories under its prefixes; one that
  // is not JSON at all could be about any of them, and refuses every one.
  const prefixes = localPrefixes(env.UPSTREAMS);
  if (prefixes && !prefixes.some((p) => name.startsWith(p))) return undefined;
  const upstream = upstreamsOf(env).find((u) => name.startsWith(u.local));
  return upstream ? { upstream, remoteName: upstream.remote + name.slice(upstream.local.length) } : undefined;
}

/** The keys of an UPSTREAMS that is a JSON object ([] when unset); undefined when it is not one. */
export function localPrefixes(raw: unknown): string[] | undefined {
  if (typeof raw !== "string" || !raw.trim()) return [];
  try {
    const json = JSON.parse(raw) as unknown;
    return json && typeof json === "object" && !Array.isArray(json) ? Object.keys(json) : undefined;
  } catch {
    return undefined;
  }
}

function parse(raw: string, env: Record<string, unknown>): Upstream[] | RegistryError {
  const fail = (why: string): RegistryError => {
    console.error(`config: UPSTREAMS ${why}`);
    return new RegistryError("UNAVAILABLE", `the registry's UPSTREAMS setting is malformed: ${why}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return fail("is not JSON");
  }
  const r = upstreamsSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return fail(`${issue?.path.join(".") || "(top)"}: ${issue?.message}`);
  }
  const out: Upstream[] = [];
  for (const [local, e] of Object.entries(r.data)) {
    if (e.prefix && !isValidName(e.prefix.replace(/\/$/, "")))
      return fail(`${local}.prefix is not a repository prefix`);
    const remote = e.prefix && !e.prefix.endsWith("/") ? `${e.prefix}/` : e.prefix;
    const upstream: Upstream = { local, url: e.url.replace(/\/+$/, ""), remote };
    if (e.credentials) {
      const secret = env[e.credentials];
      if (typeof secret !== "string" || !secret.includes(":")) {
        // Named, not shown: the value is a secret.
        return fail(`${local}.credentials names ${e.credentials}, which is not set to user:password`);
      }
      const at = secret.indexOf(":");
      upstream.credentials = { user: secret.slice(0, at), password: secret.slice(at + 1) };
    }
    out.push(upstream);
  }
  return out.sort((a, b) => b.local.length - a.local.length);
}
