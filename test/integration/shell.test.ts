// The platform's shell layer run by bash for real: quoting by construction,
// heredocs, file sets (change tracking per set, prune), handlers and the
// restart hand-over between scripts. systemctl and journalctl are stand-ins
// on PATH that record what they were asked, since this machine runs no
// systemd; everything else is the real script.
import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { applyFileSet, ensureRunning, FileSet, Handler, handlerStep, ServiceUnit } from "../../src/provision/apply";
import { heredoc, raw, Sh, sh } from "../../src/provision/sh";
import { script } from "../../src/provision/shell";
import { makeTempDir, run } from "../support/integration/processes";

/** A unique file-set name: the manifests live in the real state directory. */
const setName = (base: string) => `test-${base}-${crypto.randomBytes(4).toString("hex")}`;

describe("provisioning scripts: quoting, file sets, handlers", function () {
    let stub: string;
    let env: NodeJS.ProcessEnv;
    const calls = () => (fs.existsSync(path.join(stub, "calls")) ? fs.readFileSync(path.join(stub, "calls"), "utf8").trim().split("\n") : []);
    const setActive = (...units: string[]) => fs.writeFileSync(path.join(stub, "active"), units.join("\n") + "\n");

    before(function () {
        stub = makeTempDir("systemctl-stub");
        // `systemctl is-active` answers from the file "active"; every other call is recorded.
        fs.writeFileSync(
            path.join(stub, "systemctl"),
            `#!/bin/bash
if [ "$1" = is-active ]; then shift; [ "$1" = -q ] && shift; grep -qxF -- "$1" ${stub}/active 2>/dev/null; exit; fi
if [ "$1" = show ]; then echo active; exit 0; fi
echo "systemctl $*" >> ${stub}/calls
if [ "$1" = stop ]; then shift; for u in "$@"; do sed -i "/^$u$/d" ${stub}/active; done; fi
if [ "$1" = start ] || [ "$1" = restart ]; then shift; for u in "$@"; do echo "$u" >> ${stub}/active; done; fi
exit 0
`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(stub, "journalctl"), "#!/bin/sh\necho journal\n", { mode: 0o755 });
        env = { ...process.env, PATH: `${stub}:${process.env.PATH}` };
    });
    beforeEach(function () {
        fs.rmSync(path.join(stub, "calls"), { force: true });
        setActive();
    });

    const runScript = async (body: (Sh | string)[], allowFailure = false) => run("bash", ["-s"], { input: script("test", body), env, allowFailure });

    it("quotes every interpolated value: spaces, quotes, $ and command substitutions arrive as one literal argument", async function () {
        const nasty = `it's "a" $(touch /tmp/pm-pwned) \`id\` $HOME; rm -rf /x *`;
        const r = await runScript([sh`printf '[%s]\n' ${nasty} ${["two words", "x"]} ${42}`]);
        assert.equal(r.stdout, `[${nasty}]\n[two words]\n[x]\n[42]\n`);
        assert.ok(!fs.existsSync("/tmp/pm-pwned"));
        assert.throws(() => sh`echo "inside ${"double quotes"}"`, /inside double quotes/);
        assert.equal(sh`echo ${raw("$HOME")}`.text, "echo $HOME");
    });

    it("heredocs keep content byte for byte, even content holding the delimiter line; the delimiter does not follow the content", async function () {
        const dir = makeTempDir("heredoc");
        const content = "line with 'quotes' and $vars and `ticks`\nPM_EOF\n\\n backslash\n";
        await runScript([heredoc(sh`cat > ${path.join(dir, "out")}`, content)]);
        assert.equal(fs.readFileSync(path.join(dir, "out"), "utf8"), content);
        assert.equal(
            heredoc(sh`cat`, "a\n")
                .text.split("\n")
                .pop(),
            heredoc(sh`cat`, "b\n")
                .text.split("\n")
                .pop(),
        );
    });

    it("tracks changes per file set: only the set whose file changed runs its handler; a re-run changes nothing", async function () {
        const dir = makeTempDir("sets");
        const a = setName("a"),
            b = setName("b");
        const sets = (aContent: string): FileSet[] => [
            { name: a, files: [{ path: path.join(dir, "a.conf"), content: aContent }], onChange: [{ kind: "run", command: sh`echo handler-a` }] },
            {
                name: b,
                files: [{ path: path.join(dir, "sub", "b.conf"), generate: sh`printf 'two\n'`, mode: "0640" }],
                onChange: [{ kind: "run", command: sh`echo handler-b` }],
            },
        ];
        const first = await runScript(sets("one\n").map(applyFileSet));
        assert.match(first.stdout, /handler-a[\s\S]*handler-b/);
        assert.equal(fs.readFileSync(path.join(dir, "sub", "b.conf"), "utf8"), "two\n");
        assert.equal((fs.statSync(path.join(dir, "sub", "b.conf")).mode & 0o777).toString(8), "640");
        const again = await runScript(sets("one\n").map(applyFileSet));
        assert.doesNotMatch(again.stdout, /handler|updated/);
        const changed = await runScript(sets("changed\n").map(applyFileSet));
        assert.match(changed.stdout, /handler-a/);
        assert.doesNotMatch(changed.stdout, /handler-b/);
        fs.chmodSync(path.join(dir, "sub", "b.conf"), 0o644);
        assert.match((await runScript(sets("changed\n").map(applyFileSet))).stdout, /handler-b/, "a changed mode is a change");
    });

    it("prunes what the set wrote before and no longer renders, and nothing else", async function () {
        const dir = makeTempDir("prune");
        const name = setName("prune");
        fs.writeFileSync(path.join(dir, "users-own.conf"), "mine\n");
        const set = (files: string[]): FileSet => ({
            name,
            files: files.map((f) => ({ path: path.join(dir, f), content: `${f}\n` })),
            onChange: [{ kind: "run", command: sh`echo changed` }],
        });
        await runScript([applyFileSet(set(["x.conf", "y.conf"]))]);
        const r = await runScript([applyFileSet(set(["x.conf"]))]);
        assert.match(r.stdout, /removed .*y\.conf[\s\S]*changed/);
        assert.deepEqual(fs.readdirSync(dir).sort(), ["users-own.conf", "x.conf"]);
        assert.doesNotMatch((await runScript([applyFileSet(set(["x.conf"]))])).stdout, /changed|removed/);
    });

    it("keeps the mode of an existing parent directory", async function () {
        const dir = makeTempDir("shell");
        const secrets = path.join(dir, "secrets");
        fs.mkdirSync(secrets, { mode: 0o750 });
        fs.chmodSync(secrets, 0o750);
        await runScript([applyFileSet({ name: setName("mode"), files: [{ path: path.join(secrets, "x"), content: "s\n", mode: "0600" }] })]);
        assert.equal((fs.statSync(secrets).mode & 0o777).toString(8), "750");
    });

    const unit = (name: string): ServiceUnit => ({ name, health: { command: sh`echo ${`health ${name}`} >> ${path.join(stub, "calls")}` } });

    it("restart: a running unit restarts and is health-checked; a stopped one owes the restart to the step that starts it, once", async function () {
        const u = unit(`pm-test-${crypto.randomBytes(3).toString("hex")}.service`);
        setActive(u.name);
        await runScript([handlerStep({ kind: "restart", unit: u })]);
        assert.deepEqual(calls(), [`systemctl restart ${u.name}`, `health ${u.name}`]);
        fs.rmSync(path.join(stub, "calls"));
        setActive();
        await runScript([handlerStep({ kind: "restart", unit: u })]);
        assert.deepEqual(calls(), [], "a stopped unit is not restarted here");
        setActive(u.name);
        await runScript([ensureRunning([u])]);
        assert.deepEqual(calls(), [`systemctl enable -q ${u.name}`, `systemctl restart ${u.name}`, `health ${u.name}`]);
        fs.rmSync(path.join(stub, "calls"));
        await runScript([ensureRunning([u])]);
        assert.deepEqual(calls(), [`systemctl enable -q ${u.name}`, `health ${u.name}`], "the owed restart was taken once");
    });

    it("reload runs the check first and refuses to reload on a failing check", async function () {
        const u = unit("pm-test-reload.service");
        setActive(u.name);
        const ok: Handler = { kind: "reload", unit: u, check: sh`true` };
        await runScript([handlerStep(ok)]);
        assert.deepEqual(calls(), [`systemctl reload ${u.name}`]);
        fs.rmSync(path.join(stub, "calls"));
        const r = await runScript([handlerStep({ ...ok, check: sh`false` })], true);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /fails its check; not reloading/);
        assert.deepEqual(calls(), []);
    });

    it("rolling restart: one unit after another, each healthy before the next", async function () {
        const [a, b] = [unit("pm-test-a.service"), unit("pm-test-b.service")];
        setActive(a.name, b.name);
        await runScript([handlerStep({ kind: "rolling-restart", units: [a, b] })]);
        assert.deepEqual(calls(), [`systemctl restart ${a.name}`, `health ${a.name}`, `systemctl restart ${b.name}`, `health ${b.name}`]);
    });

    it("stop-start: every unit stops before any starts", async function () {
        const [a, b] = [unit("pm-test-a.service"), unit("pm-test-b.service")];
        setActive(a.name, b.name);
        await runScript([handlerStep({ kind: "stop-start", units: [a, b] })]);
        assert.deepEqual(calls(), [`systemctl stop ${a.name} ${b.name}`, `systemctl start ${a.name} ${b.name}`, `health ${a.name}`, `health ${b.name}`]);
    });

    it("a failing health check stops the script with the unit's log", async function () {
        const u: ServiceUnit = { name: "pm-test-sick.service", health: { command: sh`false` }, healthTimeout: 2 };
        const r = await runScript([ensureRunning([u]), "echo not reached"], true);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /pm-test-sick.service did not become ready within 2 s[\s\S]*journal/);
        assert.doesNotMatch(r.stdout, /not reached/);
    });

    it("stops at the first failing command", async function () {
        const r = await run("bash", ["-s"], { input: script("test", ["false", "echo not reached"]), allowFailure: true });
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.stdout, /not reached/);
    });
});
