// The alert room against the real programs: Synapse from PyPI with
// PostgreSQL, Debian's Alertmanager with the rendered config, and the
// relay's own program (the rendered text the component ships): `setup` as
// the deployment runs it (as root), `serve` as its unit runs it (a user of
// no privilege, its two tokens in a credentials directory as systemd's
// LoadCredential= hands them over). An alert fired in Alertmanager must
// arrive in the room as the bot's notice.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { MONITORING_FILES, MonitoringSettings, resolveMonitoringSettings } from "../../src/model/monitoring";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapseSettings } from "../../src/model/synapse";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { renderAlertmanagerConfig } from "../../src/render/monitoring";
import { ALERT_ROOM_PY, AlertRoomPaths, renderAlertRoomConfig } from "../../src/render/monitoringAlertRoom";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");

describe("the alert room: Alertmanager's alerts reach a Matrix room through the relay, as its bot", function () {
    let pg: PgServer;
    let synapse: SynapseProcess | undefined;
    let settings: SynapseSettings;
    let monitoring: MonitoringSettings;
    let dir: string;
    let baseUrl: string;
    let alice: string;
    let room: string;
    let paths: AlertRoomPaths;
    let program: string;
    let config: string;
    const daemons: SpawnedDaemon[] = [];
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret: random(), databasePassword: random() };
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

    async function api<T = Record<string, unknown>>(method: string, p: string, token: string, body?: unknown): Promise<{ status: number; json: T }> {
        const r = await fetch(baseUrl + p, {
            method,
            headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: r.status, json: (await r.json()) as T };
    }

    const setup = () => run("python3", [program, "setup", config], { cwd: "/" });
    const mode = (p: string) => {
        const st = fs.statSync(p);
        return `${(st.mode & 0o777).toString(8)} ${st.uid}:${st.gid}`;
    };

    before(async function () {
        let venv: string;
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("alert-room");
        fs.chmodSync(dir, 0o755);
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
        const peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
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
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: settings.paths.dataDir });
        alice = (await registerWithSharedSecret(baseUrl, secrets.registrationSharedSecret, "alice", random(), false)).access_token;
        room = (await api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", alice, { preset: "private_chat", name: "ops" })).json.room_id;

        monitoring = resolveMonitoringSettings("test", { alertmanagerPort: await freePort(), alertRoom: { room } }, { synapse: settings, host: 'Host "vm"' });
        // The relay on a free port: the fixed 9194 may be taken on this machine.
        monitoring = { ...monitoring, alertRoom: { ...monitoring.alertRoom!, port: await freePort() } };
        // The host's layout moved into the test's directory: the private directory as the server step makes it.
        const priv = path.join(dir, "private");
        fs.mkdirSync(priv, { mode: 0o750 });
        await run("chown", ["root:prometheus", priv]);
        paths = {
            alertRoomWebhookToken: path.join(priv, "webhook-token"),
            alertRoomAccessToken: path.join(priv, "access-token"),
        };
        program = path.join(dir, "alert-room.py");
        config = path.join(dir, "alert-room.json");
        fs.writeFileSync(program, ALERT_ROOM_PY, { mode: 0o755 });
        fs.writeFileSync(config, renderAlertRoomConfig(monitoring, paths));
    });

    after(async function () {
        for (const d of daemons.reverse()) await d.stop("SIGTERM", 10_000);
        await synapse?.stop();
        await pg?.stop();
    });

    it("setup registers the bot (not an admin), keeps its secrets in root-only files, and says to invite it to a private room", async function () {
        const r = await setup();
        assert.match(r.stdout, /registered the alert room's bot @pulumi-matrix-alerts:matrix\.test/);
        assert.match(r.stdout, /@pulumi-matrix-alerts:matrix\.test cannot join .* yet .*: invite it/);
        assert.match(r.stdout, /^credentials changed$/m);
        const gid = Number((await run("getent", ["group", "prometheus"])).stdout.split(":")[2]);
        assert.equal(mode(paths.alertRoomWebhookToken), `640 0:${gid}`);
        assert.equal(mode(paths.alertRoomAccessToken), "600 0:0");
        // The password among Synapse's secrets (the settings' path, inside this test's Synapse): backups carry it.
        assert.equal(monitoring.alertRoom!.passwordFile, path.join(dir, "etc", "secrets", "alert_room_bot_password"));
        assert.equal(mode(monitoring.alertRoom!.passwordFile), "600 0:0");
        const token = fs.readFileSync(paths.alertRoomAccessToken, "utf8").trim();
        assert.doesNotMatch(r.stdout + r.stderr, new RegExp(token));
        assert.equal((await api<{ user_id: string }>("GET", "/_matrix/client/v3/account/whoami", token)).json.user_id, "@pulumi-matrix-alerts:matrix.test");
        // Not an admin: the admin API refuses its token.
        assert.equal((await api("GET", "/_synapse/admin/v2/users/@alice:matrix.test", token)).status, 403);
    });

    it("a second setup keeps the tokens and changes nothing; once invited, the bot joins", async function () {
        const before = [paths.alertRoomWebhookToken, paths.alertRoomAccessToken].map((p) => fs.readFileSync(p, "utf8"));
        await api("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, alice, { user_id: "@pulumi-matrix-alerts:matrix.test" });
        const r = await setup();
        assert.doesNotMatch(r.stdout, /credentials changed|registered/);
        assert.match(r.stdout, /@pulumi-matrix-alerts:matrix\.test is in /);
        assert.deepEqual(
            [paths.alertRoomWebhookToken, paths.alertRoomAccessToken].map((p) => fs.readFileSync(p, "utf8")),
            before,
        );
    });

    it("an alert fired in Alertmanager arrives in the room as the bot's notice; a caller without Alertmanager's token is refused", async function () {
        // The credentials directory systemd makes for the unit: copies of the two tokens, readable by the service's user only.
        const creds = path.join(dir, "credentials");
        fs.mkdirSync(creds, { mode: 0o700 });
        fs.copyFileSync(paths.alertRoomWebhookToken, path.join(creds, "webhook-token"));
        fs.copyFileSync(paths.alertRoomAccessToken, path.join(creds, "access-token"));
        await run("chown", ["-R", "nobody:nogroup", creds]);
        const relayPort = monitoring.alertRoom!.port;
        daemons.push(
            spawnDaemon("python3", [program, "serve", config], {
                name: "alert-room relay",
                user: "nobody",
                cwd: "/",
                env: { PATH: process.env.PATH, CREDENTIALS_DIRECTORY: creds },
            }),
        );
        const relay = `http://127.0.0.1:${relayPort}`;
        for (let i = 0; i < 100 && !(await fetch(`${relay}/health`).catch(() => undefined))?.ok; i++) await sleep(200);
        assert.equal((await fetch(`${relay}/health`)).status, 200);
        const refused = await fetch(`${relay}/alerts`, {
            method: "POST",
            headers: { Authorization: "Bearer wrong" },
            body: JSON.stringify({ alerts: [{ labels: { alertname: "Forged" } }] }),
        });
        assert.equal(refused.status, 401);

        // Alertmanager with the rendered config; only the token's path is the test's.
        const amConfig = path.join(dir, "alertmanager.yml");
        fs.writeFileSync(amConfig, renderAlertmanagerConfig(monitoring).replace(MONITORING_FILES.alertRoomWebhookToken, paths.alertRoomWebhookToken));
        fs.chmodSync(amConfig, 0o644);
        const amData = path.join(dir, "alertmanager-data");
        fs.mkdirSync(amData);
        await run("chown", ["prometheus:prometheus", amData]);
        const am = `http://127.0.0.1:${monitoring.alertmanagerPort}`;
        daemons.push(
            spawnDaemon(
                "prometheus-alertmanager",
                [
                    `--config.file=${amConfig}`,
                    `--storage.path=${amData}`,
                    `--web.listen-address=127.0.0.1:${monitoring.alertmanagerPort}`,
                    "--cluster.listen-address=",
                ],
                { name: "alertmanager", user: "prometheus", cwd: dir, env: { PATH: process.env.PATH } },
            ),
        );
        for (let i = 0; i < 150 && !(await fetch(`${am}/-/ready`).catch(() => undefined))?.ok; i++) await sleep(200);
        const fired = await fetch(`${am}/api/v2/alerts`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify([{ labels: { alertname: "PmTestAlert", instance: "matrix.test" }, annotations: { summary: "the test fired it" } }]),
        });
        assert.equal(fired.status, 200, await fired.text());
        // The route waits group_wait (30 s) before the first notification.
        let notice: { sender: string; content: { msgtype: string; body: string; formatted_body?: string } } | undefined;
        for (let i = 0; i < 90 && !notice; i++) {
            await sleep(1000);
            const page = await api<{ chunk: { type: string; sender: string; content: { msgtype: string; body: string; formatted_body?: string } }[] }>(
                "GET",
                `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=20`,
                alice,
            );
            notice = page.json.chunk.find((e) => e.type === "m.room.message" && e.sender === "@pulumi-matrix-alerts:matrix.test");
        }
        assert.ok(notice, `no notice from the bot; relay log:\n${daemons[0].log().slice(-2000)}`);
        assert.equal(notice.content.msgtype, "m.notice");
        assert.equal(notice.content.body, "FIRING: PmTestAlert on matrix.test: the test fired it");
        assert.match(notice.content.formatted_body ?? "", /<b>FIRING<\/b>: PmTestAlert on <code>matrix\.test<\/code>/);
        // Nothing else reached the room: the forged call posted nothing.
        assert.doesNotMatch(JSON.stringify(notice), /Forged/);
        assert.doesNotMatch(daemons[0].log(), new RegExp(fs.readFileSync(paths.alertRoomAccessToken, "utf8").trim()));
    });
});
