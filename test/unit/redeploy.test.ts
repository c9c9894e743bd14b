import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { MatrixStack } from "../../components/MatrixStack";
import { goldenSynapseSettings } from "../support/unit/fixtures";
import { readStackConfig } from "../../src/model/stackConfig";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { runWithMocks } from "../support/unit/mocks";
import { TEST_SSH_KEY, stackArgs } from "../support/unit/fixtures";

/** What a stack config key reaches, and the settings that decide destroy and a redeploy to the same host. */
describe("protectSigningKey and allowSigningKeyReplacement", () => {
    const base = { sshHost: "203.0.113.10", sshPrivateKey: TEST_SSH_KEY, serverName: "example.com", acmeEmail: "admin@example.com" };
    const read = (extra: Record<string, string>) => readStackConfig({ get: (k) => ({ ...base, ...extra })[k as keyof typeof base] });

    it("default to protect (true) and to refuse a replacement (false)", () => {
        const s = resolveSynapseSettings("t", { serverName: "example.com" });
        assert.equal(s.protectSigningKey, true);
        assert.equal(s.allowSigningKeyReplacement, false);
    });

    it("are read from matrix:protectSigningKey and matrix:allowSigningKeyReplacement", () => {
        const o = read({ protectSigningKey: "false", allowSigningKeyReplacement: "true" }).synapse;
        assert.equal(o.protectSigningKey, false);
        assert.equal(o.allowSigningKeyReplacement, true);
        assert.throws(() => read({ protectSigningKey: "no" }), { message: 'matrix:protectSigningKey is "no"; expected true or false' });
    });

    async function protectOfSigningKey(overrides: Parameters<typeof stackArgs>[0]) {
        const seen = new Map<string, boolean | undefined>();
        const record: pulumi.ResourceTransformation = (a) => {
            seen.set(a.name, a.opts.protect);
            return undefined;
        };
        await runWithMocks(
            () => new MatrixStack("prod", stackArgs(overrides), { transformations: [record] }),
            (s) => [s.synapse.signingKeyId],
        );
        assert.ok(seen.has("prod-synapse-signing-key"), [...seen.keys()].join(", "));
        return seen.get("prod-synapse-signing-key");
    }

    it("protect the generated signing key unless protectSigningKey is false", async () => {
        assert.equal(await protectOfSigningKey({}), true);
        assert.equal(await protectOfSigningKey({ protectSigningKey: false }), false);
    });

    it("the secrets script refuses a different host key unless allowSigningKeyReplacement is set", () => {
        const script = (allow: boolean) =>
            synapseSecretsScript(
                resolveSynapseSettings("t", { serverName: "example.com", allowSigningKeyReplacement: allow }),
                { macaroonSecretKey: "m", formSecret: "f", registrationSharedSecret: "r", signingKey: "ed25519 a_abcd SEED", files: [] },
                'SynapseHomeserver "prod-synapse"',
            );
        assert.match(script(false), /SynapseHomeserver "prod-synapse": this host already has a different signing key; nothing was changed\./);
        assert.match(script(false), /this deployment'\\''s key is ed25519:a_abcd\./);
        assert.doesNotMatch(script(true), /nothing was changed/);
        for (const allow of [false, true]) {
            // The guard runs before anything is written; only ids are printed.
            const s = script(allow);
            assert.ok(s.indexOf("pm_key_new=") < s.indexOf("pm_write "), "guard before the first write");
            assert.doesNotMatch(
                s
                    .split("\n")
                    .filter((l) => /echo|printf .*>&2/.test(l))
                    .join("\n"),
                /SEED/,
            );
        }
    });
});

describe("the signing key guard's message", () => {
    it("names the stack's own protected key to unprotect when the host's key is imported instead", async () => {
        const urn = "urn:pulumi:dev::matrix::matrix:index:MatrixStack$matrix:index:SynapseHomeserver$tls:index/privateKey:PrivateKey::dev-synapse-signing-key";
        const key = "ed25519 a_abcd " + "A".repeat(43);
        const text = synapseSecretsScript(goldenSynapseSettings(), {
            macaroonSecretKey: "m",
            formSecret: "f",
            registrationSharedSecret: "r",
            signingKey: key,
            files: [],
            protectedKeyUrn: urn,
        });
        assert.ok(text.includes("pulumi state unprotect --yes") && text.includes(urn), "no unprotect line");
        assert.doesNotMatch(
            synapseSecretsScript(goldenSynapseSettings(), {
                macaroonSecretKey: "m",
                formSecret: "f",
                registrationSharedSecret: "r",
                signingKey: key,
                files: [],
            }),
            /state unprotect/,
        );
    });
});
