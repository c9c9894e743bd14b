import * as assert from "node:assert/strict";
import { MatrixStack } from "../../components/MatrixStack";
import * as pulumi from "@pulumi/pulumi";
import { RecordedResource, RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";
import { stackArgs } from "../support/unit/fixtures";

async function deploy(args = stackArgs()) {
    return runWithMocks(
        () => new MatrixStack("prod", args),
        (s) => [s.synapse.signingKeyId, s.synapse.adminPassword!],
    );
}

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

    it("waits for a booting VM: the probe dials forever within a bounded create timeout", async () => {
        const { mocks } = await deploy();
        const conn = mocks.byName("prod-host-probe").inputs.connection as Record<string, unknown>;
        assert.equal(conn.dialErrorLimit, -1);
        assert.equal(conn.host, "203.0.113.10");
        assert.equal(conn.user, "root");
    });

    it("outputs the key id derived from the signing key and an admin user id", async () => {
        const { result } = await deploy();
        assert.match(await valueOf(result.synapse.signingKeyId), /^a_[a-z]{4}$/);
        assert.equal(await valueOf(result.synapse.adminUserId!), "@admin:example.com");
        assert.equal(await valueOf(result.synapse.version), "1.163.2");
    });

    it("uses sudo for a non-root SSH user", async () => {
        const args = stackArgs();
        args.host.user = "debian";
        const { mocks } = await deploy(args);
        assert.equal(mocks.byName("prod-synapse-config").inputs.create, "sudo -n bash -s");
        assert.equal(mocks.byName("prod-host-bootstrap").inputs.create, "sudo -n bash -s");
    });

    it("places PostgreSQL on a second host and opens its port only to the allowed network", async () => {
        const args = stackArgs();
        args.postgres = {
            host: { host: "203.0.113.11", privateKey: "k" },
            reachableAt: "10.0.0.5",
            listenAddresses: ["127.0.0.1", "10.0.0.5"],
            allowedClients: ["10.0.0.0/24"],
        };
        const { mocks } = await deploy(args);
        const dbServer = String(mocks.byName("prod-postgres-server").inputs.stdin);
        assert.match(dbServer, /add rule inet pulumi_matrix input ip saddr \{ 10\.0\.0\.0\/24 \} tcp dport 5432 accept/);
        assert.doesNotMatch(String(mocks.byName("prod-db-host-bootstrap").inputs.stdin), /dport 5432/);
        assert.doesNotMatch(String(mocks.byName("prod-host-bootstrap").inputs.stdin), /dport 5432/);
        assert.match(String(mocks.byName("prod-synapse-config").inputs.stdin), /host: 10\.0\.0\.5/);
        assert.equal((mocks.byName("prod-postgres-server").inputs.connection as { host: string }).host, "203.0.113.11");
    });

    it("refuses an unsupported OS at first contact, naming what it found", async () => {
        const mocks = new RecordingMocks();
        mocks.osRelease = 'PRETTY_NAME="CentOS Stream 9"\nID=centos\nVERSION_ID="9"';
        await pulumi.runtime.setMocks(mocks, "matrix", "test", false);
        const stack = new MatrixStack("prod", stackArgs());
        await assert.rejects(valueOf(stack.host.os), /CentOS Stream 9.*supported are Debian 12/);
    });
});

export type { RecordedResource };
