/** `--platform os/arch[/variant]`, as docker and skopeo spell it. */
import type { Platform } from "../../../core/oci/manifest.ts";
import { InputError } from "../spec/errors.ts";

export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new InputError(`--platform must be os/arch[/variant] (e.g. linux/arm64/v8), got "${s}"`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** A wanted platform without a variant matches any variant, as in docker. */
export function platformMatches(have: Platform, want: Platform): boolean {
  return (
    have.os === want.os && have.architecture === want.architecture && (!want.variant || have.variant === want.variant)
  );
}
