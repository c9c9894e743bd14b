import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { GENERATED_FILES, README_BEGIN, README_END, withPulumiConfig, withReadmeTable } from "../../src/config/generate";
import { STACK_CONFIG_KEYS, STACK_KEYS } from "../../src/config/keys";
import { at } from "../../src/config/settingPath";

const ROOT = path.join(__dirname, "..", "..");

describe("the files generated from the key table (src/config/keys.ts)", () => {
    for (const [file, update] of Object.entries(GENERATED_FILES)) {
        it(`${file} is up to date`, () => {
            const current = fs.readFileSync(path.join(ROOT, file), "utf8");
            assert.ok(update(current) === current, `${file} is stale: run npm run config:update (and review the diff)`);
        });
    }

    it("replaces only Pulumi.yaml's config block and the README's table, keeping the text around them", () => {
        const project = "name: matrix\n# a comment\nconfig:\n  matrix:old:\n    type: string\nbackend:\n  url: x\n";
        const updated = withPulumiConfig(project);
        assert.ok(updated.startsWith("name: matrix\n# a comment\nconfig:\n  matrix:sshHost:\n"));
        assert.ok(updated.endsWith("\nbackend:\n  url: x\n"));
        assert.doesNotMatch(updated, /matrix:old/);
        const readme = `# Title\n\nprose before\n\n${README_BEGIN}\n\n| old |\n\n${README_END}\n\nprose after\n`;
        const table = withReadmeTable(readme);
        assert.ok(table.startsWith(`# Title\n\nprose before\n\n${README_BEGIN}\n\n| key `));
        assert.ok(table.endsWith(`|\n\n${README_END}\n\nprose after\n`));
        assert.doesNotMatch(table, /\| old \|/);
        assert.throws(() => withReadmeTable("no markers"), /lacks the markers/);
    });

    it("every key is in each generated file", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const example = fs.readFileSync(path.join(ROOT, "Pulumi.example.yaml"), "utf8");
        for (const k of STACK_CONFIG_KEYS) {
            assert.match(readme, new RegExp(`^\\| \`${k}\` `, "m"), `README lacks ${k}`);
            assert.match(example, new RegExp(`^ {2}(# )?matrix:${k}:`, "m"), `Pulumi.example.yaml lacks ${k}`);
        }
    });
});

describe("settings named by typed accessors (at)", () => {
    it("records the path an accessor reads", () => {
        const path = at<{ a: { b?: { c: number } } }>((o) => o.a.b.c);
        assert.deepEqual(path.segments, ["a", "b", "c"]);
        assert.equal(String(path), "a.b.c");
        assert.equal(String(path.rest), "b.c");
        const o: Record<string, unknown> = {};
        path.set(o, 5);
        assert.deepEqual(o, { a: { b: { c: 5 } } });
        assert.equal(path.get(o), 5);
        assert.equal(path.get({ a: 1 }), undefined);
        assert.throws(() => at<{ a: number }>((o) => o), /reads no property/);
    });

    it("names a setting of MatrixStack's args for every key", () => {
        for (const k of STACK_CONFIG_KEYS) assert.ok(STACK_KEYS[k].setting.segments.length >= 2, k);
        assert.equal(String(STACK_KEYS.smtpHost.setting), "synapse.email.smtpHost");
        assert.equal(String(STACK_KEYS.workerBasePort.setting), "workers.basePort");
    });
});
