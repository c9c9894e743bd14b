import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { parse } from "yaml";

import { GENERATED_FILES, README_BEGIN, README_END, withPulumiConfig, withReadmeTable } from "../../src/config/generate";
import { STACK_CONFIG_KEYS, STACK_KEYS, StackConfigKey } from "../../src/config/keys";
import { KEY_MIGRATIONS, KeyMigration, migrationErrors, migrationProblems, withNewKeys } from "../../src/config/migrations";
import { at } from "../../src/config/settingPath";

const ROOT = path.join(__dirname, "..", "..");

describe("the files generated from the key table (src/config/keys.ts)", () => {
    it('declares every key\'s default in its Pulumi type: the engine refuses a project whose default is not ("" for an integer)', () => {
        const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
            config: Record<string, { type: string; default?: unknown }>;
        };
        const wrong = Object.entries(project.config)
            .filter(([, d]) => "default" in d)
            .filter(([, d]) =>
                d.type === "integer"
                    ? !Number.isInteger(d.default)
                    : d.type === "boolean"
                      ? typeof d.default !== "boolean"
                      : d.type === "array"
                        ? !Array.isArray(d.default)
                        : typeof d.default !== "string",
            )
            .map(([k, d]) => `${k}: ${d.type} ${JSON.stringify(d.default)}`);
        assert.deepEqual(wrong, []);
    });

    for (const [file, update] of Object.entries(GENERATED_FILES)) {
        it(`${file} is up to date`, () => {
            const current = fs.readFileSync(path.join(ROOT, file), "utf8");
            assert.ok(update(current) === current, `${file} is stale: run npm run config:update (and review the diff)`);
        });
    }

    it("a file edited by hand, or a table changed without config:update, is stale", () => {
        for (const [file, update] of Object.entries(GENERATED_FILES)) {
            const current = fs.readFileSync(path.join(ROOT, file), "utf8");
            const edited = current.replace(file === "README.md" ? "| `sshHost`" : "sshHost", file === "README.md" ? "| `sshHots`" : "sshHots");
            assert.notEqual(update(edited), edited, file);
        }
    });

    it("replaces only Pulumi.yaml's config block and the README's table, keeping the text around them", () => {
        const project = "name: matrix\n# a comment\nconfig:\n  matrix:old:\n    type: string\nbackend:\n  url: x\n";
        const updated = withPulumiConfig(project);
        assert.ok(updated.startsWith("name: matrix\n# a comment\nconfig:\n  matrix:sshHost:\n"));
        assert.ok(updated.endsWith("\nbackend:\n  url: x\n"));
        assert.doesNotMatch(updated, /matrix:old/);
        const readme = `# Title\n\nprose before\n\n${README_BEGIN}\n\n| old |\n\n${README_END}\n\nprose after\n`;
        const table = withReadmeTable(readme);
        assert.ok(table.startsWith(`# Title\n\nprose before\n\n${README_BEGIN}\n\n\`sshPrivateKey\` (required), `));
        assert.match(table, /are secrets: set them with[^]*\n\n\| key /);
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

describe("renamed and removed keys (src/config/migrations.ts)", () => {
    const published = JSON.parse(fs.readFileSync(path.join(ROOT, "src", "config", "published-keys.json"), "utf8")) as string[];
    const raw = (values: Record<string, string>, secret: string[] = []) => ({ get: (k: string) => values[k], isSecret: (k: string) => secret.includes(k) });

    it("every key ever published is in the table or has a migration", () => {
        assert.deepEqual(migrationProblems(published, STACK_CONFIG_KEYS), []);
        assert.deepEqual(KEY_MIGRATIONS, [], "no key has been renamed or removed yet");
    });

    it("a key renamed or removed in the table without a migration fails (a synthetic table)", () => {
        const renamed = STACK_CONFIG_KEYS.map((k) => (k === "enableMetrics" ? "metrics" : k));
        const problems = migrationProblems(published, renamed);
        assert.equal(problems.length, 1);
        assert.match(problems[0], /^matrix:enableMetrics was published and is no longer in the key table: add a migration for it to KEY_MIGRATIONS/);
        const removed = STACK_CONFIG_KEYS.filter((k) => k !== "reportStats");
        assert.match(migrationProblems(published, removed).join("\n"), /^matrix:reportStats was published/);
        // With migrations, both are fine; a migration from a key still in the table, or to one it lacks, is not.
        assert.deepEqual(
            migrationProblems(
                published,
                renamed.filter((k) => k !== "reportStats"),
                [
                    { from: "enableMetrics", to: "metrics" as StackConfigKey, why: "renamed" },
                    { from: "reportStats", removed: true, why: "gone" },
                ],
            ).filter((p) => !/goes to matrix:metrics/.test(p)),
            [],
        );
        assert.deepEqual(migrationProblems(published, STACK_CONFIG_KEYS, [{ from: "presence", removed: true, why: "x" }]), [
            "the migration from matrix:presence names a key the table still has",
        ]);
        assert.deepEqual(migrationProblems([], STACK_CONFIG_KEYS, [{ from: "old", to: "nope" as StackConfigKey, why: "x" }]), [
            "the migration from matrix:old goes to matrix:nope, which the table lacks",
        ]);
    });

    it("the published list only grows: config:update appends new keys and keeps old ones", () => {
        assert.deepEqual(withNewKeys(["a", "gone"], ["a", "b"]), ["a", "gone", "b"]);
    });

    it("a stack that sets an old key fails, naming it, the value, the new key and the exact commands", () => {
        const migrations: KeyMigration[] = [
            { from: "metricsOn", to: "enableMetrics", why: "one name per concept" },
            { from: "smtpPass", to: "smtpPassword", why: "one name per concept" },
            { from: "ntp", to: "ntpServers", why: "one name per concept" },
            { from: "legacyProxy", removed: true, why: "the proxy is always nginx or none, see matrix:proxy" },
        ];
        assert.deepEqual(migrationErrors(raw({ sshHost: "x" }), migrations), []);
        const messages = migrationErrors(
            raw({ metricsOn: "false", smtpPass: "SECRETpw", ntp: '["a.example", "it\'s"]', legacyProxy: "yes" }, ["smtpPass"]),
            migrations,
        ).map((e) => e.message);
        assert.deepEqual(messages, [
            "matrix:metricsOn is \"false\"; matrix:metricsOn was renamed to matrix:enableMetrics (one name per concept); move the value with `pulumi config set enableMetrics 'false' && pulumi config rm metricsOn`",
            "matrix:smtpPass is [secret, not shown]; matrix:smtpPass was renamed to matrix:smtpPassword (one name per concept); move the value with `pulumi config get smtpPass | pulumi config set --secret smtpPassword && pulumi config rm smtpPass`",
            "matrix:ntp is \"[\\\"a.example\\\", \\\"it's\\\"]\"; matrix:ntp was renamed to matrix:ntpServers (one name per concept); move the value with `pulumi config set --path 'ntpServers[0]' 'a.example' && pulumi config set --path 'ntpServers[1]' 'it'\\''s' && pulumi config rm ntp`",
            'matrix:legacyProxy is "yes"; matrix:legacyProxy was removed (the proxy is always nginx or none, see matrix:proxy); remove it with `pulumi config rm legacyProxy`',
        ]);
        assert.ok(!messages.join("\n").includes("SECRETpw"));
    });
});
