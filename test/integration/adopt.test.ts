// Adopting a hand-installed Synapse against the real programs: Synapse from
// PyPI set up in the Debian package's layout (homeserver.yaml plus conf.d,
// SQLite homeserver.db, its own signing key, media store) with users, a room
// with messages, media and one pending background update; PostgreSQL from
// Debian as the stack's empty database. The scripts are the ones
// SynapseAdoption runs (adoptPreflightScript, adoptScript), with the host's
// paths under a temp dir. systemd is not running here: `systemctl` on PATH
// is a small shell stand-in that stops and reports the old server's real
// process (is-active, stop, start, is-enabled, disable), and logs its calls.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { ADOPT_FILES, AdoptFiles, resolveAdoptSettings } from "../../src/model/adopt";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { ADOPTED_KEY_PREFIX, adoptPreflightScript, adoptScript } from "../../src/provision/adopt";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { renderYaml } from "../../src/render/yaml";
import { loginWithPassword } from "../../test/support/integration/client";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, type RunResult } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

describe("adopting a SQLite Synapse in the Debian package's layout into PostgreSQL, with real Synapse and PostgreSQL", function () {
    let pg: PgServer;
    let venv: string;
    let dir: string;
    let conf: string;
    let data: string;
    let db: string;
    let baseUrl: string;
    let port: number;
    let old: SynapseProcess | undefined;
    let synapse: SynapseProcess | undefined;
    let settings: SynapseSettings;
    let peers: SynapsePeers;
    let files: AdoptFiles;
    let env: NodeJS.ProcessEnv;
    const oldSecret = random();
    const dbPassword = random();
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const users = { alice: random(), bob: random() };
    const mediaBytes = crypto.randomBytes(40_000);
    let roomId: string;
    let mediaUri: string;
    let mediaFile: string;
    let mediaMtime: number;

    /** The stack's Synapse for this server (its paths: the package's layout under `dir`). */
    function synapseSettings(serverName: string): SynapseSettings {
        return resolveSynapseSettings("test", {
            serverName,
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: port,
            paths: { configDir: conf, dataDir: data, mediaStorePath: `${data}/media`, venvDir: venv, user: "root" },
        });
    }

    function adoptSettings(s: SynapseSettings) {
        return resolveAdoptSettings("test", { configDir: conf, venvDir: venv }, { ...s, sqlite: false });
    }

    /** A script as the secret step runs it: fd 4 is the command's stdout. */
    function runScript(text: string): Promise<RunResult> {
        return run("bash", ["-c", "exec 4>&1; exec bash -s"], { input: text, env, allowFailure: true, timeoutMs: 15 * 60_000 });
    }

    /** The background updates the original SQLite file still has pending (read only). */
    const pendingUpdates = async () =>
        (
            await run(`${venv}/bin/python`, [
                "-c",
                "import sqlite3, sys; print(','.join(r[0] for r in sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True).execute('SELECT update_name FROM background_updates')))",
                db,
            ])
        ).stdout.trim();

    const tables = async () => pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", { db: "synapse" });

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("adopt");
        conf = `${dir}/etc/matrix-synapse`;
        data = `${dir}/var/lib/matrix-synapse`;
        db = `${data}/homeserver.db`;
        port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        files = Object.fromEntries(Object.entries(ADOPT_FILES).map(([k, p]) => [k, path.join(dir, p)])) as AdoptFiles;
        fs.mkdirSync(path.dirname(files.stateDir), { recursive: true });
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };

        // The server as the package and the seed guide leave it.
        fs.mkdirSync(`${conf}/conf.d`, { recursive: true });
        fs.mkdirSync(`${data}/media`, { recursive: true });
        fs.writeFileSync(`${conf}/homeserver.signing.key`, key.fileLine, { mode: 0o600 });
        fs.writeFileSync(`${conf}/conf.d/server_name.yaml`, renderYaml({ server_name: "matrix.test" }));
        fs.writeFileSync(`${conf}/conf.d/report_stats.yaml`, renderYaml({ report_stats: false }));
        fs.writeFileSync(
            `${conf}/homeserver.yaml`,
            renderYaml({
                pid_file: `${data}/homeserver.pid`,
                listeners: [
                    {
                        port,
                        bind_addresses: ["127.0.0.1"],
                        type: "http",
                        tls: false,
                        x_forwarded: true,
                        resources: [{ names: ["client", "federation"], compress: false }],
                    },
                ],
                database: { name: "sqlite3", args: { database: db } },
                media_store_path: `${data}/media`,
                signing_key_path: `${conf}/homeserver.signing.key`,
                trusted_key_servers: [],
                registration_shared_secret: oldSecret,
            }),
        );
        // systemctl's stand-in: the old server's unit is its real process.
        const bin = `${dir}/bin`;
        fs.mkdirSync(bin);
        fs.writeFileSync(`${dir}/unit.enabled`, "");
        fs.writeFileSync(
            `${bin}/systemctl`,
            [
                "#!/bin/bash",
                `printf '%s\\n' "$*" >>${dir}/systemctl.log`,
                'args=(); for a in "$@"; do case "$a" in -q) ;; *) args+=("$a") ;; esac; done',
                'case "${args[0]}" in',
                `  is-active) kill -0 "$(cat ${dir}/unit.pid 2>/dev/null)" 2>/dev/null ;;`,
                `  stop) pid=$(cat ${dir}/unit.pid); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; sha256sum ${db} | cut -d ' ' -f 1 >${dir}/db.at-stop ;;`,
                `  is-enabled) [ -e ${dir}/unit.enabled ] ;;`,
                `  disable) rm -f ${dir}/unit.enabled ;;`,
                "  *) exit 1 ;;",
                "esac",
                "",
            ].join("\n"),
            { mode: 0o755 },
        );
        env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
        settings = synapseSettings("matrix.test");
    });

    after(async function () {
        await Promise.all([old?.stop(), synapse?.stop()]);
        await pg?.stop();
    });

    it("the old server: users, a room with messages, media, one pending background update", async function () {
        old = await startSynapse({ venv, configPaths: [`${conf}/homeserver.yaml`, `${conf}/conf.d/`], healthUrl: `${baseUrl}/health`, cwd: data, name: "old" });
        fs.writeFileSync(`${dir}/unit.pid`, String(old.pid));
        for (const [u, pw] of Object.entries(users)) await registerWithSharedSecret(baseUrl, oldSecret, u, pw, false);
        const alice = await loginWithPassword(baseUrl, "alice", users.alice);
        roomId = (await alice.client.createRoom({ name: "adopted", invite: ["@bob:matrix.test"] })).room_id;
        for (let i = 0; i < 5; i++) await alice.client.sendTextMessage(roomId, `message ${i} before the adoption`);
        mediaUri = (await alice.client.uploadContent(mediaBytes, { type: "application/octet-stream", name: "old.bin" })).content_uri;
        alice.client.stopClient();
        const mediaId = mediaUri.split("/").pop()!;
        mediaFile = `${data}/media/local_content/${mediaId.slice(0, 2)}/${mediaId.slice(2, 4)}/${mediaId.slice(4)}`;
        mediaMtime = fs.statSync(mediaFile).mtimeMs;
        // A pending background update (its index dropped, its row queued): synapse_port_db refuses a database with one.
        await run(`${venv}/bin/python`, [
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DROP INDEX IF EXISTS room_account_data_room_id'); c.execute(\"INSERT OR REPLACE INTO background_updates (update_name, progress_json) VALUES ('room_account_data_index_room_id', '{}')\"); c.commit()",
            db,
        ]);
        assert.ok((await pendingUpdates()).split(",").includes("room_account_data_index_room_id"));
    });

    it("the preflight refuses another server_name and another key, changing nothing", async function () {
        const before = sha256(`${conf}/homeserver.yaml`);
        const wrongName = await runScript(adoptPreflightScript(adoptSettings(synapseSettings("other.test")), files));
        assert.notEqual(wrongName.code, 0, wrongName.stdout);
        assert.match(wrongName.stderr, /refused by the preflight; nothing was changed/);
        assert.match(wrongName.stderr, /its server_name is 'matrix\.test', but the stack's serverName is 'other\.test'/);
        assert.doesNotMatch(wrongName.stdout, new RegExp(ADOPTED_KEY_PREFIX));
        // Another key on disk than the one the running server publishes.
        const other = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        fs.writeFileSync(`${conf}/homeserver.signing.key`, other.fileLine);
        const wrongKey = await runScript(adoptPreflightScript(adoptSettings(settings), files));
        const step = await runScript(adoptScript(adoptSettings(settings), settings, peers, files));
        fs.writeFileSync(`${conf}/homeserver.signing.key`, key.fileLine, { mode: 0o600 });
        assert.notEqual(wrongKey.code, 0);
        assert.match(wrongKey.stderr, /is not the key the server publishes/);
        assert.notEqual(step.code, 0, "the adoption step runs the preflight again");
        assert.match(step.stderr, /is not the key the server publishes/);
        assert.equal(await tables(), "0", "the stack's database is untouched");
        assert.ok(old!.running(), "the old server still runs");
        assert.equal(sha256(`${conf}/homeserver.yaml`), before);
        assert.equal(fs.existsSync(`${conf}/conf.d/server_name.yaml`), true);
        assert.equal(fs.existsSync(files.stateDir), false);
    });

    it("adopts: preflight, the port in two passes, the old unit and config disabled; the stack's Synapse keeps name, key, users, history and media", async function () {
        this.timeout(30 * 60_000);
        const a = adoptSettings(settings);
        const pre = await runScript(adoptPreflightScript(a, files));
        assert.equal(pre.code, 0, pre.stderr + pre.stdout);
        assert.match(
            pre.stdout,
            new RegExp(`preflight passed: server_name matrix\\.test, key ed25519:${key.keyId} \\(the key the server publishes\\), schema \\d+`),
        );
        const imported = pre.stdout
            .split("\n")
            .find((l) => l.startsWith(ADOPTED_KEY_PREFIX))!
            .slice(ADOPTED_KEY_PREFIX.length);
        assert.equal(`${imported}\n`, key.fileLine, "the key the stack keeps is the key on disk");

        // Synapse's secrets step, with the imported key (what the component passes as signingKey), while the old
        // server runs: its unit has the stack's unit's name, and a restart would start it on the stack's release.
        const systemctlCalls = () => (fs.existsSync(`${dir}/systemctl.log`) ? fs.readFileSync(`${dir}/systemctl.log`, "utf8") : "");
        const calls = systemctlCalls();
        const secrets = await runScript(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: imported,
                files: [pgpassSecretFile(peers.database!, dbPassword)],
            }),
        );
        assert.equal(secrets.code, 0, secrets.stderr + secrets.stdout);
        assert.ok(old!.running(), "the old server still runs");
        assert.match(secrets.stdout, /matrix-synapse\.service not restarted: .* is not configured by pulumi-matrix yet/);
        const secretCalls = systemctlCalls().slice(calls.length);
        assert.doesNotMatch(secretCalls, /^(restart|stop|start|try-restart)\b/m, secretCalls);

        const r = await runScript(adoptScript(a, settings, peers, files));
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /adoption: the stack's database is empty/);
        assert.match(r.stdout, /first pass \(the old server still runs\)/);
        assert.match(r.stdout, /final pass \(the old server stopped\)/);
        assert.match(r.stdout, /adoption done/);
        assert.ok(!old!.running(), "the old unit was stopped");
        assert.match(fs.readFileSync(`${dir}/systemctl.log`, "utf8"), /^disable -q matrix-synapse\.service$/m);
        assert.equal(fs.existsSync(`${dir}/unit.enabled`), false);
        // The original SQLite file: as the old server left it when it stopped.
        assert.equal(sha256(db), fs.readFileSync(`${dir}/db.at-stop`, "utf8").trim());
        // The old server may have run its pending updates itself before it stopped; what the port read is the snapshot copies,
        // on which update_synapse_database ran first (synapse_port_db refuses a database with a pending update).
        // The package's config: moved aside and kept whole, not deleted.
        assert.equal(fs.existsSync(`${conf}/homeserver.yaml`), false);
        assert.match(fs.readFileSync(`${conf}/homeserver.yaml.pre-adoption`, "utf8"), /sqlite3/);
        assert.deepEqual(fs.readdirSync(`${conf}/conf.d.pre-adoption`).sort(), ["report_stats.yaml", "server_name.yaml"]);
        assert.ok(fs.existsSync(`${files.keptConfig}/homeserver.yaml`));
        assert.equal(fs.statSync(files.stateDir).mode & 0o777, 0o700);
        assert.equal(fs.readFileSync(files.signingKey, "utf8"), key.fileLine);
        assert.equal(await pg.psql("SELECT count(*) FROM users", { db: "synapse" }), "2");

        // The stack's Synapse, on PostgreSQL, from the files the config step writes.
        const f = synapseFiles(settings.paths);
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", settings, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(settings));
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: data, name: "adopted" });
        const keys = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { server_name: string; verify_keys: Record<string, unknown> };
        assert.equal(keys.server_name, "matrix.test");
        assert.deepEqual(Object.keys(keys.verify_keys), [`ed25519:${key.keyId}`]);
        const bob = await loginWithPassword(baseUrl, "bob", users.bob);
        const alice = await loginWithPassword(baseUrl, "alice", users.alice);
        const messages = (await (
            await fetch(`${baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, {
                headers: { Authorization: `Bearer ${alice.accessToken}` },
            })
        ).json()) as { chunk: { type: string; content: { body?: string } }[] };
        for (let i = 0; i < 5; i++)
            assert.ok(
                messages.chunk.some((e) => e.content.body === `message ${i} before the adoption`),
                `message ${i}`,
            );
        await alice.client.sendTextMessage(roomId, "a message after the adoption");
        const [server, mediaId] = mediaUri.replace("mxc://", "").split("/");
        const media = await fetch(`${baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
            headers: { Authorization: `Bearer ${bob.accessToken}` },
        });
        assert.equal(media.status, 200);
        assert.ok(Buffer.from(await media.arrayBuffer()).equals(mediaBytes), "the media's bytes");
        assert.equal(fs.statSync(mediaFile).mtimeMs, mediaMtime, "the media file keeps its time");
        alice.client.stopClient();
        bob.client.stopClient();
    });

    it("a second run changes nothing: the step does nothing, the preflight hands back the same key", async function () {
        const tablesBefore = await tables();
        const step = await runScript(adoptScript(adoptSettings(settings), settings, peers, files));
        assert.equal(step.code, 0, step.stderr);
        assert.match(step.stdout, /adopted already \(.* matrix\.test ed25519:.*\): nothing to do/);
        const pre = await runScript(adoptPreflightScript(adoptSettings(settings), files));
        assert.equal(pre.code, 0, pre.stderr);
        assert.ok(pre.stdout.includes(`${ADOPTED_KEY_PREFIX}${key.fileLine}`));
        assert.equal(await tables(), tablesBefore);
        assert.ok(synapse!.running());
    });
});
