/** The rules of the house that hold across every service: secrets, scripts, the shared provisioning code, goldens. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { applyFileSet, restartTimeout } from "../../src/provision/apply";
import { heredocDelimiter, raw, sh } from "../../src/provision/sh";
import { script, SECRET_LOG_DIR } from "../../src/provision/shell";
import { declaredGoldens, golden, goldenFiles, PRELUDE, PRELUDE_GOLDEN, PRELUDE_MARKER, withPreludeMarker } from "../support/golden";
import { stackArgs, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordedResource, runWithMocks, valueOf } from "../support/unit/mocks";

/** Every string a reviewer, log or process list could see: non-secret inputs and outputs. */
function readableStrings(r: RecordedResource): string[] {
    const out: string[] = [];
    for (const [k, v] of Object.entries(r.inputs)) {
        if (!r.secretInputs.includes(k)) out.push(JSON.stringify(v));
    }
    return out;
}

describe("secrets", () => {
    async function deploy() {
        const args = stackArgs({
            email: { smtpHost: "smtp.example.com", smtpUser: "matrix", notifFrom: "noreply@example.com" },
            smtpPassword: "SECRETsmtp-password",
        });
        return runWithMocks(
            () => new MatrixStack("prod", args),
            (s) => [s.synapse.signingKeyId, s.synapse.adminPassword!],
        );
    }

    it("never appear in a readable input, a command line or a non-secret stdin", async () => {
        const { mocks } = await deploy();
        // Mock random values, the SSH key and the SMTP password all contain SECRET; the signing key seed is checked below.
        for (const r of mocks.resources) {
            for (const text of readableStrings(r)) assert.doesNotMatch(text, /SECRET/, `${r.name} exposes a secret: ${text.slice(0, 200)}`);
            if (r.type === "command:remote:Command") assert.doesNotMatch(String(r.inputs.create), /SECRET/, `${r.name} command line`);
        }
    });

    it("travel only in secret inputs of commands that log nothing", async () => {
        const { mocks } = await deploy();
        for (const r of mocks.resources.filter((x) => x.type === "command:remote:Command")) {
            const stdin = String(r.inputs.stdin ?? "");
            if (/SECRET|ed25519 a_/.test(stdin)) {
                assert.ok(r.secretInputs.includes("stdin"), `${r.name}: stdin carries a secret but is not marked secret`);
                assert.equal(r.inputs.logging, "none", `${r.name}: logs a secret-bearing command`);
            }
        }
        // @pulumi/command puts all a failing command printed into its error, in clear: a secret step prints nothing of its own.
        for (const r of mocks.resources.filter((x) => x.type === "command:remote:Command" && x.secretInputs.includes("stdin"))) {
            const stdin = String(r.inputs.stdin);
            assert.ok(stdin.includes(`\n(main </dev/null) >${SECRET_LOG_DIR}/${r.name}.log 2>&1\n`), `${r.name}: its output is not kept on the host`);
            assert.ok(!stdin.includes("\nmain </dev/null\n"), `${r.name}: runs main with its output sent back`);
        }
        // @pulumi/command keeps each command's connection secret; the address, port and host key are repeated readably in the script.
        for (const r of mocks.resources.filter((x) => x.type === "command:remote:Command")) {
            assert.ok(r.secretInputs.includes("connection"), `${r.name}: connection not secret`);
            if (r.name.endsWith("-probe")) continue;
            assert.match(String(r.inputs.stdin), /^# target: root@203\.0\.113\.10:22, host key ssh-ed25519 SHA256:\S+\n/, `${r.name}: no readable target line`);
        }
    });

    it("keep the signing key, passwords and shared secrets out of the readable homeserver.yaml", async () => {
        const { mocks } = await deploy();
        const config = String(mocks.byName("prod-synapse-config").inputs.stdin);
        assert.match(config, /registration_shared_secret_path: \/etc\/matrix-synapse\/secrets\/registration_shared_secret/);
        assert.match(config, /macaroon_secret_key_path:/);
        assert.match(config, /form_secret_path:/);
        assert.match(config, /passfile: \/etc\/matrix-synapse\/secrets\/pgpass/);
        assert.doesNotMatch(config, /SECRET|ed25519 a_|smtp_pass|password:/);
        const secrets = String(mocks.byName("prod-synapse-secrets").inputs.stdin);
        assert.match(secrets, /ed25519 a_[a-z]{4} [A-Za-z0-9+/]{43}\n/);
        assert.match(secrets, /smtp_pass: SECRETsmtp-password/);
    });

    it("are secret outputs", async () => {
        const { result } = await deploy();
        const pulumi = await import("@pulumi/pulumi");
        assert.equal(await pulumi.isSecret(result.synapse.adminPassword!), true);
        assert.equal(await pulumi.isSecret(result.synapse.registrationSharedSecret), true);
        assert.equal(await pulumi.isSecret(result.database!.password), true);
        assert.equal(await pulumi.isSecret(result.synapse.signingKeyId), false);
        assert.match(await valueOf(result.synapse.adminPassword!), /^SECRET/);
    });
});

const ROOT = path.join(__dirname, "..", "..");

describe("drift records of secret steps", () => {
    const root = path.join(__dirname, "..", "..");
    const source = (dir: string) =>
        fs
            .readdirSync(path.join(root, dir))
            .filter((f) => f.endsWith(".ts"))
            .map((f) => fs.readFileSync(path.join(root, dir, f), "utf8"));

    /** The script functions of every `hostScript(...)` call with `secret: true` in components/, read from the source. */
    function secretScriptFunctions(): Set<string> {
        const names = new Set<string>();
        for (const text of source("components")) {
            for (const call of text.split(/\bhostScript\(/).slice(1)) {
                // One call's arguments end at its options (`{ parent: ... }`), before the next statement.
                const args = call.split(/\{ parent:/)[0];
                if (!/\bsecret: true\b/.test(args)) continue;
                for (const m of args.matchAll(/\b(\w+Script)\b/g)) names.add(m[1]);
            }
        }
        return names;
    }

    /** Each script function's goldens, as the unit tests declare them (`golden("svc", "file", () => fn(...))`). */
    function goldensByFunction(): Map<string, string[]> {
        const out = new Map<string, string[]>();
        for (const text of source("test/unit")) {
            for (const m of text.matchAll(/golden\("([\w-]+)", "([^"]+)",\s*\(\) =>\s*(\w+)\(/g)) {
                out.set(m[3], [...(out.get(m[3]) ?? []), path.join(__dirname, "golden", m[1], m[2])]);
            }
        }
        return out;
    }

    it("every file a secret step writes is recorded as secret: its hash only, never a copy the drift check could print", () => {
        const functions = secretScriptFunctions();
        assert.ok(functions.has("redisPasswordScript") && functions.has("acmeCredentialsScript"), `secret steps found: ${[...functions].join(", ")}`);
        const goldens = goldensByFunction();
        for (const fn of functions) {
            const files = goldens.get(fn) ?? [];
            assert.ok(files.length > 0, `${fn} runs in a secret step but has no golden to check`);
            for (const file of files) {
                const writes = fs
                    .readFileSync(file, "utf8")
                    .split("\n")
                    .filter((l) => /(^|\| )pm_write \S+ /.test(l));
                for (const line of writes) {
                    assert.match(line, / secret( <<'PM_EOF\w*')?$/, `${fn} (${path.relative(root, file)}) writes a readable file: ${line}`);
                }
            }
        }
    });
});

describe("the component platform", () => {
    it("every script names its target readably and carries the re-apply token, so both show in a preview", async () => {
        const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu";
        const { mocks } = await runWithMocks(
            () =>
                new PostgresDatabase("pg", {
                    host: new Host("db", { host: "203.0.113.11", port: 2222, privateKey: TEST_SSH_KEY, hostKey, reapply: "2026-11-27" }),
                }),
            (db) => [db.connection],
        );
        for (const name of ["db-bootstrap", "pg-server"]) {
            const stdin = String(mocks.byName(name).inputs.stdin);
            assert.match(
                stdin,
                /^# target: root@203\.0\.113\.11:2222, host key ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\n# re-apply: 2026-11-27\n# pulumi-matrix /,
            );
        }
    });

    it("only components/remote.ts constructs command.remote.Command", () => {
        const dir = path.join(ROOT, "components");
        const users = fs.readdirSync(dir).filter((f) => /remote\.Command\(/.test(fs.readFileSync(path.join(dir, f), "utf8")));
        assert.deepEqual(users, ["remote.ts"]);
    });

    it("quoting by construction: values are quoted, raw() and nested fragments are not, values inside quotes are refused", () => {
        assert.equal(sh`rm -f ${"/tmp/a b"} ${["x", "it's"]} ${raw("$HOME")} ${sh`${"y z"}`}`.text, `rm -f '/tmp/a b' x 'it'\\''s' $HOME 'y z'`);
        assert.equal(sh`echo "$(cat ${"/etc/a b"})"`.text, `echo "$(cat '/etc/a b')"`);
        assert.throws(() => sh`echo '${"x"}'`, /inside single quotes/);
        assert.throws(() => sh`echo "${"x"}"`, /inside double quotes/);
        assert.doesNotThrow(() => sh`# it's a comment\necho ${"x"}`);
    });

    it("one heredoc delimiter rule: PM_EOF unless the content has that line, whatever else changes", () => {
        assert.equal(heredocDelimiter("a\n"), "PM_EOF");
        assert.equal(heredocDelimiter("something else entirely\n"), "PM_EOF");
        assert.equal(heredocDelimiter("PM_EOF\n"), "PM_EOF_1");
        assert.equal(heredocDelimiter("PM_EOF\nPM_EOF_1\n"), "PM_EOF_2");
        assert.equal(heredocDelimiter("x PM_EOF\n"), "PM_EOF");
    });

    it("file sets refuse names that would not be safe in the state directory", () => {
        assert.throws(() => applyFileSet({ name: "../etc", files: [] }), /file set name/);
        assert.throws(() => applyFileSet({ name: "ok", files: [{ path: "relative", content: "" }] }), /not absolute/);
    });

    it("a set's check runs after its files are written and before any handler; the set is done only after them", () => {
        const text = applyFileSet({
            name: "s",
            files: [{ path: "/etc/s.conf", content: "x\n" }],
            check: sh`s-check`,
            onChange: [{ kind: "run", command: sh`s-reload` }],
        }).text;
        const at = (needle: string) => text.indexOf(needle);
        assert.ok(at("pm_write s /etc/s.conf") < at("pm_prune s"));
        assert.ok(at("pm_prune s") < at("if pm_changed s; then"));
        assert.ok(at("if ! { s-check; } >&2; then pm_refuse s; fi") > at("if pm_changed s; then"));
        assert.ok(at("s-check") < at("s-reload"));
        assert.ok(text.endsWith("fi\npm_done s"), text);
        // Without handlers, the set is still done at its end (its pending mark goes).
        assert.match(applyFileSet({ name: "t", files: [] }).text, /^pm_prune t\npm_done t$/);
    });

    it("a step that restarts N processes one by one gets N health waits on top of its base timeout", () => {
        assert.equal(restartTimeout(0), "10m");
        assert.equal(restartTimeout(12), "70m");
        assert.equal(restartTimeout(3, 10, 60), "13m");
        // The WorkerPool sizes its secrets and config steps by the workers on each host (and the main process there).
        const pool = fs.readFileSync(path.join(__dirname, "../../components/WorkerPool.ts"), "utf8");
        assert.equal(pool.match(/timeout: restartTimeout\(workersOn\(label\)/g)?.length, 2);
    });

    it("nginx's site and every firewall set are checked before their handlers (nginx -t, nft -c)", () => {
        const nginx = readGolden("proxy/scripts/proxy-nginx.sh");
        assert.match(nginx, /pm_prune nginx-site\nif pm_changed nginx-site; then\n {4}if ! \{ nginx -t -q; \} >&2; then pm_refuse nginx-site; fi\n/);
        const host = readGolden("host/scripts/host-bootstrap.sh");
        assert.match(
            host,
            /if pm_changed host-firewall; then\n {4}if ! \{ nft -c -f \/etc\/pulumi-matrix\/firewall\.nft; \} >&2; then pm_refuse host-firewall; fi\n/,
        );
        assert.match(nginx, /if pm_changed firewall-reverseproxy-golden; then\n {4}if ! \{ if \[ -e \/etc\/pulumi-matrix\/firewall\.nft \]; then nft -c -f /);
    });
});

const readGolden = (name: string) => fs.readFileSync(path.join(__dirname, "golden", name), "utf8");

/** Every unit test file, as mocha's spec (.mocharc.json) finds them. */
function unitTestFiles(dir = __dirname): string[] {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? unitTestFiles(path.join(dir, e.name)) : e.name.endsWith(".test.ts") ? [path.join(dir, e.name)] : []));
}

describe("golden files, all services", () => {
    it("every file under test/unit/golden/ is declared by a test (no golden lingers after its render is renamed or gone)", function () {
        // The goldens are declared while the test files load: only a run that loaded them all knows every one.
        let root = this.test!.parent!;
        while (root.parent) root = root.parent;
        const loaded = new Set(root.suites.map((s) => s.file));
        const missing = unitTestFiles().filter((f) => !loaded.has(f));
        if (missing.length > 0) this.skip();
        const declared = new Set(declaredGoldens());
        const orphans = goldenFiles().filter((f) => !declared.has(f));
        assert.deepEqual(orphans, [], `golden files no test declares (remove them, or declare them with golden()): ${orphans.join(", ")}`);
    });
});

describe("the shell prelude, stored once", () => {
    const [service, name] = PRELUDE_GOLDEN.split("/");
    golden(service, name, PRELUDE);

    it("a script's golden holds one marker line where the script has the prelude", () => {
        const text = script("example", ["echo hi"]);
        assert.equal(
            withPreludeMarker("example.sh", text),
            `# example\n# Generated by pulumi-matrix; runs as root with bash.\nmain() {\n${PRELUDE_MARKER}echo hi\n}\nmain </dev/null\n`,
        );
    });

    it("a prelude anywhere else, or twice, or in a file that is not a framed script, fails", () => {
        const text = script("example", ["echo hi"]);
        assert.throws(
            () =>
                withPreludeMarker(
                    "twice.sh",
                    text.replace("echo hi", () => PRELUDE),
                ),
            /appears twice/,
        );
        assert.throws(
            () =>
                withPreludeMarker(
                    "moved.sh",
                    text.replace(PRELUDE, () => "true\n" + PRELUDE),
                ),
            /must follow "main\(\) \{" directly/,
        );
        assert.throws(() => withPreludeMarker("hook.sh", "#!/bin/sh\n" + PRELUDE), /not framed by script\(\)/);
        assert.throws(
            () =>
                withPreludeMarker(
                    "lost.sh",
                    text.replace(PRELUDE, () => ""),
                ),
            /must follow/,
        );
        assert.equal(withPreludeMarker("hook.sh", "#!/bin/sh\necho hi\n"), "#!/bin/sh\necho hi\n");
    });
});

describe("the package's exports", () => {
    // The render and provision barrels re-export whole modules (`export *`): the names they carry are listed
    // here, so a removed or renamed export shows as a line in the golden's diff.
    golden("house", "exports.txt", () => {
        const index = require("../../src/index") as Record<string, unknown>;
        const names = (o: Record<string, unknown>, prefix = ""): string[] =>
            Object.keys(o)
                .filter((k) => o[k] !== undefined)
                .sort()
                .flatMap((k) => [`${prefix}${k}`, ...(k === "render" || k === "provision" ? names(o[k] as Record<string, unknown>, `${k}.`) : [])]);
        return names(index).join("\n") + "\n";
    });
});
