// The declarative apply when things go wrong, for real with bash as root:
// a service user racing root's writes in a directory it can write (item 4
// of issue 19), a run killed between a write and its handler and a failing
// handler (item 5), a set whose check fails (item 6), and a secret step that
// fails after printing its secrets. systemctl is not involved: handlers here
// are plain commands.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { applyFileSet, FileSet } from "../../src/provision/apply";
import { Sh, sh } from "../../src/provision/sh";
import { script, SECRET_LOG_DIR, secretScript } from "../../src/provision/shell";
import { STATE_DIR, WRITTEN_DIR } from "../../src/render/drift";
import { makeTempDir, run, sleep } from "../support/integration/processes";

const setName = (base: string) => `test-${base}-${crypto.randomBytes(4).toString("hex")}`;
const runScript = (body: (Sh | string)[], allowFailure = false) => run("bash", ["-s"], { input: script("test", body), allowFailure });
const statOf = (p: string) => {
    const st = fs.lstatSync(p);
    return { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
};
const nobody = () => Number(fs.readFileSync("/etc/passwd", "utf8").match(/^nobody:x:(\d+):/m)![1]);

/** Starts a script whose file set reads its content from a fifo: it blocks mid-write until the test writes it. */
function startBlocked(set: FileSet, fifo: string) {
    const child = spawn("bash", ["-s"], { stdio: ["pipe", "pipe", "pipe"], detached: true });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise<number>((resolve) => child.once("close", (code) => resolve(code ?? 128)));
    child.stdin.end(script("test blocked", [applyFileSet({ ...set, files: [{ ...set.files[0], content: undefined, generate: sh`cat ${fifo}` }] })]));
    return { child, done, output: () => out };
}

describe("apply: races, interrupted runs, checks, secret steps", function () {
    before(function () {
        if (process.getuid?.() !== 0) this.skip();
    });

    describe("writes in a directory a service user can write (item 4)", function () {
        let dir: string;
        let victim: string;
        beforeEach(function () {
            const base = makeTempDir("race");
            fs.chmodSync(base, 0o755);
            dir = path.join(base, "conf.d");
            fs.mkdirSync(dir);
            // As /etc/postgresql/*/main or /etc/redis: the service user owns it.
            fs.chownSync(dir, nobody(), nobody());
            victim = path.join(makeTempDir("victim"), "shadow");
            fs.writeFileSync(victim, "root:secret-hash:::\n", { mode: 0o600 });
        });

        it("a user who swaps every new entry of the directory for a symlink never gets root's chmod/chown onto another file", async function () {
            const fifo = path.join(makeTempDir("fifo"), "content");
            await run("mkfifo", [fifo]);
            const target = path.join(dir, "x.conf");
            const job = startBlocked({ name: setName("race"), files: [{ path: target, mode: "0640", owner: "nobody", group: "nogroup" }] }, fifo);
            // While root's write is stuck mid-way, the user replaces every entry but the target by a symlink to the victim,
            // as often as it can for a second (with the old beside-the-target temp file this redirected root's chown).
            const swap = `for i in $(seq 200); do for f in ${dir}/* ${dir}/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] || continue; [ "$f" = ${target} ] && continue; [ -L "$f" ] && continue; rm -f "$f" && ln -s ${victim} "$f" && echo "swapped $f"; done; sleep 0.005; done`;
            const racer = await run("bash", ["-c", swap], { user: "nobody", allowFailure: true });
            fs.writeFileSync(fifo, "listen = here\n");
            const code = await job.done;
            assert.equal(code, 0, job.output());
            assert.deepEqual(statOf(victim), { mode: "600", uid: 0, gid: 0 }, `the victim's mode or owner changed; racer: ${racer.stdout}`);
            assert.equal(fs.readFileSync(victim, "utf8"), "root:secret-hash:::\n");
            assert.equal(fs.readFileSync(target, "utf8"), "listen = here\n");
            assert.deepEqual(statOf(target), { mode: "640", uid: nobody(), gid: statOf(target).gid });
            assert.equal(racer.stdout, "", "nothing of root's write was ever in the user's directory");
        });

        it("refuses a target that is a symlink, and a parent that is a symlink the user owns; the other file is untouched", async function () {
            const target = path.join(dir, "x.conf");
            await run("ln", ["-s", victim, target], { user: "nobody" });
            const r = await runScript([applyFileSet({ name: setName("link"), files: [{ path: target, content: "x\n", owner: "nobody" }] })], true);
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /refusing to write .*x\.conf: it is a symbolic link/);
            const linkDir = path.join(dir, "sub");
            await run("ln", ["-s", path.dirname(victim), linkDir], { user: "nobody" });
            const p = await runScript(
                [applyFileSet({ name: setName("link"), files: [{ path: path.join(linkDir, "shadow"), content: "x\n", owner: "nobody" }] })],
                true,
            );
            assert.notEqual(p.code, 0);
            assert.match(p.stderr, /its parent .*\/sub is a symbolic link owned by nobody, not root/);
            assert.deepEqual(statOf(victim), { mode: "600", uid: 0, gid: 0 });
            assert.equal(fs.readFileSync(victim, "utf8"), "root:secret-hash:::\n");
        });

        it("the next run removes what a killed run staged, and the temp files older versions left beside their targets", async function () {
            const fifo = path.join(makeTempDir("fifo"), "content");
            await run("mkfifo", [fifo]);
            const name = setName("stale");
            const target = path.join(dir, "hook.sh");
            const set: FileSet = { name, files: [{ path: target, mode: "0755" }] };
            await runScript([applyFileSet({ ...set, files: [{ path: target, content: "#!/bin/sh\necho v1\n", mode: "0755" }] })]);
            const job = startBlocked(set, fifo);
            let staged: string[] = [];
            for (let i = 0; i < 100 && staged.length === 0; i++) {
                await sleep(50);
                staged = fs
                    .readdirSync(path.join(STATE_DIR, "staging"))
                    .filter((d) => d.startsWith("run-"))
                    .flatMap((d) => fs.readdirSync(path.join(STATE_DIR, "staging", d)).map((f) => path.join(STATE_DIR, "staging", d, f)))
                    .filter((f) => path.basename(f).startsWith("write-"));
            }
            assert.ok(staged.length > 0, "the blocked run staged its file");
            // An SSH drop: the whole session dies at once.
            process.kill(-job.child.pid!, "SIGKILL");
            await job.done;
            assert.ok(
                staged.some((f) => fs.existsSync(f)),
                "the killed run left its staged file",
            );
            // What an older version left beside its target: certbot would run it, apt would parse it.
            const legacy = `${target}.pm-Ab12Cd`;
            fs.writeFileSync(legacy, "#!/bin/sh\necho stale\n", { mode: 0o755 });
            await runScript(["true"]);
            for (const f of staged) assert.ok(!fs.existsSync(f), `${f} is left`);
            assert.ok(!fs.existsSync(legacy), "the legacy temp file is left");
            assert.deepEqual(fs.readdirSync(dir), ["hook.sh"]);
            assert.equal(fs.readFileSync(target, "utf8"), "#!/bin/sh\necho v1\n");
        });
    });

    describe("a change is never left half-applied (item 5)", function () {
        it("a run killed between the write and its handler: the next run, with identical files, runs the handler", async function () {
            const dir = makeTempDir("pending");
            const log = path.join(dir, "handler.log");
            const name = setName("pending");
            const set = (handler: Sh): FileSet => ({
                name,
                files: [{ path: path.join(dir, "a.conf"), content: "allow 10.0.0.0/8\n" }],
                onChange: [{ kind: "run", command: handler }],
            });
            const handler = sh`echo reloaded >> ${log}`;
            // Dies as an SSH drop would kill it: after the file is in place, before the handler.
            const killed = await runScript([applyFileSet(set(sh`kill -KILL $$`))], true);
            assert.notEqual(killed.code, 0);
            assert.equal(fs.readFileSync(path.join(dir, "a.conf"), "utf8"), "allow 10.0.0.0/8\n");
            assert.ok(fs.existsSync(path.join(STATE_DIR, "pending", name)), "the set is pending on the host");
            const again = await runScript([applyFileSet(set(handler))]);
            assert.doesNotMatch(again.stdout, /updated/, "the files were identical");
            assert.equal(fs.readFileSync(log, "utf8"), "reloaded\n", "the handler ran");
            assert.ok(!fs.existsSync(path.join(STATE_DIR, "pending", name)));
            await runScript([applyFileSet(set(handler))]);
            assert.equal(fs.readFileSync(log, "utf8"), "reloaded\n", "and only once");
        });

        it("a failing handler leaves the set pending; the next successful run clears it", async function () {
            const dir = makeTempDir("pending");
            const log = path.join(dir, "handler.log");
            const name = setName("failing");
            const set = (content: string, handler: Sh): FileSet => ({
                name,
                files: [{ path: path.join(dir, "a.conf"), content }],
                onChange: [{ kind: "run", command: handler }],
            });
            const ok = sh`echo ran >> ${log}`;
            await runScript([applyFileSet(set("v1\n", ok))]);
            const failed = await runScript([applyFileSet(set("v2\n", sh`false`))], true);
            assert.notEqual(failed.code, 0);
            assert.ok(fs.existsSync(path.join(STATE_DIR, "pending", name)));
            await runScript([applyFileSet(set("v2\n", ok))]);
            assert.equal(fs.readFileSync(log, "utf8"), "ran\nran\n");
            assert.ok(!fs.existsSync(path.join(STATE_DIR, "pending", name)));
            await runScript([applyFileSet(set("v2\n", ok))]);
            assert.equal(fs.readFileSync(log, "utf8"), "ran\nran\n");
        });
    });

    describe("a set's check (item 6)", function () {
        it("a failing check puts back every file (content, mode, owner, record), removes a new one, restores a pruned one; no handler runs", async function () {
            const dir = makeTempDir("check");
            const log = path.join(dir, "handler.log");
            const name = setName("check");
            const p = (f: string) => path.join(dir, f);
            const set = (files: Record<string, string>, owner = "root"): FileSet => ({
                name,
                files: Object.entries(files).map(([f, content]) => ({ path: p(f), content, mode: owner === "root" ? "0644" : "0640", owner })),
                check: sh`! grep -rq broken ${dir} --include=*.conf`,
                onChange: [{ kind: "run", command: sh`echo handled >> ${log}` }],
            });
            await runScript([applyFileSet(set({ "a.conf": "good a\n", "gone.conf": "good gone\n" }))]);
            const record = fs.readFileSync(path.join(WRITTEN_DIR, "records", p("a.conf")), "utf8");
            const manifest = fs.readFileSync(path.join(STATE_DIR, "filesets", `${name}.list`), "utf8");
            const r = await runScript([applyFileSet(set({ "a.conf": "broken a\n", "new.conf": "good new\n" }, "nobody"))], true);
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, new RegExp(`${name}: the new files fail their check`));
            assert.equal(fs.readFileSync(p("a.conf"), "utf8"), "good a\n");
            assert.deepEqual(statOf(p("a.conf")), { mode: "644", uid: 0, gid: 0 });
            assert.equal(fs.readFileSync(p("gone.conf"), "utf8"), "good gone\n", "the pruned file is back");
            assert.ok(!fs.existsSync(p("new.conf")), "the new file is removed");
            assert.equal(fs.readFileSync(path.join(WRITTEN_DIR, "records", p("a.conf")), "utf8"), record);
            assert.ok(!fs.existsSync(path.join(WRITTEN_DIR, "records", p("new.conf"))));
            assert.equal(fs.readFileSync(path.join(STATE_DIR, "filesets", `${name}.list`), "utf8"), manifest);
            assert.equal(fs.readFileSync(log, "utf8"), "handled\n", "only the first run's handler ran");
            assert.ok(!fs.existsSync(path.join(STATE_DIR, "pending", name)), "nothing pending: the files are as they were");
            const fixed = await runScript([applyFileSet(set({ "a.conf": "good a2\n" }))]);
            assert.match(fixed.stdout, /removed .*gone\.conf/);
            assert.equal(fs.readFileSync(log, "utf8"), "handled\nhandled\n");
        });
    });

    describe("a secret step that fails (issue 19, Low)", function () {
        it("prints nothing it was given: its output stays in a root-only log on the host", async function () {
            const secret = `pw-${crypto.randomBytes(12).toString("hex")}`;
            const name = `test-secret-${crypto.randomBytes(3).toString("hex")}`;
            const text = secretScript(
                script("test secret step", [sh`echo ${secret}`, sh`echo ${`psql: ERROR: near PASSWORD '${secret}'`} >&2`, sh`false`]),
                name,
            );
            const r = await run("bash", ["-s"], { input: text, allowFailure: true });
            assert.equal(r.code, 1);
            assert.ok(!(r.stdout + r.stderr).includes(secret), r.stdout + r.stderr);
            const log = path.join(SECRET_LOG_DIR, `${name}.log`);
            assert.equal(
                r.stderr,
                `test secret step: failed with exit status 1. Its output may hold secrets, so it stays on the host, root only: sudo cat ${log}\n`,
            );
            assert.match(fs.readFileSync(log, "utf8"), new RegExp(`^${secret}\npsql: ERROR`));
            assert.equal(statOf(SECRET_LOG_DIR).mode, "700");
            assert.equal(statOf(log).mode, "600");
            const ok = await run("bash", ["-s"], { input: secretScript(script("test secret step", [sh`echo ${secret}`]), name) });
            assert.equal(ok.stdout, `test secret step: done (its output is on the host, root only: ${log})\n`);
            fs.rmSync(log);
        });

        it("shows what it says with pm_tell (a refusal the operator must read), and still nothing it was given", async function () {
            const secret = `pw-${crypto.randomBytes(12).toString("hex")}`;
            const name = `test-secret-${crypto.randomBytes(3).toString("hex")}`;
            const text = secretScript(
                script("test secret step", [
                    sh`echo ${secret} >&2`,
                    sh`pm_tell ${"refusing: the signing key on the host is ed25519:a_1, not ed25519:b_2"}`,
                    sh`exit 3`,
                ]),
                name,
            );
            const r = await run("bash", ["-s"], { input: text, allowFailure: true });
            assert.equal(r.code, 3);
            assert.ok(!(r.stdout + r.stderr).includes(secret), r.stdout + r.stderr);
            const log = path.join(SECRET_LOG_DIR, `${name}.log`);
            assert.equal(
                r.stderr,
                "refusing: the signing key on the host is ed25519:a_1, not ed25519:b_2\n" +
                    `test secret step: failed with exit status 3. Its output may hold secrets, so it stays on the host, root only: sudo cat ${log}\n`,
            );
            assert.match(fs.readFileSync(log, "utf8"), /refusing: the signing key/, "the log has it too");
            // Outside a secret step it is plain stderr.
            const plain = await run("bash", ["-s"], { input: script("test step", [sh`pm_tell ${"hello"}`]) });
            assert.equal(plain.stderr, "hello\n");
            fs.rmSync(log);
        });
    });
});
