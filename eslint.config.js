// Lint for the whole tree: typescript-eslint's recommended rules on every TS file, with
// underscore-prefixed names allowed to be unused (parameters a signature requires), and empty
// interfaces allowed when they extend one type: that is how `Cloudflare.Env` is augmented.
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["node_modules/", ".wrangler/", "**/dist/", "coverage/"] },
  tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/no-empty-object-type": ["error", { allowInterfaces: "with-single-extends" }],
    },
  },
);
