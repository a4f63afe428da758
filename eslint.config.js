import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Which src/ folders each src/ folder may import besides itself: the arrows of docs/architecture.md ("Layout").
// cli is the top and may import anything; a folder missing here may not be imported by any listed folder.
const LAYERS = {
  // Constant lists only (drift methods, corrections): the one source both the CRD and the engine read.
  vocabulary: [],
  api: ["vocabulary"],
  monitoring: ["vocabulary"],
  kube: ["api", "vocabulary"],
  devcluster: ["api", "kube", "monitoring", "vocabulary"],
  operator: ["api", "kube", "monitoring", "vocabulary"],
  runtime: ["api", "kube", "monitoring", "vocabulary"],
  training: ["api", "kube", "monitoring", "runtime", "vocabulary"],
  demo: ["api", "kube", "monitoring", "runtime", "training", "devcluster", "vocabulary"],
};
const FOLDERS = [...Object.keys(LAYERS), "cli"];
// Imports are relative, so a file `depth` folders below src/<layer>/ reaches src/<other>/ through depth + 1 "../".
const MAX_DEPTH = 3;

/** One flat-config block per folder depth: no-restricted-imports with the folders this layer must not reach. */
function layerBoundaries() {
  return Object.entries(LAYERS).flatMap(([layer, allowed]) => {
    const forbidden = FOLDERS.filter((f) => f !== layer && !allowed.includes(f));
    const message = `src/${layer} may import ${allowed.length ? `only ${allowed.map((a) => `src/${a}`).join(", ")}` : "nothing of Ballast's"} (docs/architecture.md, "Layout")`;
    return Array.from({ length: MAX_DEPTH }, (_, depth) => ({
      files: [`src/${layer}/${"*/".repeat(depth)}*.ts`],
      rules: {
        "no-restricted-imports": ["error", { patterns: [{ regex: `^(\\.\\./){${depth + 1}}(${forbidden.join("|")})(/|$)`, message }] }],
      },
    }));
  });
}

export default tseslint.config(
  { ignores: ["dist/", "bin/", "node_modules/", ".dev/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  ...layerBoundaries(),
);
