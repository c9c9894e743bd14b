// Moving a server to a new VM (README: "Moving to a new VM"), as the stack's
// steps do it with `standby`, against the real programs: two hosts side by
// side (each its own PostgreSQL cluster, Synapse directories and backup
// layout), one SFTP repository (OpenSSH's sftp-server), Synapse from PyPI,
// restic from Debian. The scripts are the ones SynapseBackup runs
// (restoreScript, finalBackupScript) and the commands it installs.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { BackupFiles, BackupSettings, resolveBackupSettings } from "../../src/model/backup";
import { alertRoomPasswordFile } from "../../src/model/monitoring";
import { PostgresLocalSettings, resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapseSettings } from "../../src/model/synapse";
import { finalBackupScript, restoreScript } from "../../src/provision/backup";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { STATE_DIR } from "../../src/render/drift";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { type SftpServer, startSftpServer, writeBackupHost } from "../support/integration/backupTargets";
import { freePort, isListening } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, type RunOptions, type RunResult } from "../support/integration/processes";
import { clientApi, downloadMedia, passwordLogin, roomTexts, sendText, uploadMedia } from "../support/integration/roomHistory";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");

/**
 * Runs a program as on the VM whose files are under `root`: with the
 * library's state directory (file sets, drift records) its own, mounted
 * over STATE_DIR in a mount namespace of the run's own. Two VMs' steps
 * then never see each other's records, as on two machines.
 */
function asVm(root: string, command: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const mountThenRun = 'mkdir -p "$1" && mount --bind "$0" "$1" && shift && exec "$@"';
    return run("unshare", ["-m", "--propagation", "private", "sh", "-c", mountThenRun, path.join(root, "state"), STATE_DIR, command, ...args], opts);
}

/** One VM of the move: its PostgreSQL, its Synapse's settings and its backup layout. */
interface Vm {
    name: string;
    pg: PgServer;
    pgSettings: PostgresLocalSettings;
    synapse: SynapseSettings;
    baseUrl: string;
    files: BackupFiles;
    /** The backup's settings as the stack resolves them, in standby or not. */
    backup(standby: boolean): BackupSettings;
    process?: SynapseProcess;
}

describe("moving to a new VM: a standby restored from the repository, the old server's final backup, the switch", function () {
    let venv: string;
    let sftp: SftpServer;
    let dir: string;
    const vms: Vm[] = [];
    let old: Vm;
    let next: Vm;
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const users = { alice: random(), bob: random() };
    const media = [crypto.randomBytes(40_000), crypto.randomBytes(30_000)];
    const mediaUris: string[] = [];
    let roomId: string;
    let aliceToken: string;

    /** A VM of the same server: the same server_name and signing key; its own secrets otherwise, as a new stack makes them. */
    async function vm(name: string, pg: PgServer, password: string): Promise<Vm> {
        const root = path.join(dir, name);
        const port = await freePort();
        const baseUrl = `http://127.0.0.1:${port}`;
        const dbPassword = random();
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        const synapse = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: port,
            metrics: { port: await freePort() },
            paths: { configDir: `${root}/etc`, dataDir: `${root}/data`, venvDir: venv, user: "root" },
        });
        const peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        const f = synapseFiles(synapse.paths);
        fs.mkdirSync(f.confD, { recursive: true });
        fs.mkdirSync(synapse.paths.mediaStorePath, { recursive: true });
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", synapse, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(synapse));
        fs.mkdirSync(path.join(root, "state"), { recursive: true });
        await asVm(root, "bash", ["-s"], {
            input: synapseSecretsScript(synapse, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database, dbPassword)],
            }),
        });
        const backup = (standby: boolean) =>
            resolveBackupSettings(
                `SynapseBackup "${name}"`,
                {
                    repository: `sftp://${sftp.user}@127.0.0.1:${sftp.port}/${sftp.dir}/repo`,
                    sftpKnownHosts: sftp.knownHosts,
                    restoreFrom: "latest",
                    directory: `${root}/archive`,
                },
                {
                    synapse: { ...synapse, standby },
                    database: pgSettings,
                    credentials: { password: true, sftpPrivateKey: true, s3AccessKeyId: false, s3SecretAccessKey: false },
                },
            );
        const files = writeBackupHost(root, backup(false), { password, sftp });
        const v: Vm = { name, pg, pgSettings, synapse, baseUrl, files, backup };
        vms.push(v);
        return v;
    }

    async function start(v: Vm): Promise<void> {
        const f = synapseFiles(v.synapse.paths);
        v.process = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `${v.baseUrl}/health`,
            cwd: v.synapse.paths.dataDir,
            name: v.name,
        });
    }

    /** A script or a command as root on the VM: pg_dump and psql of its cluster on PATH, its socket. */
    function onVm(v: Vm, script: string | { command: keyof BackupFiles; args: string[] }): Promise<RunResult> {
        const opts = {
            env: { ...process.env, PATH: `${v.pg.binDir}:${process.env.PATH}`, PGHOST: v.pg.socketDir },
            allowFailure: true,
            timeoutMs: 10 * 60_000,
        };
        const root = path.join(dir, v.name);
        return typeof script === "string" ? asVm(root, "bash", ["-s"], { ...opts, input: script }) : asVm(root, v.files[script.command], script.args, opts);
    }

    const marker = (v: Vm) => fs.readFileSync(v.files.restoredMarker, "utf8");
    const database = (v: Vm) => v.pgSettings.database;

    const login = (v: Vm, user: keyof typeof users): Promise<string> => passwordLogin(v.baseUrl, user, users[user]);

    before(async function () {
        let pgOld: PgServer, pgNew: PgServer;
        [pgOld, pgNew, venv, sftp] = await Promise.all([startPostgres(), startPostgres(), ensureSynapseVenv(), startSftpServer()]);
        dir = makeTempDir("move");
        const password = random();
        old = await vm("old", pgOld, password);
        next = await vm("new", pgNew, password);
    });

    after(async function () {
        for (const v of vms) await v.process?.stop();
        await Promise.all([...vms.map((v) => v.pg.stop()), sftp?.stop()]);
    });

    it("the old VM serves users, a room, messages and media, and has its nightly backup", async function () {
        await start(old);
        const secret = fs.readFileSync(synapseFiles(old.synapse.paths).registrationSharedSecret, "utf8").trim();
        for (const [u, pw] of Object.entries(users)) await registerWithSharedSecret(old.baseUrl, secret, u, pw, false);
        aliceToken = await login(old, "alice");
        roomId = (await clientApi(old.baseUrl, aliceToken, "POST", "/createRoom", { name: "the move", invite: ["@bob:matrix.test"] })).room_id as string;
        await clientApi(old.baseUrl, await login(old, "bob"), "POST", `/join/${encodeURIComponent(roomId)}`, {});
        for (let i = 1; i <= 3; i++) await sendText(old.baseUrl, aliceToken, roomId, `before the nightly backup ${i}`);
        mediaUris.push(await uploadMedia(old.baseUrl, aliceToken, media[0]));
        // A secret the stack does not write: the alert room's bot's password, made on the host.
        fs.writeFileSync(alertRoomPasswordFile(old.synapse.paths), "the bot's password\n", { mode: 0o600 });
        const r = await onVm(old, { command: "backupCommand", args: ["run"] });
        assert.equal(r.code, 0, r.stderr + r.stdout);
    });

    it("the new VM in standby: the newest snapshot restored, Synapse not started; the step again changes nothing", async function () {
        const step = restoreScript(next.backup(true), key.keyId, next.files);
        assert.match(step, /--once --standby --no-start/);
        const r = await onVm(next, step);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /restore of snapshot [0-9a-f]{64} done/);
        assert.match(marker(next), /^standby=1$/m);
        assert.equal(await isListening(next.synapse.httpPort), false, "the step never starts Synapse");
        assert.equal(await next.pg.psql("SELECT count(*) FROM users", { db: database(next) }), "2");
        const again = await onVm(next, step);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /holds the standby copy of snapshot [0-9a-f]{64} \(latest\); still a standby/);
        // A standby's final step (the stack in standby has one) backs up no copy over the live server's snapshots.
        const final = await onVm(next, finalBackupScript(next.backup(true), next.files));
        assert.equal(final.code, 0, final.stderr);
        assert.match(final.stdout, /holds a standby copy restored from the repository: it takes no final backup/);
    });

    it("a standby copy Synapse wrote to is not replaced: the step refuses, and a copy made again by hand as it says is", async function () {
        // Synapse started on the copy by mistake: it takes a message.
        await start(next);
        await sendText(next.baseUrl, await login(next, "alice"), roomId, "written on the standby by mistake");
        await next.process!.stop();
        // The old server goes on, and a newer snapshot comes.
        await sendText(old.baseUrl, aliceToken, roomId, "after the nightly backup");
        assert.equal((await onVm(old, { command: "backupCommand", args: ["run"] })).code, 0);
        const r = await onVm(next, restoreScript(next.backup(false), key.keyId, next.files));
        assert.equal(r.code, 3, r.stderr + r.stdout);
        assert.match(
            r.stderr,
            /refused, nothing was changed: the standby copy of snapshot [0-9a-f]{64} was written to since its restore \(Synapse ran on it\)/,
        );
        assert.match(marker(next), /^standby=1$/m);
        assert.equal(await next.pg.psql("SELECT count(*) FROM event_json WHERE json LIKE '%by mistake%'", { db: database(next) }), "1");
        // By hand, with the short id `pulumi-matrix-backup snapshots` lists (the newest).
        const listed = await onVm(next, { command: "backupCommand", args: ["snapshots"] });
        const shortIds = [...listed.stdout.matchAll(/^([0-9a-f]{8}) /gm)].map((m) => m[1]);
        assert.ok(shortIds.length > 0, listed.stdout + listed.stderr);
        const again = await onVm(next, { command: "restoreCommand", args: ["--snapshot", shortIds.at(-1)!, "--standby", "--replace-database", "--no-start"] });
        assert.equal(again.code, 0, again.stderr + again.stdout);
        assert.match(again.stdout, /renamed synapse_replaced_\d+ \(kept/);
        assert.match(marker(next), new RegExp(`^snapshot_id=${shortIds.at(-1)}[0-9a-f]{56}$`, "m"));
        assert.match(marker(next), /^standby=1$/m);
    });

    it("the switch: the old server stops and takes its final backup (once), the standby takes that one and starts; the downtime", async function () {
        await sendText(old.baseUrl, aliceToken, roomId, "just before the switch");
        mediaUris.push(await uploadMedia(old.baseUrl, aliceToken, media[1]));
        const t0 = Date.now();
        // The old stack with standby: its config step stops Synapse, then the final step.
        await old.process!.stop();
        const final = await onVm(old, finalBackupScript(old.backup(true), old.files));
        assert.equal(final.code, 0, final.stderr + final.stdout);
        const finalId = /final backup of matrix\.test: snapshot ([0-9a-f]{64})/.exec(final.stdout)?.[1];
        assert.ok(finalId, final.stdout);
        const t1 = Date.now();
        // The new stack without standby: its restore step takes the final snapshot, then its config step starts Synapse.
        const restore = await onVm(next, restoreScript(next.backup(false), key.keyId, next.files));
        assert.equal(restore.code, 0, restore.stderr + restore.stdout);
        assert.match(restore.stdout, new RegExp(`replacing the standby copy of snapshot [0-9a-f]{64} with snapshot ${finalId}`));
        assert.match(restore.stdout, /the standby copy of snapshot [0-9a-f]{64} was dropped/);
        const t2 = Date.now();
        await start(next);
        const t3 = Date.now();
        const s = (ms: number) => (ms / 1000).toFixed(1);
        console.log(
            `      [move] downtime ${s(t3 - t0)} s: final backup ${s(t1 - t0)} s, restore ${s(t2 - t1)} s, Synapse's start ${s(t3 - t2)} s (${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, ${new Date().toISOString().slice(0, 10)})`,
        );

        // The same server: key id, users, the whole history without the mistaken message, every media file.
        const keys = (await (await fetch(`${next.baseUrl}/_matrix/key/v2/server`)).json()) as { verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(keys.verify_keys), [`ed25519:${key.keyId}`]);
        assert.deepEqual(await roomTexts(next.baseUrl, roomId, "bob", users.bob), [
            "before the nightly backup 1",
            "before the nightly backup 2",
            "before the nightly backup 3",
            "after the nightly backup",
            "just before the switch",
        ]);
        const bob = await login(next, "bob");
        for (const [i, uri] of mediaUris.entries()) assert.ok((await downloadMedia(next.baseUrl, bob, uri)).equals(media[i]), `media ${i + 1}'s bytes`);
        assert.match(marker(next), new RegExp(`^snapshot_id=${finalId}$`, "m"));
        assert.match(marker(next), /^standby=0$/m);
        const botPassword = alertRoomPasswordFile(next.synapse.paths);
        assert.equal(fs.readFileSync(botPassword, "utf8"), "the bot's password\n", "the alert room's bot logs in on the new VM");
        assert.equal((fs.statSync(botPassword).mode & 0o777).toString(8), "600");

        // Both steps again (a later pulumi up): nothing to do.
        const finalAgain = await onVm(old, finalBackupScript(old.backup(true), old.files));
        assert.match(finalAgain.stdout, new RegExp(`the final backup was taken: snapshot_id=${finalId}`));
        const restoreAgain = await onVm(next, restoreScript(next.backup(false), key.keyId, next.files));
        assert.match(restoreAgain.stdout, /already had a restore .*nothing to do/);
    });
});
