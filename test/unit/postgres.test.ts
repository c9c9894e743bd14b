import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { ExternalPostgresOptions, postgresWarnings, resolveExternalPostgres, resolvePostgresSettings } from "../../src/model/postgres";
import { postgresDatabaseScript, postgresInstallScript, postgresTlsScript } from "../../src/provision/postgres";
import {
    renderBackupScript,
    renderBackupUnits,
    renderCreateDatabaseSql,
    renderPgHbaBlock,
    renderPostgresConf,
    renderPostgresSslConf,
    scramSha256Verifier,
} from "../../src/render/postgres";
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
    golden("postgres", "create-database.sql", () => renderCreateDatabaseSql(pg(), scramSha256Verifier("database-password", GOLDEN_SALT)));
    golden("postgres", "ssl.conf", () => renderPostgresSslConf());
    golden("postgres", "pg-backup.sh", () => renderBackupScript(pg()));
    golden("postgres", "pulumi-matrix-pg-backup.service", () => units().service);
    golden("postgres", "pulumi-matrix-pg-backup.timer", () => units().timer);
    golden("postgres", "scripts/postgres-server.sh", () => postgresInstallScript(pg(), 'PostgresDatabase "golden"'));
    golden("postgres", "scripts/postgres-database.sh", () => postgresDatabaseScript(pg(), "database-password", GOLDEN_SALT));
    const tls = { certificate: "<server certificate>", privateKey: "<server key>", caCertificate: "<CA certificate>" };
    golden("postgres", "scripts/postgres-tls.sh", () =>
        postgresTlsScript(resolvePostgresSettings("golden", { listenAddresses: ["127.0.0.1", "10.0.0.5"], allowedClients: ["10.0.0.0/24"] }), tls),
    );
    golden("postgres", "scripts/postgres-tls-none.sh", () => postgresTlsScript(pg(), undefined));
});

const GOLDEN_SALT = Buffer.from("00112233445566778899aabbccddeeff", "hex");

describe("postgres: other hosts reach the server over TLS only (issue 19 item 8)", () => {
    const remote = () => resolvePostgresSettings("p", { listenAddresses: ["127.0.0.1", "10.0.0.5"], allowedClients: ["10.0.0.0/24", "fd00::/64"] });

    it("pg_hba: remote networks get hostssl only, and a cleartext connection from them is rejected first", () => {
        const rows = renderPgHbaBlock(remote())
            .split("\n")
            .filter((l) => l && !l.startsWith("#"))
            .map((l) => l.split(/\s+/));
        for (const net of ["10.0.0.0/24", "fd00::/64"]) {
            const mine = rows.filter((r) => r[3] === net);
            assert.deepEqual(
                mine.map((r) => [r[0], r[1], r[2], r[4]]),
                [
                    ["hostnossl", "all", "all", "reject"],
                    ["hostssl", "synapse", "synapse", "scram-sha-256"],
                ],
            );
        }
        // Loopback stays as it was.
        assert.deepEqual(
            rows.filter((r) => r[0] === "host").map((r) => r[3]),
            ["127.0.0.1/32", "::1/128"],
        );
    });

    it("the tuning fragment includes the TLS settings only if the TLS step wrote them", () => {
        assert.match(renderPostgresConf(remote()), /^include_if_exists = '\/etc\/pulumi-matrix\/postgres-tls\/ssl\.conf'$/m);
        assert.match(renderPostgresSslConf(), /^ssl = on$/m);
    });

    it("a PostgresDatabase serving other hosts makes a CA, writes the key in a secret step and gives Synapse verify-full", async () => {
        const args = stackArgs();
        args.postgres = {
            host: { host: "203.0.113.11", privateKey: "k", hostKey: TEST_HOST_KEY },
            reachableAt: "10.0.0.5",
            listenAddresses: ["127.0.0.1", "10.0.0.5"],
            allowedClients: ["10.0.0.0/24"],
        };
        const { mocks } = await deploy(args);
        const tlsStep = mocks.byName("prod-postgres-tls");
        assert.ok(tlsStep.secretInputs.includes("stdin"), "the TLS step carries the key: secret");
        const stdin = String(tlsStep.inputs.stdin);
        assert.match(stdin, /pm_write postgres-tls \/etc\/pulumi-matrix\/postgres-tls\/server\.key 0600 postgres postgres secret/);
        assert.match(stdin, /BEGIN PRIVATE KEY/);
        const request = mocks.byName("prod-postgres-tls-request");
        assert.deepEqual(request.inputs.ipAddresses, ["127.0.0.1", "::1", "10.0.0.5"]);
        assert.ok(mocks.byName("prod-postgres-ca").inputs.isCaCertificate);
        const config = String(mocks.byName("prod-synapse-config").inputs.stdin);
        assert.match(config, /sslmode: verify-full/);
        assert.match(config, /sslrootcert: \/etc\/matrix-synapse\/database-ca\.pem/);
        assert.match(config, /pm_write synapse-config \/etc\/matrix-synapse\/database-ca\.pem 0644 root root readable/);
        // The database step waits for TLS: Synapse's first connection already verifies it.
        assert.ok(mocks.byName("prod-postgres-database").inputs.stdin);
    });

    it("a PostgresDatabase for its own host only makes no CA and its TLS step removes what an earlier one wrote", async () => {
        const { mocks } = await runWithMocks(
            () => new PostgresDatabase("pg", { host: new Host("db", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY }) }),
            (db) => [db.connection],
        );
        assert.equal(mocks.resources.filter((r) => r.type.startsWith("tls:")).length, 0);
        const stdin = String(mocks.byName("pg-tls").inputs.stdin);
        assert.doesNotMatch(stdin, /pm_write postgres-tls/);
        assert.match(stdin, /pm_prune postgres-tls|postgres-tls/);
    });
});

describe("postgres: the role's password reaches the server only as a SCRAM verifier (issue 19)", () => {
    it("the role statement carries the verifier, never the password, and the verifier is stable for a salt", () => {
        const salt = Buffer.alloc(16, 7);
        const v = scramSha256Verifier("Secr3tPassw0rd", salt);
        assert.match(v, /^SCRAM-SHA-256\$4096:BwcHBwcHBwcHBwcHBwcHBw==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
        assert.equal(scramSha256Verifier("Secr3tPassw0rd", salt), v);
        assert.notEqual(scramSha256Verifier("Secr3tPassw0rd", Buffer.alloc(16, 8)), v);
        const script = postgresDatabaseScript({ database: "synapse", user: "synapse" }, "Secr3tPassw0rd", salt);
        assert.doesNotMatch(script, /Secr3tPassw0rd/);
        assert.ok(script.includes(v));
        assert.throws(() => renderCreateDatabaseSql({ database: "synapse", user: "synapse" }, "Secr3tPassw0rd"), /never a password/);
    });
});

describe("postgres: external servers default to verify-full (issue 19 item 8)", () => {
    it("default verify-full, no warning; a weaker mode is taken only as written, with a warning", () => {
        const e = (o: Partial<ExternalPostgresOptions>) =>
            resolveExternalPostgres("p", {}, { host: "db.example.com", database: "synapse", user: "synapse", ...o }).now!;
        assert.equal(e({}).sslMode, "verify-full");
        assert.deepEqual(postgresWarnings("p", e({})), []);
        assert.match(postgresWarnings("p", e({ sslMode: "require" })).join(), /not authenticated/);
        assert.match(postgresWarnings("p", e({ sslMode: "prefer" })).join(), /cleartext/);
        assert.throws(() => e({ caCertificate: "not a pem" }), /external\.caCertificate is not a PEM certificate; expected one or more PEM certificates/);
        assert.throws(() => e({ sslMode: "require", caCertificate: PEM }), /external\.caCertificate is set; it is only used to verify the server/);
        assert.equal(e({ caCertificate: PEM }).caCertificate, PEM);
    });

    it("Synapse gets the external server's CA as sslrootcert, or the system's CAs", async () => {
        const args = stackArgs();
        args.postgres = { external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x", caCertificate: PEM } };
        const { mocks } = await deploy(args);
        const config = String(mocks.byName("prod-synapse-config").inputs.stdin);
        assert.match(config, /sslmode: verify-full/);
        assert.match(config, /sslrootcert: \/etc\/matrix-synapse\/database-ca\.pem/);
        args.postgres = { external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" } };
        const plain = String((await deploy(args)).mocks.byName("prod-synapse-config").inputs.stdin);
        assert.match(plain, /sslrootcert: \/etc\/ssl\/certs\/ca-certificates\.crt/);
        assert.doesNotMatch(plain, /database-ca\.pem/);
    });
});

const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZm9v\n-----END CERTIFICATE-----\n";
