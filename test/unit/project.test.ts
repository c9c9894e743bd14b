import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const ROOT = path.join(__dirname, "..", "..");

describe("the Pulumi project", () => {
    const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const declared = Object.keys(project.config).map((k) => k.replace(/^matrix:/, ""));
    const sources = ["src/program.ts", "src/model/stackConfig.ts"].map((f) => fs.readFileSync(path.join(ROOT, f), "utf8")).join("\n");
    const read = new Set([...sources.matchAll(/(?:get|getNumber|getBoolean|required|stringList|requireSecret|isSet)\((?:cfg, )?"([a-zA-Z]+)"/g)].map((m) => m[1]));

    it("runs the tests on Node.js 22 or newer (the node devDependency)", () => {
        assert.ok(Number(process.versions.node.split(".")[0]) >= 22, `node ${process.versions.node}`);
        assert.equal(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).engines.node, ">=22");
    });

    it("runs src/program.ts on Node.js with a local state backend", () => {
        assert.equal(project.name, "matrix");
        assert.equal(project.runtime.name, "nodejs");
        assert.equal(project.main, "src/program.ts");
        assert.match(project.backend.url, /^file:\/\/\.\//);
        assert.ok(fs.readFileSync(path.join(ROOT, ".gitignore"), "utf8").includes(".pulumi-state/*"));
        assert.ok(fs.existsSync(path.join(ROOT, ".pulumi-state", ".gitkeep")), "the state directory exists in a fresh clone");
    });

    it("keeps src/ free of Pulumi imports except the two entry points", () => {
        const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
        const offenders = walk(path.join(ROOT, "src")).filter((f) => f.endsWith(".ts") && !/src\/(index|program)\.ts$/.test(f))
            .filter((f) => /from "@pulumi\//.test(fs.readFileSync(f, "utf8")));
        assert.deepEqual(offenders, []);
    });

    it("declares every key the program reads, and reads every key it declares", () => {
        assert.deepEqual([...read].sort(), [...declared].sort());
    });

    it("declares each key with a type Pulumi knows and a description; secrets have no default", () => {
        for (const [k, v] of Object.entries(project.config) as [string, Record<string, unknown>][]) {
            assert.ok(k.startsWith("matrix:"), k);
            assert.ok(["string", "integer", "boolean", "array"].includes(String(v.type)), `${k}: type ${v.type}`);
            assert.ok(typeof v.description === "string" && v.description.length > 10, `${k}: description`);
            if (v.secret) assert.equal(v.default, undefined, `${k}: a secret with a default`);
        }
    });

    it("documents every key in the README and in Pulumi.example.yaml", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const example = fs.readFileSync(path.join(ROOT, "Pulumi.example.yaml"), "utf8");
        for (const k of declared) {
            assert.ok(readme.includes(`\`${k}\``), `README lacks ${k}`);
            assert.ok(example.includes(`matrix:${k}`), `Pulumi.example.yaml lacks ${k}`);
        }
    });
});
