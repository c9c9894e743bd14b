// Issue 19 item 8 across components: a WorkerPool with a worker host, the
// database and Redis on Synapse's host. Every process, on every host,
// reaches PostgreSQL with verify-full against the database's own CA and
// Redis with use_tls and its CA; what stays cleartext is said in a warning.

import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { RedisServer } from "../../components/RedisServer";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { WorkerPool } from "../../components/WorkerPool";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";

describe("encryption between hosts (issue 19 item 8)", () => {
    it("a pool across hosts: TLS with each server's CA on every host, and a warning for what stays cleartext", async () => {
        const warned: string[] = [];
        const log = pulumi.log as { warn: typeof pulumi.log.warn };
        const original = log.warn;
        log.warn = async (msg: string) => void warned.push(msg);
        try {
            const { mocks } = await runWithMocks(
                () => {
                    const h = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.4" });
                    const w2 = new Host("w2", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.6" });
                    const db = new PostgresDatabase("pg", {
                        host: h,
                        listenAddresses: ["127.0.0.1", "10.0.0.4"],
                        allowedClients: ["10.0.0.4/32", "10.0.0.6/32"],
                        reachableAt: "10.0.0.4",
                    });
                    const s = new SynapseHomeserver("synapse", {
                        host: h,
                        database: db,
                        serverName: "example.com",
                        installMethod: "pip",
                        replication: { bindAddresses: ["127.0.0.1", "10.0.0.4"] },
                    });
                    const redis = new RedisServer("r", {
                        host: h,
                        bindAddresses: ["127.0.0.1", "10.0.0.4"],
                        allowedClients: ["10.0.0.6/32"],
                        reachableAt: "10.0.0.4",
                    });
                    return new WorkerPool("w", { synapse: s, redis, instances: [{ role: "federation_reader", host: w2 }] });
                },
                (p) => [p.upstreams],
            );
            const pgCa = String(mocks.byName("pg-ca").name);
            const redisCa = String(mocks.byName("r-ca").name);
            // The stand-in PEMs carry their resource's name: each file holds its own server's CA.
            const pem = (name: string) => Buffer.from(name).toString("base64");
            for (const [config, label] of [
                [String(mocks.byName("synapse-config").inputs.stdin), "Synapse's host"],
                [String(mocks.byName("w-w2-config").inputs.stdin), "the worker host"],
            ] as const) {
                assert.match(config, /sslmode: verify-full/, label);
                assert.match(config, /database-ca\.pem 0644 root root readable <<'PM_EOF'\n-----BEGIN CERTIFICATE-----\n/, label);
                assert.ok(config.includes(pem(pgCa)), `${label}: the database's CA`);
            }
            for (const config of [String(mocks.byName("w-config").inputs.stdin), String(mocks.byName("w-w2-config").inputs.stdin)]) {
                assert.match(config, /use_tls: true/);
                assert.match(config, /ca_file: \/etc\/matrix-synapse\/redis-ca\.pem/);
                assert.ok(config.includes(pem(redisCa)), "Redis's CA");
            }
            assert.ok(
                warned.some((w) => /WorkerPool "w".*cleartext HTTP/.test(w)),
                warned.join("\n"),
            );
            assert.ok(
                warned.some((w) => /RedisServer "r".*does not verify/.test(w)),
                warned.join("\n"),
            );
        } finally {
            log.warn = original;
        }
    });
});
