// PostgreSQL as the library configures it for clients on other hosts
// (issue 19 item 8): a real server from Debian, a client in a network
// namespace of this test's own (so pg_hba sees a non-loopback address),
// the rendered pg_hba block and ssl settings, a CA and server certificate
// like the library's (EC P-256, the server's address as an IP SAN). A
// cleartext connection from the other host is refused; verify-full with
// the CA succeeds. The role's password goes in as its SCRAM verifier: login
// works with the password, which the server's statement log never shows.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { POSTGRES_FILES, resolvePostgresSettings } from "../../src/model/postgres";
import { renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresSslConf, scramSha256Verifier } from "../../src/render/postgres";
import { PG_OS_USER, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, requireUser, run } from "../support/integration/processes";
import { addClientNamespace, makeServerCertificate } from "../support/integration/remotePeer";

const NS = `pm-pgtls-${process.pid}`;
const HOST_IF = `pmpg${process.pid % 100000}`;
const SERVER = "10.231.7.1";
const CLIENT = "10.231.7.2";
const PASSWORD = "Vq3kTz8LmWn2Rs7YpXc4Hd9Jf6Gb1Ne5";

describe("PostgreSQL for clients on other hosts: TLS only, verify-full, a SCRAM verifier", function () {
    let pg: PgServer;
    let dir: string;

    before(async function () {
        await addClientNamespace(NS, HOST_IF, SERVER, CLIENT);

        pg = await startPostgres({ listenAddresses: ["127.0.0.1", SERVER] });
        dir = makeTempDir("pg-tls", { owner: PG_OS_USER });
        await makeServerCertificate(dir, "PostgreSQL", ["127.0.0.1", SERVER]);
        const u = requireUser(PG_OS_USER);
        fs.chownSync(path.join(dir, "server.key"), u.uid, u.gid);
        fs.chmodSync(path.join(dir, "server.key"), 0o600);

        const s = resolvePostgresSettings("PostgresDatabase", { port: pg.port, listenAddresses: ["127.0.0.1", SERVER], allowedClients: [`${CLIENT}/32`] });
        // The rendered ssl settings, with this test's files in place of the host's paths.
        const files: Record<string, string> = {
            [POSTGRES_FILES.tlsCert]: path.join(dir, "server.crt"),
            [POSTGRES_FILES.tlsKey]: path.join(dir, "server.key"),
            [POSTGRES_FILES.tlsCa]: path.join(dir, "ca.crt"),
        };
        const ssl = renderPostgresSslConf()
            .split("\n")
            .filter((l) => /^\w+ = /.test(l))
            .map((l) => l.replace(/'([^']+)'/, (m, p: string) => (files[p] ? `'${files[p]}'` : m)));
        assert.equal(ssl.length, 5);
        fs.appendFileSync(path.join(pg.dataDir, "postgresql.auto.conf"), [...ssl, "log_statement = 'all'", ""].join("\n"));
        // pg_hba: the test's superuser socket line, then the managed block as the host gets it.
        fs.writeFileSync(path.join(pg.dataDir, "pg_hba.conf"), `local all postgres trust\n${renderPgHbaBlock(s)}`);
        await pg.psql("SELECT pg_reload_conf()");
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await pg.psql("SHOW ssl"), "on");
        await pg.runAsSuperuser(renderCreateDatabaseSql(s, scramSha256Verifier(PASSWORD, Buffer.alloc(16, 3))));
    });

    after(async function () {
        await pg?.stop();
    });

    const fromOtherHost = (conninfo: string) =>
        run(
            "ip",
            ["netns", "exec", NS, path.join(pg.binDir, "psql"), "-X", "-At", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", conninfo],
            {
                env: { ...process.env, PGPASSWORD: PASSWORD, PGCONNECT_TIMEOUT: "10" },
                allowFailure: true,
            },
        );

    it("refuses a cleartext connection from another host", async function () {
        const r = await fromOtherHost(`host=${SERVER} port=${pg.port} dbname=synapse user=synapse sslmode=disable`);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /pg_hba\.conf rejects connection|no encryption/);
    });

    it("accepts verify-full against the CA from another host, over TLS", async function () {
        const r = await fromOtherHost(`host=${SERVER} port=${pg.port} dbname=synapse user=synapse sslmode=verify-full sslrootcert=${path.join(dir, "ca.crt")}`);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), "t");
    });

    it("verify-full fails against another CA (the system's): the server is authenticated, not just encrypted", async function () {
        const r = await fromOtherHost(
            `host=${SERVER} port=${pg.port} dbname=synapse user=synapse sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt`,
        );
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /certificate verify failed/);
    });

    it("the role logs in with its password, which the server's statement log never contains", async function () {
        // Over loopback TCP, as the managed block's host line allows (scram-sha-256).
        const r = await run(path.join(pg.binDir, "psql"), ["-X", "-At", "-c", "SELECT 1", `host=127.0.0.1 port=${pg.port} dbname=synapse user=synapse`], {
            env: { ...process.env, PGPASSWORD: PASSWORD },
        });
        assert.equal(r.stdout.trim(), "1");
        const log = pg.log();
        assert.match(log, /ALTER ROLE/);
        assert.ok(!log.includes(PASSWORD), "the clear password is in the server's log");
        assert.match(await pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'synapse'"), /^SCRAM-SHA-256\$4096:/);
    });
});
