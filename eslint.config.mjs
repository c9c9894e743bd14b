// Lint rules of the house: typescript-eslint's recommended set; formatting is Prettier's job.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    // Golden files are rendered output, compared byte for byte (the Worker script among them).
    { ignores: ["node_modules/", "dist/", "examples/*/node_modules/", ".pulumi-state/", "test/unit/golden/"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
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
);
