/**
 * The schema library of the Worker and of the schemas in core/: zod's functional API
 * (`zod/mini`), which bundles only what is used, with its English messages. The classic API
 * brings every method and all locales into any bundle that imports it: about 470 KiB of the
 * Worker's 560 KiB before this. Import it as `import * as z from ".../core/zod.ts"`, never as one
 * object (`{ z }`), or the bundler has to keep every part of zod.
 */
import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

config(en());

export * from "zod/mini";
