/** The collector's settings come from the one configuration module; this names what the GC uses. */
export { readConfig, type GcConfig } from "../config.ts";
import { DEFAULTS, readConfig, type GcConfig, type Vars } from "../config.ts";

export const GC_DEFAULTS = {
  graceSeconds: DEFAULTS.gcGraceSeconds,
  uploadTtlSeconds: DEFAULTS.uploadTtlSeconds,
  derivedTtlSeconds: DEFAULTS.gcDerivedTtlSeconds,
  maxOperations: DEFAULTS.gcMaxOperations,
} as const;

export function gcConfig(vars: Vars): GcConfig {
  return readConfig(vars).gc;
}
