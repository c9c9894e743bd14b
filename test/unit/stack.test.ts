import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { readStackConfig } from "../../src/config/read";
import { RecordedResource, RecordingMocks } from "../support/unit/mocks";
import { deployStack as deploy } from "../support/unit/stack";

export type { RecordedResource };

describe("MatrixStack under Pulumi mocks", () => {
    it("declares the host, PostgreSQL and Synapse resources with type tokens matrix:index:*", async () => {
        const { mocks } = await deploy();
        const names = mocks.resources.map((r) => `${r.type} ${r.name}`);
        for (const expected of [
            "matrix:index:MatrixStack prod",
            "matrix:index:Host prod-host",
            "command:remote:Command prod-host-probe",
            "command:remote:Command prod-host-bootstrap",
            "matrix:index:PostgresDatabase prod-postgres",
            "random:index/randomPassword:RandomPassword prod-postgres-password",
            "command:remote:Command prod-postgres-server",
            "command:remote:Command prod-postgres-database",
            "matrix:index:SynapseHomeserver prod-synapse",
            "tls:index/privateKey:PrivateKey prod-synapse-signing-key",
            "command:remote:Command prod-synapse-install",
            "command:remote:Command prod-synapse-secrets",
            "command:remote:Command prod-synapse-config",
            "command:remote:Command prod-synapse-admin",
        ])
            assert.ok(names.includes(expected), `missing ${expected}`);
    });

    it("runs commands in dependency order: probe, bootstrap, PostgreSQL, install, secrets, config, admin", async () => {
        const { mocks } = await deploy();
        const seq = (n: string) => mocks.byName(n).seq;
        const order = ["prod-host-probe", "prod-host-bootstrap", "prod-postgres-server", "prod-postgres-database", "prod-synapse-config", "prod-synapse-admin"];
        for (let i = 1; i < order.length; i++) assert.ok(seq(order[i - 1]) < seq(order[i]), `${order[i - 1]} before ${order[i]}`);
        assert.ok(seq("prod-host-bootstrap") < seq("prod-synapse-install"));
        assert.ok(seq("prod-synapse-install") < seq("prod-synapse-secrets"));
        assert.ok(seq("prod-synapse-secrets") < seq("prod-synapse-config"));
    });
});

describe("bad input is refused before anything touches a VM", () => {
    before(() => pulumi.runtime.setMocks(new RecordingMocks(), "matrix", "test", false));

    it("stack config: required keys, numbers, booleans, lists and YAML", () => {
        const reader = (values: Record<string, string>) => ({ get: (k: string) => values[k] });
        assert.throws(
            () => readStackConfig(reader({ serverName: "example.com" })),
            /matrix:sshHost is not set; it is required; set it with `pulumi config set sshHost/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", presence: "yes" })),
            /matrix:presence is "yes"; expected true or false/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", cacheFactor: "lots" })),
            /matrix:cacheFactor is "lots"; expected a number/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", synapseExtraConfig: "- a\n- b" })),
            /matrix:synapseExtraConfig .* expected a YAML mapping/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", smtpHost: "smtp.example.com" })),
            /matrix:notifFrom is not set/,
        );
        const ok = readStackConfig(
            reader({
                sshHost: "1.2.3.4",
                serverName: "example.com",
                acmeEmail: "admin@example.com",
                rtc: "none",
                publicBaseUrl: "",
                trustedKeyServers: '["matrix.org","example.org"]',
                synapseExtraConfig: "enable_media_repo: true",
            }),
        );
        assert.equal(ok.synapse.publicBaseUrl, undefined);
        assert.deepEqual(ok.synapse.trustedKeyServers, ["matrix.org", "example.org"]);
        assert.deepEqual(ok.synapse.extraConfig, { enable_media_repo: true });
    });
});
