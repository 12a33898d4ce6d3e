/** Platforms as tests spell them: `os/arch[/variant]`, and `os-arch` inside file names. */
import type { Platform } from "../../../core/oci/manifest.ts";

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) throw new Error(`platform must be os/arch[/variant], got ${s}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

export function platformSlug(p: Platform): string {
  return formatPlatform(p).replaceAll("/", "-");
}
