// Drift, for real with bash: files written through the real prelude keep a
// record (a root-only copy of readable files, only a hash of secret ones),
// and the drift check installed the way the Host bootstrap installs it reports
// an edited file as a unified diff, a chmod, a tampered secret without its
// content, and a deleted file; a re-run of the write script puts everything
// back, and prune forgets what it removes. Runs as root (the records are root's).
import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { applyFileSet, FileSet } from "../../src/provision/apply";
import { sh } from "../../src/provision/sh";
import { script } from "../../src/provision/shell";
import { DIGEST_KEY_FILE, DRIFT_COMMAND, driftCheckScript, PENDING_DIR, WRITTEN_DIR } from "../../src/render/drift";
import { makeTempDir, run } from "../support/integration/processes";

describe("drift: records of what was written, and pulumi-matrix-drift", function () {
    const secretValue = `s3cret-${crypto.randomBytes(12).toString("hex")}`;
    const tamperedValue = `t4mpered-${crypto.randomBytes(12).toString("hex")}`;
    const suffix = crypto.randomBytes(4).toString("hex");
    let dir: string;
    let check: string;
    const p = (name: string) => path.join(dir, name);
    const records = (f: string) => path.join(WRITTEN_DIR, "records", f);
    const copies = (f: string) => path.join(WRITTEN_DIR, "files", f);

    const readable = (files: string[]): FileSet => ({
        name: `test-drift-${suffix}`,
        files: files.map((f) => ({ path: p(f), content: `# ${f}\nkey = value\nother = 1\n` })),
        onChange: [],
    });
    const secrets: () => FileSet = () => ({
        name: `test-drift-${suffix}-keys`,
        secret: true,
        files: [{ path: p("s.key"), content: `${secretValue}\n`, mode: "0640" }],
    });
    const write = (files = ["a.conf", "b.conf", "c.conf", "d.conf"]) =>
        run("bash", ["-s"], { input: script("test drift", [applyFileSet(readable(files)), applyFileSet(secrets())]) });
    const drift = (...args: string[]) => run(check, args.length ? args : [dir], { allowFailure: true });

    before(async function () {
        if (process.getuid?.() !== 0) this.skip();
        dir = makeTempDir("drift");
        // Installed as the Host bootstrap installs it: a root-only file of a file set.
        check = path.join(makeTempDir("drift-bin"), DRIFT_COMMAND);
        await run("bash", ["-s"], {
            input: script("test drift install", [
                applyFileSet({ name: `test-drift-${suffix}-bin`, files: [{ path: check, content: driftCheckScript(), mode: "0700" }] }),
            ]),
        });
    });

    it("keeps a root-only copy of readable files and only a hash of secret ones", async function () {
        await write();
        assert.equal(fs.statSync(WRITTEN_DIR).mode & 0o777, 0o700);
        assert.equal(fs.readFileSync(copies(p("a.conf")), "utf8"), fs.readFileSync(p("a.conf"), "utf8"));
        assert.equal(fs.statSync(copies(p("a.conf"))).mode & 0o777, 0o600);
        assert.match(fs.readFileSync(records(p("a.conf")), "utf8"), new RegExp(`^readable 644 root root [0-9a-f]{64} test-drift-${suffix}\n$`));
        assert.ok(!fs.existsSync(copies(p("s.key"))), "a secret is never copied");
        const rec = fs.readFileSync(records(p("s.key")), "utf8");
        // Keyed with the host's digest key: the record's digest is no use for guessing the secret offline.
        const key = fs.readFileSync(DIGEST_KEY_FILE, "utf8").trim();
        assert.equal(fs.statSync(DIGEST_KEY_FILE).mode & 0o777, 0o600);
        const keyed = crypto.createHmac("sha256", key).update(`${secretValue}\n`).digest("hex");
        assert.equal(rec, `secret 640 root root hmac:${keyed} test-drift-${suffix}-keys\n`);
        assert.ok(!rec.includes(crypto.createHash("sha256").update(`${secretValue}\n`).digest("hex")), "no plain SHA-256 of a secret");
        assert.ok(!rec.includes(secretValue));
        const clean = await drift();
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.match(clean.stdout, /no drift: 5 files are as pulumi-matrix wrote them/);
    });

    it("reports an edit as a unified diff, a chmod, a tampered secret without content, a deleted file; exits 1", async function () {
        await write();
        fs.writeFileSync(p("a.conf"), "# a.conf\nkey = edited by hand\nother = 1\n");
        fs.chmodSync(p("b.conf"), 0o600);
        fs.writeFileSync(p("s.key"), `${tamperedValue}\n`);
        fs.rmSync(p("c.conf"));
        const r = await drift();
        process.stdout.write(`      sample output:\n${(r.stdout + r.stderr).replace(/^/gm, "      | ")}\n`);
        assert.equal(r.code, 1, r.stderr);
        const a = p("a.conf");
        assert.ok(
            r.stdout.includes(
                `--- ${a} (as pulumi-matrix wrote it)\n+++ ${a} (on this host)\n@@ -1,3 +1,3 @@\n # a.conf\n-key = value\n+key = edited by hand\n other = 1\n`,
            ),
            r.stdout,
        );
        assert.ok(r.stdout.includes(`${p("b.conf")}: mode 600 owner root:root, pulumi-matrix wrote mode 644 owner root:root\n`), r.stdout);
        assert.ok(r.stdout.includes(`${p("s.key")}: differs (secret, content not shown)\n`), r.stdout);
        assert.ok(r.stdout.includes(`${p("c.conf")}: missing\n`), r.stdout);
        assert.ok(!r.stdout.includes(p("d.conf")), "an unchanged file is not mentioned");
        assert.match(r.stdout, /4 of 5 files differ from what pulumi-matrix wrote\.\n/);
        assert.match(r.stdout, /pulumi config set reapply <any new value> && pulumi up/);
        for (const s of [secretValue, tamperedValue]) assert.ok(!(r.stdout + r.stderr).includes(s), "no secret content in the output");
        // It changed nothing.
        assert.equal(fs.readFileSync(a, "utf8"), "# a.conf\nkey = edited by hand\nother = 1\n");
        assert.ok(!fs.existsSync(p("c.conf")));
    });

    it("checks only the paths asked for, and runs the same when piped to bash (not installed)", async function () {
        const one = await drift(p("b.conf"));
        assert.equal(one.code, 1);
        assert.doesNotMatch(one.stdout, /a\.conf|s\.key|c\.conf/);
        assert.match(one.stdout, /1 of 1 files differ/);
        const piped = await run("bash", ["-s", "--", dir], { input: driftCheckScript(), allowFailure: true });
        assert.equal(piped.code, 1);
        assert.match(piped.stdout, /4 of 5 files differ/);
    });

    it("after the write script runs again, reports no drift and exits 0", async function () {
        const r = await write();
        assert.match(r.stdout, /updated .*a\.conf/);
        const clean = await drift();
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.match(clean.stdout, /no drift: 5 files/);
        assert.equal(fs.readFileSync(p("s.key"), "utf8"), `${secretValue}\n`);
    });

    it("checks an earlier release's plain SHA-256 record of a secret, and the next run keys it", async function () {
        const rec = records(p("s.key"));
        const plain = crypto.createHash("sha256").update(`${secretValue}\n`).digest("hex");
        fs.writeFileSync(rec, `secret 640 root root ${plain} test-drift-${suffix}-keys\n`);
        const clean = await drift(p("s.key"));
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        fs.writeFileSync(rec, `secret 640 root root ${"0".repeat(64)} test-drift-${suffix}-keys\n`);
        const drifted = await drift(p("s.key"));
        assert.equal(drifted.code, 1, drifted.stdout + drifted.stderr);
        await write();
        assert.match(fs.readFileSync(rec, "utf8"), /^secret 640 root root hmac:[0-9a-f]{64} /);
    });

    it("prune removes the file's record and copy", async function () {
        await write(["a.conf", "b.conf", "d.conf"]);
        assert.ok(!fs.existsSync(p("c.conf")));
        assert.ok(!fs.existsSync(records(p("c.conf"))));
        assert.ok(!fs.existsSync(copies(p("c.conf"))));
        const clean = await drift();
        assert.equal(clean.code, 0);
        assert.match(clean.stdout, /no drift: 4 files/);
    });

    it("reports a file set whose reload or restart is still owed (a run died before its handlers), on a whole-host check", async function () {
        const name = `test-drift-${suffix}-pending`;
        const killed = await run("bash", ["-s"], {
            input: script("test drift pending", [
                applyFileSet({ name, files: [{ path: p("pending.conf"), content: "x\n" }], onChange: [{ kind: "run", command: sh`kill -KILL $$` }] }),
            ]),
            allowFailure: true,
        });
        assert.notEqual(killed.code, 0);
        const line = `file set ${name}: changed, but its reload or restart has not run yet`;
        const r = await run(check, [], { allowFailure: true });
        // Not 0; other tests' records on this machine may make it 2.
        assert.notEqual(r.code, 0);
        assert.ok(r.stdout.includes(line), r.stdout);
        assert.match(r.stdout, /file sets wait for their reload or restart/);
        assert.ok(!(await drift()).stdout.includes(line), "a check of paths only is about files");
        await run("bash", ["-s"], { input: script("test drift pending", [applyFileSet({ name, files: [{ path: p("pending.conf"), content: "x\n" }] })]) });
        assert.ok(!fs.existsSync(path.join(PENDING_DIR, name)));
        assert.ok(!(await run(check, [], { allowFailure: true })).stdout.includes(line));
        await run("bash", ["-s"], { input: script("test drift pending", [applyFileSet({ name, files: [] })]) });
    });

    it("exits 2 when it cannot check (a copy is gone, or not root)", async function () {
        fs.rmSync(copies(p("d.conf")));
        const r = await drift();
        assert.equal(r.code, 2);
        assert.match(r.stderr, /d\.conf: cannot check: the copy .* is missing/);
        await write();
        assert.equal((await drift()).code, 0, "the next write restores the copy");
        const other = await run("bash", ["-s", "--", dir], { input: driftCheckScript(), allowFailure: true, user: "nobody" });
        assert.equal(other.code, 2);
        assert.match(other.stderr, /run it as root/);
    });
});
