import * as assert from "node:assert/strict";
import { MatrixStack } from "../../components/MatrixStack";
import { RecordedResource, runWithMocks, valueOf } from "../support/unit/mocks";
import { stackArgs } from "../support/unit/fixtures";

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
        // @pulumi/command keeps each command's connection secret; the address, port and host key are repeated readably in the script.
        for (const r of mocks.resources.filter((x) => x.type === "command:remote:Command")) {
            assert.ok(r.secretInputs.includes("connection"), `${r.name}: connection not secret`);
            if (r.name.endsWith("-probe")) continue;
            assert.match(String(r.inputs.stdin), /^# target: root@203\.0\.113\.10:22\n/, `${r.name}: no readable target line`);
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
