/**
 * Stack config through the real Pulumi CLI, no VM needed (a preview never
 * connects): a stack made from Pulumi.example.yaml passes the CLI's own
 * validation of Pulumi.yaml's declarations and previews; a secret set in plain
 * text is refused before anything is built, naming the key and the fix.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { projectCopy, runCli, useEngine } from "../support/vm/engine";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);

describe("stack config through the real Pulumi CLI", function () {
    this.timeout(10 * 60_000);
    let dir: string;

    before(function () {
        useEngine(log);
        dir = projectCopy();
    });

    it("a stack made from Pulumi.example.yaml (plus the private key) previews: no key is wrongly required", async function () {
        // `pulumi stack init example` takes Pulumi.example.yaml as the stack's config file, as a user's copy would be.
        const init = await runCli(dir, ["stack", "init", "example"]);
        assert.equal(init.code, 0, init.stderr);
        const set = await runCli(dir, ["config", "set", "--secret", "sshPrivateKey", "--stack", "example"], { stdin: TEST_SSH_KEY });
        assert.equal(set.code, 0, set.stderr);
        const preview = await runCli(dir, ["preview", "--stack", "example", "--color", "never"]);
        assert.equal(preview.code, 0, `${preview.stdout}\n${preview.stderr}`);
        assert.doesNotMatch(preview.stdout + preview.stderr, /missing required configuration|missing configuration values/i);
        assert.match(preview.stdout, /\+ +\d+ to create/);
    });

    it("a secret set in plain text is refused by the program, naming the key and how to set it", async function () {
        const init = await runCli(dir, ["stack", "init", "plain"]);
        assert.equal(init.code, 0, init.stderr);
        for (const [k, v] of [
            ["sshHost", "203.0.113.10"],
            ["serverName", "example.com"],
        ])
            assert.equal((await runCli(dir, ["config", "set", k, v, "--stack", "plain"])).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "--secret", "sshPrivateKey", "--stack", "plain"], { stdin: TEST_SSH_KEY })).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "sshHostKey", TEST_HOST_KEY, "--stack", "plain"])).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "smtpHost", "smtp.example.com", "--stack", "plain"])).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "notifFrom", "noreply@example.com", "--stack", "plain"])).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "smtpPassword", "SECRETinClear", "--stack", "plain"])).code, 0);
        const preview = await runCli(dir, ["preview", "--stack", "plain", "--color", "never"]);
        assert.notEqual(preview.code, 0);
        const text = preview.stdout + preview.stderr;
        assert.match(
            text,
            /matrix:smtpPassword is set in plain text; it is a secret and must be stored encrypted: set it again with `pulumi config set --secret smtpPassword/,
        );
        assert.doesNotMatch(text, /SECRETinClear/);
        // The message alone, as a user's mistake deserves: no "unhandled exception" and no stack trace.
        assert.doesNotMatch(text, /unhandled exception|at readStackConfig|src\/config\/\w+\.ts:/);
        assert.doesNotMatch(text, /command:remote:Command/);
        fs.rmSync(path.join(dir, "Pulumi.plain.yaml"));
    });

    it("without sshHostKey the preview fails before anything is built, saying why and how to get the key", async function () {
        const init = await runCli(dir, ["stack", "init", "nokey"]);
        assert.equal(init.code, 0, init.stderr);
        for (const [k, v] of [
            ["sshHost", "203.0.113.10"],
            ["serverName", "example.com"],
            ["acmeEmail", "admin@example.com"],
            ["rtc", "none"],
        ])
            assert.equal((await runCli(dir, ["config", "set", k, v, "--stack", "nokey"])).code, 0);
        assert.equal((await runCli(dir, ["config", "set", "--secret", "sshPrivateKey", "--stack", "nokey"], { stdin: TEST_SSH_KEY })).code, 0);
        const preview = await runCli(dir, ["preview", "--stack", "nokey", "--color", "never"]);
        assert.notEqual(preview.code, 0);
        const text = preview.stdout + preview.stderr;
        assert.match(text, /matrix:sshHostKey is not set; expected the host's SSH public key/);
        assert.match(text, /whoever sits on the network path .* receives every script, with every secret in it/);
        assert.match(text, /README's "Host key" section/);
        assert.match(text, /sshAcceptAnyHostKey/);
        assert.doesNotMatch(text, /command:remote:Command/, "a command was planned");
        // The opt-out previews, with its warning.
        assert.equal((await runCli(dir, ["config", "set", "sshAcceptAnyHostKey", "true", "--stack", "nokey"])).code, 0);
        const optOut = await runCli(dir, ["preview", "--stack", "nokey", "--color", "never"]);
        assert.equal(optOut.code, 0, `${optOut.stdout}\n${optOut.stderr}`);
        assert.match(optOut.stdout + optOut.stderr, /acceptAnyHostKey is true: the host's SSH key is NOT verified/);
        fs.rmSync(path.join(dir, "Pulumi.nokey.yaml"));
    });
});
