// Backups and the restore against the real programs: PostgreSQL and restic
// from Debian, Synapse from PyPI, OpenSSH's sftp-server and versitygw (an
// S3-compatible gateway) as the off-host targets, each on loopback. The
// commands are the ones SynapseBackup installs (renderBackupCommand,
// renderRestoreCommand), with the host's paths pointed at a temp dir; they run
// as root, as the units run them.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { BACKUP_METRIC, BackupFiles, BackupSettings, resolveBackupSettings } from "../../src/model/backup";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { restoreScript } from "../../src/provision/backup";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { type S3Server, type SftpServer, startS3Server, startSftpServer, writeBackupHost } from "../support/integration/backupTargets";
import { loginWithPassword } from "../support/integration/client";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, type RunResult } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");

/** One target's repository and the files its commands read, under `root`. */
interface Target {
    name: string;
    files: BackupFiles;
    settings: BackupSettings;
    env: string;
    password: string;
    sshKey?: string;
}

describe("backups and the restore, with real Synapse, PostgreSQL, restic, sftp-server and versitygw", function () {
    let pg: PgServer;
    let venv: string;
    let dir: string;
    let settings: SynapseSettings;
    let peers: SynapsePeers;
    let synapse: SynapseProcess | undefined;
    let baseUrl: string;
    let sftp: SftpServer;
    let s3: S3Server;
    const targets: Record<string, Target> = {};
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret: random(), databasePassword: random() };
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const users = { alice: random(), bob: random() };
    let roomId: string;
    let mediaUri: string;
    const mediaBytes = crypto.randomBytes(50_000);
    /** A secret file the stack does not write (the user's own): it must come back from the archive. */
    let ownSecret: string;

    before(async function () {
        [pg, venv, sftp, s3] = await Promise.all([startPostgres(), ensureSynapseVenv(), startSftpServer(), startS3Server()]);
        dir = makeTempDir("backup");
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
        const f = synapseFiles(settings.paths);
        fs.mkdirSync(f.confD, { recursive: true });
        fs.mkdirSync(settings.paths.mediaStorePath, { recursive: true });
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", settings, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(settings));
        await run("bash", ["-s"], {
            input: synapseSecretsScript(settings, {
                ...secrets,
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, secrets.databasePassword)],
            }),
        });
        ownSecret = path.join(f.secretsDir, "users_own_secret");
        fs.writeFileSync(ownSecret, "kept-by-the-user\n", { mode: 0o640 });

        // The two targets, each with its own layout of the host's files.
        for (const [name, o] of [
            ["sftp", { repository: `sftp://${sftp.user}@127.0.0.1:${sftp.port}/${sftp.dir}/repo`, sftpKnownHosts: sftp.knownHosts }],
            ["s3", { repository: `s3:${s3.endpoint}/${s3.bucket}/matrix`, keepLocalCopy: true }],
        ] as const) {
            const s = resolveBackupSettings(
                `SynapseBackup "${name}"`,
                { ...o, directory: path.join(dir, `host-${name}`, "archive") },
                {
                    synapse: settings,
                    database: pgSettings,
                    credentials: { password: true, sftpPrivateKey: name === "sftp", s3AccessKeyId: name === "s3", s3SecretAccessKey: name === "s3" },
                },
            );
            const password = random();
            const files = writeBackupHost(path.join(dir, `host-${name}`), s, { password, ...(name === "sftp" ? { sftp } : { s3 }) });
            targets[name] = { name, files, settings: s, env: files.envFile, password };
        }
    });

    after(async function () {
        await synapse?.stop();
        await Promise.all([pg?.stop(), sftp?.stop(), s3?.stop()]);
    });

    async function start() {
        const f = synapseFiles(settings.paths);
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: settings.paths.dataDir });
    }

    /** The host's command as the unit runs it (root), with pg_dump/psql of the test cluster on PATH and its socket. */
    function command(t: Target, which: "backupCommand" | "restoreCommand", args: string[]): Promise<RunResult> {
        return run(t.files[which], args, {
            env: { ...process.env, PATH: `${pg.binDir}:${process.env.PATH}`, PGHOST: pg.socketDir },
            allowFailure: true,
            timeoutMs: 10 * 60_000,
        });
    }

    async function restic(t: Target, args: string[]): Promise<string> {
        const r = await run("bash", [
            "-c",
            `set -a; . ${t.files.envFile}; set +a; restic ${t.name === "sftp" ? `-o sftp.command="ssh -i ${t.files.sshKey} -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${t.files.knownHosts} -p ${sftp.port} root@127.0.0.1 -s sftp"` : ""} "$@"`,
            "restic",
            ...args,
        ]);
        return r.stdout;
    }

    const tables = async () => pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", { db: "synapse" });

    it("a server with users, rooms, plain and encrypted messages, media and one-time keys", async function () {
        await start();
        for (const [u, pw] of Object.entries(users)) await registerWithSharedSecret(baseUrl, secrets.registrationSharedSecret, u, pw, false);
        const alice = await loginWithPassword(baseUrl, "alice", users.alice);
        roomId = (await alice.client.createRoom({ name: "backup drill", invite: ["@bob:matrix.test"] })).room_id;
        await alice.client.sendTextMessage(roomId, "a plain message before the backup");
        // An encrypted event as a client sends it (the server stores it as it is).
        await alice.client.sendEvent(
            roomId,
            "m.room.encrypted" as never,
            {
                algorithm: "m.megolm.v1.aes-sha2",
                ciphertext: "AwgAEnAcipher",
                sender_key: "senderkeybase64",
                session_id: "session",
                device_id: alice.deviceId,
            } as never,
        );
        const upload = await alice.client.uploadContent(mediaBytes, { type: "application/octet-stream", name: "drill.bin" });
        mediaUri = upload.content_uri;
        // One-time keys: their rows must never come back from a backup.
        const r = await fetch(`${baseUrl}/_matrix/client/v3/keys/upload`, {
            method: "POST",
            headers: { Authorization: `Bearer ${alice.accessToken}`, "content-type": "application/json" },
            body: JSON.stringify({ one_time_keys: { "curve25519:AAAAAQ": "b64key1", "curve25519:AAAAAg": "b64key2" } }),
        });
        assert.equal(r.status, 200, await r.text());
        alice.client.stopClient();
        assert.equal(await pg.psql("SELECT count(*) FROM e2e_one_time_keys_json", { db: "synapse" }), "2");
    });

    for (const name of ["sftp", "s3"]) {
        it(`backs up to the ${name} repository (initialised once, never again), pruned per day, with the metric`, async function () {
            const t = targets[name];
            const first = await command(t, "backupCommand", ["run"]);
            assert.equal(first.code, 0, first.stderr + first.stdout);
            assert.match(first.stdout, /initialising the restic repository/);
            assert.match(first.stdout, new RegExp(`backup of matrix\\.test \\(key ${key.keyId}\\) sent at`));
            const second = await command(t, "backupCommand", ["run"]);
            assert.equal(second.code, 0, second.stderr + second.stdout);
            assert.doesNotMatch(second.stdout, /initialising/);
            const snapshots = JSON.parse(await restic(t, ["snapshots", "--json"])) as { tags: string[]; hostname: string; paths: string[] }[];
            // Two runs on one day: retention keeps the last of each day (forget --keep-daily ... --prune ran after each).
            assert.equal(snapshots.length, 1);
            assert.deepEqual(snapshots[0].tags, ["pulumi-matrix"]);
            assert.equal(snapshots[0].hostname, "matrix.test");
            const metric = fs.readFileSync(t.files.metricsFile, "utf8");
            assert.match(metric, new RegExp(`^${BACKUP_METRIC} \\d{10}$`, "m"));
            assert.match(metric, new RegExp(`^# TYPE ${BACKUP_METRIC} gauge$`, "m"));
            const listed = await command(t, "backupCommand", ["snapshots"]);
            assert.equal(listed.code, 0, listed.stderr);
            assert.match(listed.stdout, /matrix\.test +pulumi-matrix +\/matrix-backup\.tar/);
            const status = await command(t, "backupCommand", ["status"]);
            assert.match(status.stdout, /^last good backup: \d{4}-\d\d-\d\dT/m);
            // The on-host copy only where asked for.
            assert.equal(fs.existsSync(path.join(t.settings.directory, "matrix-backup.tar")), t.settings.keepLocalCopy);
            assert.equal(fs.existsSync(path.join(t.settings.directory, "work")), false);
        });
    }

    it("the archive holds the dump, the config and secrets, local media and a manifest, not the remote caches", async function () {
        const tar = path.join(targets.s3.settings.directory, "matrix-backup.tar");
        const list = (await run("tar", ["-tf", tar])).stdout.split("\n");
        for (const entry of [
            "manifest",
            "SHA256SUMS",
            "database.dump",
            "config/homeserver.yaml",
            "config/homeserver.signing.key",
            "config/secrets/users_own_secret",
        ])
            assert.ok(list.includes(entry), `${entry} in ${list.join(" ")}`);
        assert.ok(list.some((e) => e.startsWith("media/local_content/")));
        assert.ok(!list.some((e) => /remote_|url_cache/.test(e)));
        // The files the stack wrote (drift records) are listed, so a restore leaves them to the stack; the user's own is not.
        const managed = (await run("tar", ["-xOf", tar, "managed"])).stdout.split("\n");
        assert.ok(managed.includes("secrets/macaroon_secret_key") && managed.includes("homeserver.signing.key"), managed.join(" "));
        assert.ok(!managed.includes("secrets/users_own_secret"));
        const manifest = (await run("tar", ["-xOf", tar, "manifest"])).stdout;
        assert.match(manifest, /^server_name=matrix\.test$/m);
        assert.match(manifest, new RegExp(`^key_id=${key.keyId}$`, "m"));
        assert.match(manifest, /^synapse_version=1\.\d+\.\d+/m);
    });

    it("refuses a restore into a database that has tables, changing nothing", async function () {
        const before = await tables();
        const r = await command(targets.sftp, "restoreCommand", ["--snapshot", "latest"]);
        assert.equal(r.code, 3, r.stderr + r.stdout);
        assert.match(r.stderr, /refused, nothing was changed: the database synapse already has \d+ tables; a restore goes only into an empty database/);
        assert.equal(await tables(), before);
        assert.ok(synapse!.running());
    });

    it("after the database and the media are lost, refuses an archive of another key before anything changes", async function () {
        await synapse!.stop();
        await pg.runAsSuperuser("DROP DATABASE synapse;");
        fs.rmSync(settings.paths.mediaStorePath, { recursive: true, force: true });
        fs.rmSync(ownSecret);
        const r = await command(targets.sftp, "restoreCommand", ["--key-id", "a_Other"]);
        assert.equal(r.code, 3, r.stderr + r.stdout);
        assert.match(r.stderr, new RegExp(`the archive's signing key id is '${key.keyId}', this server's is 'a_Other'`));
        assert.equal(await pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'synapse'"), "0", "no database was created");
        assert.equal(fs.existsSync(settings.paths.mediaStorePath), false);
    });

    it("restores from the S3 repository: same key id, users log in, history and media come back, one-time keys do not", async function () {
        const r = await command(targets.s3, "restoreCommand", ["--snapshot", "latest", "--once"]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /database synapse restored/);
        assert.match(r.stdout, /put back .*secrets\/users_own_secret/);
        assert.doesNotMatch(r.stdout, /put back .*macaroon_secret_key/, "the stack's own files are left to the stack");
        assert.equal(fs.readFileSync(ownSecret, "utf8"), "kept-by-the-user\n");
        assert.equal(
            await pg.psql("SELECT pg_encoding_to_char(encoding) || '/' || datcollate || '/' || datctype FROM pg_database WHERE datname = 'synapse'"),
            "UTF8/C/C",
        );
        assert.equal(await pg.psql("SELECT count(*) FROM e2e_one_time_keys_json", { db: "synapse" }), "0");
        await start();
        const keys = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(keys.verify_keys), [`ed25519:${key.keyId}`]);
        const bob = await loginWithPassword(baseUrl, "bob", users.bob);
        const alice = await loginWithPassword(baseUrl, "alice", users.alice);
        const messages = (await (
            await fetch(`${baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, {
                headers: { Authorization: `Bearer ${alice.accessToken}` },
            })
        ).json()) as { chunk: { type: string; content: { body?: string; ciphertext?: string } }[] };
        assert.ok(messages.chunk.some((e) => e.type === "m.room.message" && e.content.body === "a plain message before the backup"));
        assert.ok(messages.chunk.some((e) => e.type === "m.room.encrypted" && e.content.ciphertext === "AwgAEnAcipher"));
        const [server, mediaId] = mediaUri.replace("mxc://", "").split("/");
        const media = await fetch(`${baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
            headers: { Authorization: `Bearer ${bob.accessToken}` },
        });
        assert.equal(media.status, 200);
        assert.ok(Buffer.from(await media.arrayBuffer()).equals(mediaBytes), "the media's bytes");
        alice.client.stopClient();
        bob.client.stopClient();
        // Done once: the deploy's step (--once) does nothing on a host that had its restore.
        const again = await command(targets.s3, "restoreCommand", ["--once"]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /already had a restore .*nothing to do/);
    });

    it("the deploy's restore step (restoreFrom) on a fresh host: from the SFTP repository into the database step's empty database", async function () {
        await synapse!.stop();
        await pg.runAsSuperuser("DROP DATABASE synapse;");
        // What the database step leaves on a fresh host: the role and an empty UTF8/C database.
        await pg.runAsSuperuser(createDatabaseSql({ database: "synapse", user: "synapse" }, secrets.databasePassword));
        fs.rmSync(settings.paths.mediaStorePath, { recursive: true, force: true });
        const t = targets.sftp;
        const step = restoreScript({ ...t.settings, restoreFrom: "latest" }, key.keyId, t.files);
        const env = { ...process.env, PATH: `${pg.binDir}:${process.env.PATH}`, PGHOST: pg.socketDir };
        const r = await run("bash", ["-s"], { input: step, env, allowFailure: true, timeoutMs: 10 * 60_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /restore of snapshot [0-9a-f]{64} done/);
        assert.equal(await pg.psql("SELECT count(*) FROM e2e_one_time_keys_json", { db: "synapse" }), "0");
        await start();
        const bob = await loginWithPassword(baseUrl, "bob", users.bob);
        const [server, mediaId] = mediaUri.replace("mxc://", "").split("/");
        const media = await fetch(`${baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
            headers: { Authorization: `Bearer ${bob.accessToken}` },
        });
        assert.ok(Buffer.from(await media.arrayBuffer()).equals(mediaBytes), "the media's bytes");
        bob.client.stopClient();
        // The step again (a later pulumi up with a changed script): the marker makes it do nothing, though the database has tables now.
        const again = await run("bash", ["-s"], { input: step, env, allowFailure: true });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /already had a restore/);
    });

    it("restic check passes on both repositories; a failure is recorded in the metric file beside the last success", async function () {
        for (const t of Object.values(targets)) {
            const r = await command(t, "backupCommand", ["check"]);
            assert.equal(r.code, 0, r.stderr + r.stdout);
            assert.match(fs.readFileSync(t.files.metricsFile, "utf8"), /^matrix_backup_last_check_success_timestamp_seconds \d+$/m);
        }
        const t = targets.sftp;
        const r = await command(t, "backupCommand", ["failed", "pulumi-matrix-backup.service"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /pulumi-matrix-backup\.service failed: the homeserver's backup is not up to date/);
        const metric = fs.readFileSync(t.files.metricsFile, "utf8");
        assert.match(metric, /^matrix_backup_last_failure_timestamp_seconds \d+$/m);
        assert.match(metric, new RegExp(`^${BACKUP_METRIC} \\d+$`, "m"));
    });
});
