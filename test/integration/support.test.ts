// Proves the integration support layer against the real programs:
// PostgreSQL from Debian, Synapse from PyPI, matrix-js-sdk as the client.
// The homeserver.yaml here is a MINIMAL hand-written one on purpose: the real
// integration tests render their configs with the library's public functions.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { loginWithPassword, whoami } from "../support/integration/client";
import { freePort } from "../support/integration/net";
import { type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, pendingCleanups } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv, SYNAPSE_TEST_VERSION } from "../support/integration/synapse-venv";

/** Signing key line from a fixed seed: `ed25519 <key_id> <unpadded base64 seed>`. */
function signingKeyLine(keyId: string, seedLabel: string): string {
    const seed = crypto.createHash("sha256").update(seedLabel).digest();
    return `ed25519 ${keyId} ${seed.toString("base64").replace(/=+$/, "")}\n`;
}

describe("integration support layer", function () {
    let pg: PgServer;
    let venv: string;
    let synapse: SynapseProcess | undefined;
    const dbPassword = "support-test-db-password";
    const sharedSecret = "support-test-registration-shared-secret";

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv(SYNAPSE_TEST_VERSION)]);
    });

    after(async function () {
        await synapse?.stop();
        await pg?.stop();
    });

    it("runs a throw-away PostgreSQL whose default locale is not C", async function () {
        assert.ok(pg.major >= 14, `PostgreSQL ${pg.major} < 14`);
        assert.equal(await pg.psql("SELECT 1"), "1");
        assert.equal(await pg.psql("SELECT current_user"), "postgres");
        const t1 = await pg.psql("SELECT datcollate FROM pg_database WHERE datname = 'template1'");
        assert.notEqual(t1, "C", "template1 should carry the machine's locale");
        // TCP must not be trusted: the superuser has no password, so this must fail.
        const r = await pg.psql("SELECT 1", { db: "postgres", user: "nobody-here", password: "x" }).then(
            () => "connected",
            (e: Error) => e.message,
        );
        assert.match(r, /password authentication failed|does not exist/);
    });

    it("creates a role and a UTF8/C database from template0", async function () {
        await pg.runAsSuperuser(
            [
                `CREATE ROLE synapse_user LOGIN PASSWORD '${dbPassword}';`,
                `CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER synapse_user;`,
            ].join("\n"),
        );
        const row = await pg.psql("SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = 'synapse'");
        assert.equal(row, "UTF8|C|C");
        // The role can log in with its password (socket, scram).
        assert.equal(await pg.psql("SELECT current_user", { db: "synapse", user: "synapse_user", password: dbPassword }), "synapse_user");
        // Error path: ON_ERROR_STOP makes psql fail and the helper throw with stderr.
        await assert.rejects(pg.psql("SELECT * FROM no_such_table"), /no_such_table/);
    });

    it("boots Synapse on that database, registers a user and logs in with matrix-js-sdk", async function () {
        const dir = makeTempDir("synapse-support");
        const port = await freePort();
        const baseUrl = `http://127.0.0.1:${port}`;
        fs.mkdirSync(path.join(dir, "media"));
        fs.writeFileSync(path.join(dir, "localhost.signing.key"), signingKeyLine("a_test", "pulumi-matrix support test"));
        fs.writeFileSync(
            path.join(dir, "log.yaml"),
            [
                "version: 1",
                "formatters:",
                "  precise:",
                "    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'",
                "handlers:",
                "  console:",
                "    class: logging.StreamHandler",
                "    formatter: precise",
                "    stream: ext://sys.stderr",
                "loggers:",
                "  synapse.storage.SQL:",
                "    level: INFO",
                "root:",
                "  level: INFO",
                "  handlers: [console]",
                "disable_existing_loggers: false",
                "",
            ].join("\n"),
        );
        const config = {
            server_name: "localhost",
            pid_file: path.join(dir, "homeserver.pid"),
            listeners: [
                {
                    port,
                    bind_addresses: ["127.0.0.1"],
                    type: "http",
                    tls: false,
                    x_forwarded: false,
                    resources: [{ names: ["client", "federation"], compress: false }],
                },
            ],
            database: {
                name: "psycopg2",
                args: { user: "synapse_user", password: dbPassword, dbname: "synapse", host: pg.host, port: pg.port, cp_min: 1, cp_max: 5 },
            },
            log_config: path.join(dir, "log.yaml"),
            media_store_path: path.join(dir, "media"),
            signing_key_path: path.join(dir, "localhost.signing.key"),
            report_stats: false,
            registration_shared_secret: sharedSecret,
            macaroon_secret_key: "support-test-macaroon-secret-key",
            form_secret: "support-test-form-secret",
            // Synapse 1.163 prints its "no trusted key server configured" warning
            // whenever trusted_key_servers is absent, suppress_key_server_warning or
            // not; the flag only silences the "matrix.org is a trusted key server"
            // one. A test server federates with nobody: no key servers at all.
            trusted_key_servers: [],
            suppress_key_server_warning: true,
        };
        // JSON is valid YAML.
        fs.writeFileSync(path.join(dir, "homeserver.yaml"), JSON.stringify(config, null, 2) + "\n");

        synapse = await startSynapse({
            venv,
            configPaths: [path.join(dir, "homeserver.yaml")],
            healthUrl: `${baseUrl}/health`,
            cwd: dir,
        });

        const versions = (await (await fetch(`${baseUrl}/_matrix/client/versions`)).json()) as { versions: string[] };
        assert.ok(versions.versions.length > 0, JSON.stringify(versions));
        assert.ok(versions.versions.includes("v1.1"), JSON.stringify(versions.versions));

        const reg = await registerWithSharedSecret(baseUrl, sharedSecret, "alice", "alice-password-1", true);
        assert.equal(reg.user_id, "@alice:localhost");
        assert.ok(reg.access_token);
        // A wrong secret is refused (the MAC is really checked).
        await assert.rejects(registerWithSharedSecret(baseUrl, "wrong-secret", "bob", "pw", false), /HTTP 403/);

        const login = await loginWithPassword(baseUrl, "alice", "alice-password-1");
        assert.equal(login.userId, "@alice:localhost");
        assert.ok(login.deviceId);
        const me = await whoami(baseUrl, login.accessToken);
        assert.equal(me.user_id, "@alice:localhost");
        assert.equal(me.device_id, login.deviceId);
        const room = await login.client.createRoom({ name: "support test" });
        // Synapse 1.163 defaults to room version 12, whose room IDs carry no server name.
        assert.match(room.room_id, /^!\S+$/);
        login.client.stopClient();

        // restart() keeps the same options and waits for health again.
        const firstPid = synapse.pid;
        await synapse.restart();
        assert.notEqual(synapse.pid, firstPid);
        assert.equal((await whoami(baseUrl, login.accessToken)).user_id, "@alice:localhost");
        assert.match(synapse.log(), /restarted/);

        // A database dump is possible while Synapse runs.
        const dumpFile = path.join(dir, "synapse.dump");
        await pg.dump("synapse", dumpFile);
        assert.ok(fs.statSync(dumpFile).size > 10_000);

        const log = synapse.log();
        assert.doesNotMatch(log, /trusted key server/i);
        assert.doesNotMatch(log, / - (ERROR|CRITICAL) - /);
        await synapse.stop();
        assert.equal(synapse.running(), false);
        if (process.env.PULUMI_MATRIX_VERBOSE === "1") {
            process.stderr.write(
                log
                    .split("\n")
                    .filter((l) => / - (WARNING|ERROR|CRITICAL) - /.test(l))
                    .join("\n") + "\n",
            );
        }
    });

    it("reports the last log lines when Synapse cannot start", async function () {
        const dir = makeTempDir("synapse-bad");
        const port = await freePort();
        fs.writeFileSync(path.join(dir, "homeserver.yaml"), JSON.stringify({ server_name: "localhost", report_stats: false }) + "\n");
        await assert.rejects(
            startSynapse({ venv, configPaths: [path.join(dir, "homeserver.yaml")], healthUrl: `http://127.0.0.1:${port}/health`, timeoutMs: 60_000 }),
            (err: Error) => /exited .* before becoming healthy/.test(err.message) && /last 60 log lines/.test(err.message),
        );
    });

    it("leaves only the suite-level resources registered", function () {
        const pending = pendingCleanups();
        assert.ok(!pending.some((p) => p.startsWith("synapse")), pending.join(", "));
    });
});
