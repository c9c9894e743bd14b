// Lint rules of the house: typescript-eslint's recommended set, and the layers of docs/ARCHITECTURE.md
// (imports point one way: components/ into src/; inside src/, provision into render into model).
// Formatting is Prettier's job; imports and exports are sorted (simple-import-sort, fixed by `eslint --fix`).
import js from "@eslint/js";
import simpleImportSort from "eslint-plugin-simple-import-sort";
import tseslint from "typescript-eslint";

/** A layer's import restrictions: the folders it must not import from, each with the reason an editor shows. */
function layer(files, forbidden) {
    return {
        files,
        rules: {
            "no-restricted-imports": ["error", { patterns: forbidden.map(([group, message]) => ({ group, message })) }],
        },
    };
}

const PULUMI = [["@pulumi/*"], "src/ is plain TypeScript: only src/index.ts and src/program.ts import Pulumi"];
const COMPONENTS = [["**/components/**", "**/components"], "src/ never imports components/: components build on src/"];
const CONFIG = [["**/config/**", "**/config"], "src/config/ is the stack program's adapter: only src/program.ts and the generators import it"];
const PROVISION = [["**/provision/**", "**/provision"], "provision/ builds on render/ and model/, never the reverse"];
const RENDER = [["**/render/**", "**/render"], "render/ builds on model/, never the reverse"];

export default tseslint.config(
    // Golden files are rendered output, compared byte for byte (the Worker script among them).
    { ignores: ["node_modules/", "dist/", "examples/*/node_modules/", ".pulumi-state/", "test/unit/golden/", "test/**/golden/"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ["**/*.ts", "**/*.mjs"],
        plugins: { "simple-import-sort": simpleImportSort },
        rules: {
            "simple-import-sort/imports": "error",
            "simple-import-sort/exports": "error",
        },
    },
    {
        files: ["**/*.ts"],
        rules: {
            // The e2e harness speaks to Pulumi's untyped mock protocol.
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
            // Tests load program files afresh with require().
            "@typescript-eslint/no-require-imports": "off",
        },
    },
    layer(["src/model/**/*.ts"], [PULUMI, COMPONENTS, CONFIG, PROVISION, RENDER]),
    layer(["src/render/**/*.ts"], [PULUMI, COMPONENTS, CONFIG, PROVISION]),
    layer(["src/provision/**/*.ts"], [PULUMI, COMPONENTS, CONFIG]),
    layer(["src/config/**/*.ts"], [PULUMI, COMPONENTS, PROVISION]),
    layer(["components/**/*.ts"], [CONFIG]),
    // The stack only composes: the plan (src/model) decides, the children render and provision (a later block wins).
    layer(
        ["components/MatrixStack.ts"],
        [
            CONFIG,
            [[...PROVISION[0], ...RENDER[0]], "MatrixStack only composes: its plan is src/model/stack.ts, and each child renders and provisions its own files"],
        ],
    ),
);
