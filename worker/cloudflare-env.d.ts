// Types for `cloudflare:workers` `env` and `exports` (used by the workerd tests): the Worker's
// bindings and its main module.
import type { Bindings } from "./env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {}
    interface GlobalProps {
      mainModule: typeof import("./index.ts");
    }
  }
}
