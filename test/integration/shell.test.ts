// The prelude every provisioning script starts with, run by bash for real.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { script, writeFile } from "../../src/provision/shell";
import { makeTempDir, run } from "./support/processes";

describe("provisioning script prelude", function () {
    const runScript = async (body: string[]) => (await run("bash", ["-s"], { input: script("test", body) })).stdout;

    it("pm_write reports a change, from a heredoc and from the end of a pipeline, and none when nothing changed", async function () {
        const dir = makeTempDir("shell");
        const a = path.join(dir, "a.conf");
        const b = path.join(dir, "sub", "b.conf");
        const body = [
            "pm_changed=0",
            writeFile({ path: a, content: "one\n" }),
            'echo "heredoc=$pm_changed"',
            "pm_changed=0",
            `printf 'two\\n' | pm_write ${b} 0640 root root`,
            'echo "pipeline=$pm_changed"',
        ];
        assert.match(await runScript(body), /heredoc=1[\s\S]*pipeline=1/);
        assert.equal(fs.readFileSync(b, "utf8"), "two\n");
        assert.equal((fs.statSync(b).mode & 0o777).toString(8), "640");
        assert.match(await runScript(body), /heredoc=0[\s\S]*pipeline=0/);
        fs.chmodSync(b, 0o644);
        assert.match(await runScript(body), /pipeline=1/, "a changed mode is a change");
    });

    it("keeps the mode of an existing parent directory", async function () {
        const dir = makeTempDir("shell");
        const secrets = path.join(dir, "secrets");
        fs.mkdirSync(secrets, { mode: 0o750 });
        fs.chmodSync(secrets, 0o750);
        await runScript([writeFile({ path: path.join(secrets, "x"), content: "s\n", mode: "0600" })]);
        assert.equal((fs.statSync(secrets).mode & 0o777).toString(8), "750");
    });

    it("hands a restart from one script to the next, once", async function () {
        await runScript(["pm_mark_restart pm-test-unit"]);
        assert.match(await runScript(['if pm_take_restart pm-test-unit; then echo owed; else echo none; fi']), /owed/);
        assert.match(await runScript(['if pm_take_restart pm-test-unit; then echo owed; else echo none; fi']), /none/);
    });

    it("stops at the first failing command", async function () {
        const r = await run("bash", ["-s"], { input: script("test", ["false", "echo not reached"]), allowFailure: true });
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.stdout, /not reached/);
    });
});
