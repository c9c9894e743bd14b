import * as assert from "node:assert/strict";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";

import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordingMocks, valueOf } from "../support/unit/mocks";

/** Runs an example's index.ts under mocks with its own project's config. */
async function runExample(dir: string, project: string, config: Record<string, string>, secrets: string[]) {
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, project, "dev", false);
    pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project}:${k}`, v])),
        secrets.map((k) => `${project}:${k}`),
    );
    const file = require.resolve(path.join("..", "..", "examples", dir, "index.ts"));
    delete require.cache[file];
    const outputs = require(file) as Record<string, pulumi.Output<unknown>>;
    await Promise.all(Object.values(outputs).map(valueOf));
    await new Promise((r) => setTimeout(r, 100));
    return { mocks, outputs };
}

describe("examples run as written", () => {
    it("single-host", async () => {
        const { mocks, outputs } = await runExample(
            "single-host",
            "matrix-single-host",
            {
                vmAddress: "203.0.113.10",
                sshPrivateKey: TEST_SSH_KEY,
                sshHostKey: TEST_HOST_KEY,
                serverName: "example.com",
                acmeEmail: "admin@example.com",
                livekitSha256: "a".repeat(64),
                lkJwtServiceSha256: "b".repeat(64),
            },
            ["sshPrivateKey"],
        );
        assert.equal(await valueOf(outputs.adminUserId), "@admin:example.com");
        assert.match(String(mocks.byName("matrix-rtc-server").inputs.stdin), /node_ip: 203\.0\.113\.10/);
        assert.ok(mocks.resources.some((r) => r.name === "matrix-synapse-config"));
        assert.match(String(await valueOf(outputs.zoneFile)), /^_turns\._tcp +300 IN SRV +10 5 5349 turn\.example\.com\. /m);
    });

    it("split-hosts: PostgreSQL on the second VM, reached at its private address", async () => {
        const { mocks } = await runExample(
            "split-hosts",
            "matrix-split-hosts",
            {
                appAddress: "203.0.113.10",
                dbAddress: "203.0.113.11",
                appPrivateIp: "10.0.0.4",
                dbPrivateIp: "10.0.0.5",
                sshPrivateKey: TEST_SSH_KEY,
                appHostKey: TEST_HOST_KEY,
                dbHostKey: TEST_HOST_KEY,
                serverName: "example.com",
            },
            ["sshPrivateKey"],
        );
        assert.equal((mocks.byName("synapse-db-server").inputs.connection as { host: string }).host, "203.0.113.11");
        assert.match(String(mocks.byName("synapse-config").inputs.stdin), /host: 10\.0\.0\.5/);
        assert.match(
            String(mocks.byName("synapse-db-server").inputs.stdin),
            /add rule inet pulumi_matrix input ip saddr \{ 10\.0\.0\.4\/32 \} tcp dport 5432 accept/,
        );
        assert.doesNotMatch(String(mocks.byName("db-bootstrap").inputs.stdin), /dport 5432/);
    });

    it("remote-workers: federation readers on the second VM, reached and opened over the private network only", async () => {
        const { mocks, outputs } = await runExample(
            "remote-workers",
            "matrix-remote-workers",
            {
                appAddress: "203.0.113.10",
                workerAddress: "203.0.113.11",
                appPrivateIp: "10.0.0.4",
                workerPrivateIp: "10.0.0.6",
                sshPrivateKey: TEST_SSH_KEY,
                appHostKey: TEST_HOST_KEY,
                workerHostKey: TEST_HOST_KEY,
                serverName: "example.com",
            },
            ["sshPrivateKey"],
        );
        assert.equal((mocks.byName("workers-worker-config").inputs.connection as { host: string }).host, "203.0.113.11");
        assert.match(String(mocks.byName("workers-config").inputs.stdin), /instance_map:\n {2}main:\n {4}host: 10\.0\.0\.4/);
        assert.match(String(mocks.byName("workers-config").inputs.stdin), /ip saddr \{ 10\.0\.0\.6\/32 \} tcp dport 9093 accept/);
        assert.match(String(mocks.byName("redis-server").inputs.stdin), /ip saddr \{ 10\.0\.0\.6\/32 \} tcp dport 6379 accept/);
        assert.deepEqual(await valueOf(outputs.upstreams), [
            { name: "federation_reader1", role: "federation_reader", url: "http://10.0.0.6:8100" },
            { name: "federation_reader2", role: "federation_reader", url: "http://10.0.0.6:8101" },
        ]);
    });

    it("external-postgres: nothing installed for the database, TLS required", async () => {
        const { mocks } = await runExample(
            "external-postgres",
            "matrix-external-postgres",
            {
                vmAddress: "203.0.113.10",
                sshPrivateKey: TEST_SSH_KEY,
                sshHostKey: TEST_HOST_KEY,
                dbHost: "db.example.com",
                dbPassword: "SECRETdb",
                serverName: "example.com",
            },
            ["sshPrivateKey", "dbPassword"],
        );
        assert.ok(!mocks.resources.some((r) => r.name.startsWith("synapse-db-") && r.type === "command:remote:Command"));
        // verify-full by default; without dbCaCertificate against the system's CAs.
        assert.match(
            String(mocks.byName("synapse-config").inputs.stdin),
            /host: db\.example\.com[\s\S]*sslmode: verify-full\n\s*sslrootcert: \/etc\/ssl\/certs\/ca-certificates\.crt/,
        );
        assert.doesNotMatch(String(mocks.byName("synapse-config").inputs.stdin), /SECRETdb/);
    });
});
