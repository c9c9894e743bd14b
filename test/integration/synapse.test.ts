// The foundation against the real programs: PostgreSQL from Debian, Synapse
// from PyPI, matrix-js-sdk as the client. Every file is rendered with the
// library's public functions (paths pointed at a temp dir), and the secrets
// and admin scripts are the very ones the components send to a VM.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { synapseAdminScript, synapseSecretsScript } from "../../src/provision/synapse";
import { synapseRecords } from "../../src/provision/synapse/records";
import { DIGEST_KEY_FILE } from "../../src/render/drift";
import { emailSecretFile, pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { loginWithPassword, whoami } from "../support/integration/client";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");

describe("Synapse as the library configures it", function () {
    let pg: PgServer;
    let venv: string;
    let dir: string;
    let settings: SynapseSettings;
    let peers: SynapsePeers;
    let synapse: SynapseProcess | undefined;
    let baseUrl: string;
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret: random(), databasePassword: random() };
    const pem = crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const key = signingKeyFromPem(pem);

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("synapse-foundation");
        const port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, secrets.databasePassword));
        settings = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: port,
            metrics: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        writeReadableConfig(settings);
        // The secrets script the component sends to the VM, run here for real.
        await run("bash", ["-s"], {
            input: synapseSecretsScript(settings, {
                ...secrets,
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, secrets.databasePassword)],
            }),
        });
    });

    after(async function () {
        await synapse?.stop();
        await pg?.stop();
    });

    function writeReadableConfig(s: SynapseSettings) {
        const f = synapseFiles(s.paths);
        fs.mkdirSync(f.confD, { recursive: true });
        fs.mkdirSync(s.paths.mediaStorePath, { recursive: true });
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", s, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(s));
    }

    async function start(s = settings) {
        const f = synapseFiles(s.paths);
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: s.paths.dataDir });
    }

    it("creates the database UTF8 with C collation from the rendered SQL, and the SQL runs again harmlessly", async function () {
        assert.equal(
            await pg.psql("SELECT pg_encoding_to_char(encoding) || '/' || datcollate || '/' || datctype FROM pg_database WHERE datname = 'synapse'"),
            "UTF8/C/C",
        );
        await pg.runAsSuperuser(createDatabaseSql({ database: "synapse", user: "synapse" }, secrets.databasePassword));
    });

    it("writes secret files readable only by root and Synapse's group", function () {
        const f = synapseFiles(settings.paths);
        for (const p of [f.macaroonSecretKey, f.formSecret, f.registrationSharedSecret, f.signingKey]) {
            assert.equal((fs.statSync(p).mode & 0o777).toString(8), "640", p);
        }
        assert.equal((fs.statSync(f.databasePassfile).mode & 0o777).toString(8), "600");
        assert.equal(fs.readFileSync(f.signingKey, "utf8"), key.fileLine);
        assert.doesNotMatch(fs.readFileSync(f.homeserverYaml, "utf8"), new RegExp(Object.values(secrets).join("|")));
    });

    it("starts and answers /health and /_matrix/client/versions", async function () {
        await start();
        assert.equal(await (await fetch(`${baseUrl}/health`)).text(), "OK");
        const versions = (await (await fetch(`${baseUrl}/_matrix/client/versions`)).json()) as { versions: string[] };
        assert.ok(versions.versions.includes("v1.11") || versions.versions.length > 5, JSON.stringify(versions));
    });

    it("publishes exactly the signing key derived from the Pulumi-side key", async function () {
        const body = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { server_name: string; verify_keys: Record<string, { key: string }> };
        assert.equal(body.server_name, "matrix.test");
        assert.deepEqual(Object.keys(body.verify_keys), [`ed25519:${key.keyId}`]);
        assert.equal(body.verify_keys[`ed25519:${key.keyId}`].key, key.publicKey);
    });

    it("refuses public registration by default", async function () {
        const r = await fetch(`${baseUrl}/_matrix/client/v3/register`, { method: "POST", body: JSON.stringify({ username: "eve", password: random() }) });
        assert.equal(r.status, 403);
    });

    it("creates the admin with the component's admin script; the admin logs in with matrix-js-sdk; a re-run with the same password leaves it alone", async function () {
        const password = random();
        const first = await run("bash", ["-s"], { input: synapseAdminScript(settings, "admin", password) });
        assert.match(first.stdout, /admin user @admin:matrix.test created/);
        const again = await run("bash", ["-s"], { input: synapseAdminScript(settings, "admin", password) });
        assert.match(again.stdout, /already exists with the password pulumi-matrix set; left unchanged/);
        const session = await loginWithPassword(baseUrl, "admin", password);
        assert.equal(session.userId, "@admin:matrix.test");
        assert.equal((await whoami(baseUrl, session.accessToken)).user_id, "@admin:matrix.test");
        session.client.stopClient();
        const adminCheck = await fetch(`${baseUrl}/_synapse/admin/v2/users/@admin:matrix.test`, {
            headers: { Authorization: `Bearer ${session.accessToken}` },
        });
        assert.equal(((await adminCheck.json()) as { admin: boolean }).admin, true);
    });

    it("registers a user through the shared-secret API from the secret file, who logs in", async function () {
        const shared = fs.readFileSync(synapseFiles(settings.paths).registrationSharedSecret, "utf8").trim();
        const password = random();
        await registerWithSharedSecret(baseUrl, shared, "alice", password, false);
        const session = await loginWithPassword(baseUrl, "alice", password);
        assert.equal(session.userId, "@alice:matrix.test");
        session.client.stopClient();
    });

    it("keeps the same key id and users after a restart", async function () {
        await synapse!.restart();
        const body = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(body.verify_keys), [`ed25519:${key.keyId}`]);
        const users = await pg.psql("SELECT count(*) FROM users", { db: "synapse" });
        assert.equal(users, "2");
    });

    it("a new adminPassword for an existing admin: the password changes and every earlier session is logged out; the record is keyed", async function () {
        const [pw1, pw2] = [random(), random()];
        const admin = async (pw: string) => (await run("bash", ["-s"], { input: synapseAdminScript(settings, "admin2", pw) })).stdout;
        assert.match(await admin(pw1), /admin user @admin2:matrix.test created/);
        const old = await loginWithPassword(baseUrl, "admin2", pw1);
        old.client.stopClient();
        assert.equal((await whoami(baseUrl, old.accessToken)).user_id, "@admin2:matrix.test");

        assert.match(await admin(pw2), /its password is now adminPassword, and its earlier sessions are logged out/);
        const stale = await fetch(`${baseUrl}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${old.accessToken}` } });
        assert.equal(stale.status, 401, "the session made with the old password is gone");
        // No device and no token of the account is left: the script's own login (with the new password) is logged out too.
        const left = async (table: string) => pg.psql(`SELECT count(*) FROM ${table} WHERE user_id = '@admin2:matrix.test'`, { db: "synapse" });
        assert.deepEqual([await left("devices"), await left("access_tokens")], ["0", "0"]);

        // The record holds a keyed digest: not the password's plain sha256; the key is root's alone.
        const r = synapseRecords(settings.paths);
        const record = fs.readFileSync(r.adminPassword, "utf8").trim();
        assert.match(record, /^@admin2:matrix\.test [0-9a-f]{64}$/);
        assert.notEqual(record.split(" ")[1], crypto.createHash("sha256").update(pw2).digest("hex"));
        const key = fs.readFileSync(DIGEST_KEY_FILE, "utf8").trim();
        assert.match(key, /^[0-9a-f]{64}$/);
        assert.equal(record.split(" ")[1], crypto.createHmac("sha256", key).update(pw2).digest("hex"));
        assert.equal(fs.statSync(DIGEST_KEY_FILE).mode & 0o777, 0o600);

        // An earlier release's unkeyed record is honoured once (no reset, no logout), then replaced by the keyed one.
        fs.rmSync(r.adminPassword);
        fs.writeFileSync(r.legacyAdminPassword, `@admin2:matrix.test ${crypto.createHash("sha256").update(pw2).digest("hex")}\n`);
        assert.match(await admin(pw2), /already exists with the password pulumi-matrix set; left unchanged/);
        assert.equal(fs.readFileSync(r.adminPassword, "utf8").trim(), record);
        assert.ok(!fs.existsSync(r.legacyAdminPassword));
        assert.equal(fs.readFileSync(DIGEST_KEY_FILE, "utf8").trim(), key, "the key is never made again");
    });

    it("logs no config warning and no deprecation", function () {
        // The start-up banner is logged at WARNING level on purpose; everything else counts.
        const banner = /synapse\.config\.logger - \d+ - WARNING - main - (\*{5} STARTING SERVER|Server .* version |Copyright|Licensed under)/;
        const lines = synapse!
            .log()
            .split("\n")
            .filter((l) => !banner.test(l));
        const bad = lines.filter((l) => /deprecat/i.test(l) || (/ - (WARNING|ERROR|CRITICAL) - /.test(l) && /config|setting|option/i.test(l)));
        assert.deepEqual(bad, []);
    });

    it("accepts the optional features: token registration, URL previews, email, old signing keys, purges (issue 23)", async function () {
        await synapse?.stop();
        synapse = undefined;
        const s = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: settings.httpPort,
            metrics: { port: settings.metrics.port },
            registration: "token",
            urlPreviews: { enabled: true },
            email: { smtpHost: "localhost", smtpPort: 2525, notifFrom: "Matrix <noreply@matrix.test>", requireTransportSecurity: false },
            oldSigningKeys: { "ed25519:a_old": { key: key.publicKey.replace(/^./, "A"), expiredTs: 1700000000000 } },
            federationDomainWhitelist: ["matrix.test"],
            forgottenRoomRetentionPeriod: "2w",
            mediaRetention: { localMediaLifetime: "365d", remoteMediaLifetime: "30d" },
            paths: settings.paths,
        });
        // Synapse refuses a config with an unknown duration or a misnamed media_retention key at start.
        assert.match(renderHomeserverYaml("test", s, peers), /^media_retention:\n {2}local_media_lifetime: 365d\n {2}remote_media_lifetime: 30d$/m);
        writeReadableConfig(s);
        await run("bash", ["-s"], {
            input: synapseSecretsScript(s, {
                ...secrets,
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, secrets.databasePassword), emailSecretFile(s, random())],
            }),
        });
        await start(s);
        // Synapse ignores keys it does not know: read back what it parsed, so a misnamed key fails here.
        const f = synapseFiles(s.paths);
        const parsed = await run(
            `${venv}/bin/python`,
            [
                "-c",
                [
                    "import sys",
                    "from synapse.config.homeserver import HomeServerConfig",
                    "c = HomeServerConfig.load_config('', ['-c', sys.argv[1], '-c', sys.argv[2]])",
                    "print(c.server.forgotten_room_retention_period, c.media.media_retention_local_media_lifetime_ms, c.media.media_retention_remote_media_lifetime_ms)",
                ].join("\n"),
                f.homeserverYaml,
                f.confD + "/",
            ],
            { cwd: s.paths.dataDir },
        );
        const day = 24 * 3600 * 1000;
        assert.equal(parsed.stdout.trim(), `${14 * day} ${365 * day} ${30 * day}`, parsed.stderr);
        const flows = await fetch(`${baseUrl}/_matrix/client/v3/register`, { method: "POST", body: JSON.stringify({}) });
        const body = (await flows.json()) as { flows: { stages: string[] }[] };
        assert.ok(
            body.flows.some((f) => f.stages.includes("m.login.registration_token")),
            JSON.stringify(body),
        );
        const keys = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { old_verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(keys.old_verify_keys), ["ed25519:a_old"]);
        const bad = synapse!
            .log()
            .split("\n")
            .filter((l) => /deprecat/i.test(l));
        assert.deepEqual(bad, []);
    });
});
