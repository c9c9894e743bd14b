import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { RecordingMocks, valueOf } from "./mocks";
import { TEST_SSH_KEY } from "./fixtures";

/** Loads src/program.ts afresh under mocks with the given stack config. */
async function runProgram(config: Record<string, string>, secretKeys: string[] = []) {
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "matrix", "dev", false);
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`matrix:${k}`, v])), secretKeys.map((k) => `matrix:${k}`));
    const path = require.resolve("../../src/program");
    delete require.cache[path];
    const program = require(path) as Record<string, pulumi.Output<unknown>>;
    return { mocks, program };
}

describe("the stack program (src/program.ts)", () => {
    const base = { sshHost: "203.0.113.10", sshPrivateKey: TEST_SSH_KEY, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", adminUser: "admin" };

    it("builds a MatrixStack from stack config and exports its outputs", async () => {
        const { program } = await runProgram({ ...base, maxUploadSize: "100M", trustedKeyServers: '["matrix.org"]' }, ["sshPrivateKey"]);
        assert.equal(await valueOf(program.serverName), "example.com");
        assert.equal(await valueOf(program.publicBaseUrl), "https://matrix.example.com/");
        assert.match(String(await valueOf(program.signingKeyId)), /^a_[a-z]{4}$/);
        assert.equal(await valueOf(program.adminUserId), "@admin:example.com");
        assert.equal(await pulumi.isSecret(program.adminPassword), true);
        assert.equal(await valueOf(program.hostOs), "Debian GNU/Linux 12 (bookworm)");
    });

    it("treats the declared empty defaults as unset", async () => {
        const { program } = await runProgram({ ...base, publicBaseUrl: "", synapseVersion: "", smtpHost: "", signingKey: "", postgresExternalHost: "" }, ["sshPrivateKey"]);
        assert.equal(await valueOf(program.publicBaseUrl), "https://example.com/");
        assert.equal(await valueOf(program.synapseVersion), "1.163.2");
    });

    it("imports an existing signing key from secret config", async () => {
        const line = "ed25519 a_OLDk " + Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "");
        const { program } = await runProgram({ ...base, signingKey: line }, ["sshPrivateKey", "signingKey"]);
        assert.equal(await valueOf(program.signingKeyId), "a_OLDk");
    });

    it("names the config key of a bad value", async () => {
        await assert.rejects(runProgram({ ...base, maxUploadSize: "huge" }), /maxUploadSize is "huge"/);
        await assert.rejects(runProgram({ sshPrivateKey: TEST_SSH_KEY, serverName: "example.com" }), /matrix:sshHost is not set/);
    });
});
