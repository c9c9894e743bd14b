import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { postgresDatabaseScript, postgresInstallScript } from "../../src/provision/postgres";
import { renderBackupScript, renderBackupUnits, renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresConf } from "../../src/render/postgres";
import { golden } from "../support/golden";
import { goldenPostgresSettings, stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordedResource, RecordingMocks, runWithMocks } from "../support/unit/mocks";
import { deployStack as deploy, rejects, resolveSynapse as synapse } from "../support/unit/stack";

describe("bad input is refused before anything touches a VM", () => {
    before(() => pulumi.runtime.setMocks(new RecordingMocks(), "matrix", "test", false));

    it("enumerations and mutually exclusive options", () => {
        rejects(synapse({ registration: "open" as never }), "registration", '"open"', /"shared-secret", "token"/);
        rejects(synapse({ installMethod: "docker" as never }), "installMethod", '"docker"', /"apt", "pip"/);
        const host = new Host("h", { host: "203.0.113.1", privateKey: "k", hostKey: TEST_HOST_KEY });
        assert.throws(
            () => new SynapseHomeserver("s", { serverName: "example.com", host }),
            /SynapseHomeserver "s": database is not set, and neither is sqlite; expected exactly one/,
        );
        assert.throws(
            () => new PostgresDatabase("p", { host, external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" } }),
            /PostgresDatabase "p": host is set together with external; choose one/,
        );
        assert.throws(
            () =>
                new PostgresDatabase("p", {
                    memoryMb: 4096,
                    backup: { enabled: false },
                    external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" },
                }),
            /PostgresDatabase "p": memoryMb, backup is \{"memoryMb":4096,"backup":\{"enabled":false\}\}; these configure a server the library installs and do nothing with external/,
        );
        assert.throws(
            () =>
                new MatrixStack("m", {
                    ...stackArgs(),
                    postgres: {
                        host: { host: "203.0.113.2", privateKey: "k", hostKey: TEST_HOST_KEY },
                        reachableAt: "10.0.0.5",
                        external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" },
                    },
                }),
            /postgres.host is set together with postgres.external; choose one/,
        );
        assert.throws(
            () => new MatrixStack("m", { ...stackArgs(), postgres: { host: { host: "203.0.113.2", privateKey: "k", hostKey: TEST_HOST_KEY } } }),
            /MatrixStack "m": postgres.reachableAt is not set; with postgres.host it must be/,
        );
        assert.throws(() => resolvePostgresSettings('PostgresDatabase "p"', { allowedClients: ["10.0.0.0/24"] }), /add it to listenAddresses/);
    });
});

export type { RecordedResource };

describe("MatrixStack under Pulumi mocks", () => {
    it("places PostgreSQL on a second host and opens its port only to the allowed network", async () => {
        const args = stackArgs();
        args.postgres = {
            host: { host: "203.0.113.11", privateKey: "k", hostKey: TEST_HOST_KEY },
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
});

describe("the component platform", () => {
    it("a PostgresDatabase placed on a plain Host in a user's own stack opens exactly its port to exactly its clients", async () => {
        const { mocks } = await runWithMocks(
            () => {
                const host = new Host("db", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
                return new PostgresDatabase("pg", { host, listenAddresses: ["127.0.0.1", "10.0.0.5"], allowedClients: ["10.0.0.4/32", "fd00::4/128"] });
            },
            (db) => [db.connection],
        );
        const server = String(mocks.byName("pg-server").inputs.stdin);
        const rules = server.split("\n").filter((l) => l.startsWith("add rule"));
        assert.deepEqual(rules, [
            'add rule inet pulumi_matrix input ip saddr { 10.0.0.4/32 } tcp dport 5432 accept comment "postgresql"',
            'add rule inet pulumi_matrix input ip6 saddr { fd00::4/128 } tcp dport 5432 accept comment "postgresql"',
        ]);
        assert.match(server, /pm_write firewall-postgresdatabase-pg \/etc\/pulumi-matrix\/firewall\.d\/postgresdatabase-pg\.nft/);
        const bootstrap = String(mocks.byName("db-bootstrap").inputs.stdin);
        assert.doesNotMatch(bootstrap, /5432/);
        assert.match(bootstrap, /include "\/etc\/pulumi-matrix\/firewall\.d\/\*\.nft"/);
    });

    it("a PostgresDatabase without other clients opens nothing (its fragment is empty)", async () => {
        const { mocks } = await runWithMocks(
            () => new PostgresDatabase("pg", { host: new Host("db", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY }) }),
            (db) => [db.connection],
        );
        assert.deepEqual(
            String(mocks.byName("pg-server").inputs.stdin)
                .split("\n")
                .filter((l) => l.startsWith("add rule")),
            [],
        );
    });
});

describe("postgres: golden files (update with `npm run golden:update`, review the diff)", () => {
    const pg = goldenPostgresSettings;
    const units = () => renderBackupUnits(pg(), "/usr/local/lib/pulumi-matrix/pg-backup.sh");
    golden("postgres", "50-pulumi-matrix.conf", () => renderPostgresConf(pg()));
    golden("postgres", "pg_hba-block.conf", () => renderPgHbaBlock(pg()));
    golden("postgres", "create-database.sql", () => renderCreateDatabaseSql(pg(), "<database password>"));
    golden("postgres", "pg-backup.sh", () => renderBackupScript(pg()));
    golden("postgres", "pulumi-matrix-pg-backup.service", () => units().service);
    golden("postgres", "pulumi-matrix-pg-backup.timer", () => units().timer);
    golden("postgres", "scripts/postgres-server.sh", () => postgresInstallScript(pg(), 'PostgresDatabase "golden"'));
    golden("postgres", "scripts/postgres-database.sh", () => postgresDatabaseScript(pg(), "<database password>"));
});
