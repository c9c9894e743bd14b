// Upgrades that can be undone, for real: the component's install script
// (pip method) runs in a throw-away Debian root (test/support/integration/aptRepo.ts,
// systemctl is its stand-in) with Synapse from PyPI (the previous release,
// then the pinned one, both installed from the hash-pinned requirements) on a
// real PostgreSQL on loopback. The two releases accept the same
// configuration and share a database schema, so the two failures are made
// on the host, and each is what the step would meet in the field:
// - a configuration the new release refuses: a conf.d fragment Synapse
//   refuses, written while the old release runs (it read its config when it
//   started, so it keeps running on it);
// - a new release that fails to start: the module its unit runs
//   (synapse.app.homeserver) is taken out of its virtualenv, so it dies on
//   start and never answers /health.
//   The two releases share a schema, so this is the "failure before the
//   database migrated" case (switch back); the case beyond the old release's
//   schema compatibility (restore or stop) cannot be reached with two
//   releases of one schema.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { OsInfo } from "../../src/model/host";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapseOptions, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
import { versionedVenv } from "../../src/provision/synapse/upgrade";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { Chroot, makeChroot, ROOT_SUITE } from "../support/integration/aptRepo";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { run, RunResult } from "../support/integration/processes";
import { clientApi, roomTexts, sendText, serverVersion } from "../support/integration/roomHistory";
import { registerWithSharedSecret } from "../support/integration/synapse";

const OLD = "1.163.1";
const NEW = "1.163.2";
const COMPONENT = 'SynapseHomeserver "upgrade"';
const OS: OsInfo = { id: "debian", versionId: "12", codename: ROOT_SUITE, prettyName: "Debian GNU/Linux 12 (bookworm)", architecture: "amd64" };
const VENV = "/opt/venvs/matrix-synapse";
const random = () => crypto.randomBytes(24).toString("hex");
/** pip's download cache, kept between runs (the root is thrown away): wheels of both releases, keyed by their hashes. */
const PIP_CACHE = path.join(process.env.PULUMI_MATRIX_CACHE_DIR ?? path.join(os.homedir(), ".cache", "pulumi-matrix"), "upgrade-pip");

describe("upgrades that can be undone: 1.163.1 -> 1.163.2 from PyPI on PostgreSQL (in a throw-away Debian root)", function () {
    let root: Chroot;
    let pg: PgServer;
    let port: number;
    let peers: SynapsePeers;
    let baseUrl: string;
    const dbPassword = random();
    const registrationSharedSecret = random();
    const signingKey = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const alicePassword = random();
    let aliceToken: string;
    let roomId: string;
    const messages: string[] = [];

    const settings = (version: string, extra: Partial<SynapseOptions> = {}): SynapseSettings =>
        resolveSynapseSettings(COMPONENT, {
            serverName: "matrix.test",
            publicBaseUrl: `${baseUrl}/`,
            version,
            httpPort: port,
            metrics: { enabled: false },
            ...extra,
        });
    const pipEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("PIP_") && k !== "PIP_FIND_LINKS")) as Record<string, string>;
    const install = async (s: SynapseSettings) => {
        const r = await root.script(synapseInstallScript(s, OS), { allowFailure: true, timeoutMs: 1_500_000, env: pipEnv });
        if (process.env.PULUMI_MATRIX_VERBOSE === "1") process.stderr.write(`--- install ${s.version} exited ${r.code}\n${r.stdout}${r.stderr}`);
        return r;
    };
    const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
    const inRoot = async (cmd: string) => (await root.exec(["sh", "-c", cmd])).stdout.trim();
    const version = () => serverVersion(baseUrl);
    const api = (method: string, p: string, body?: unknown) => clientApi(baseUrl, aliceToken, method, p, body);
    const send = async (text: string) => {
        await sendText(baseUrl, aliceToken, roomId, text);
        messages.push(text);
    };
    /** A fresh login (the password still works) reads the whole history. */
    const history = () => roomTexts(baseUrl, roomId, "alice", alicePassword);
    const link = () => inRoot(`readlink ${VENV}`);
    const badFragment = () => root.path(`${synapseFiles(settings(OLD).paths).confD.slice(1)}/zz-refused.yaml`);

    before(async function () {
        this.timeout(1_800_000);
        [root, pg] = await Promise.all([makeChroot(), startPostgres()]);
        fs.copyFileSync("/etc/resolv.conf", root.path("etc/resolv.conf"));
        fs.copyFileSync("/etc/ssl/certs/ca-certificates.crt", root.path("etc/ssl/certs/ca-certificates.crt"));
        if (fs.existsSync(PIP_CACHE)) {
            fs.mkdirSync(root.path("root/.cache"), { recursive: true });
            await run("cp", ["-a", PIP_CACHE, root.path("root/.cache/pip")]);
        }
        port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };

        // The previous release, running, with a user and a room's history.
        const s = settings(OLD);
        ok(await install(s), `the install of ${OLD}`);
        const secrets = {
            macaroonSecretKey: random(),
            formSecret: random(),
            registrationSharedSecret,
            signingKey: signingKey.fileLine,
            files: [pgpassSecretFile(peers.database!, dbPassword)],
        };
        ok(await root.script(synapseSecretsScript(s, secrets, COMPONENT)), "the secrets script");
        const r = await root.script(synapseConfigScript(s, peers, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
        ok(r, `the config script (unit log:\n${root.unitLog("matrix-synapse.service")})`);
        assert.equal(await version(), OLD);
        aliceToken = (await registerWithSharedSecret(baseUrl, registrationSharedSecret, "alice", alicePassword, false)).access_token;
        roomId = (await api("POST", "/createRoom", { name: "before the upgrade" })).room_id as string;
        for (let i = 0; i < 5; i++) await send(`message ${i} under ${OLD}`);
    });

    after(async function () {
        this.timeout(300_000);
        if (root && fs.existsSync(root.path("root/.cache/pip"))) {
            fs.rmSync(PIP_CACHE, { recursive: true, force: true });
            fs.mkdirSync(path.dirname(PIP_CACHE), { recursive: true });
            await run("cp", ["-a", root.path("root/.cache/pip"), PIP_CACHE]).catch(() => undefined);
        }
        await root?.stopAll();
        await pg?.stop();
    });

    it("the release runs from a versioned virtualenv behind the symlink", async function () {
        assert.equal(await link(), `matrix-synapse-${OLD}`);
        assert.equal(await inRoot(`cd / && ${VENV}/bin/python -c 'import synapse; print(synapse.__version__)'`), OLD);
    });

    it("a host of the older layout (the virtualenv a directory) moves it behind the symlink, keeping the running release", async function () {
        // The layout before this change, as a host deployed then has it.
        await inRoot(`rm ${VENV} && mv ${VENV}-${OLD} ${VENV}`);
        const r = await install(settings(OLD));
        ok(r, "the install script");
        assert.match(r.stdout, new RegExp(`moved the virtualenv ${VENV} to ${VENV}-${OLD.replace(/\./g, "\\.")}`));
        assert.equal(await link(), `matrix-synapse-${OLD}`);
        assert.equal(await version(), OLD);
        // The process that was running still runs (its files are the same, renamed).
        assert.deepEqual(await history(), messages);
    });

    it("a configuration the new release refuses: nothing switches, the old release keeps running", async function () {
        // Synapse's own check refuses it (max_upload_size must be a size); the running process read its config before.
        fs.writeFileSync(badFragment(), "max_upload_size: lots\n", { mode: 0o640 });
        await inRoot(`chgrp ${settings(OLD).paths.user} /${path.relative(root.path("/"), badFragment())}`);
        try {
            const r = await install(settings(NEW));
            assert.notEqual(r.code, 0, r.stdout);
            assert.match(
                r.stderr,
                new RegExp(
                    `Synapse ${NEW.replace(/\./g, "\\.")} refuses the current configuration \\(above\\): nothing was switched, Synapse ${OLD.replace(/\./g, "\\.")} keeps running`,
                ),
            );
            assert.match(r.stderr, /max_upload_size/);
            assert.equal(await link(), `matrix-synapse-${OLD}`);
            assert.equal(await version(), OLD);
            assert.ok(fs.existsSync(root.path(`${versionedVenv(settings(NEW)).slice(1)}/.pulumi-matrix-complete`)), "the new release waits beside it");
        } finally {
            fs.rmSync(badFragment(), { force: true });
        }
    });

    it("a new release that fails to start: switched back, the old release runs with its data", async function () {
        // Without the module its unit runs (python -m synapse.app.homeserver) the new release dies on start; the config
        // check does not import it. (A module the config imports, such as synapse.rest.client.sync, is caught by the check.)
        const next = versionedVenv(settings(NEW));
        const module = (await inRoot(`ls -d ${next}/lib/python3*/site-packages/synapse/app/homeserver.py`)).trim();
        assert.ok(module.endsWith("homeserver.py"), module);
        await inRoot(`mv ${module} ${module}.removed-by-test`);
        try {
            const r = await install(settings(NEW));
            assert.notEqual(r.code, 0, r.stdout);
            assert.match(r.stdout, new RegExp(`switched ${VENV} to ${NEW.replace(/\./g, "\\.")}`));
            assert.match(r.stderr, /did not answer \/health/);
            assert.match(r.stderr, new RegExp(`the database was not migrated .*: switching back to Synapse ${OLD.replace(/\./g, "\\.")}`));
            assert.match(r.stderr, new RegExp(`Synapse ${OLD.replace(/\./g, "\\.")} runs again`));
            assert.equal(await link(), `matrix-synapse-${OLD}`);
            assert.equal(await version(), OLD);
            assert.deepEqual(await history(), messages);
            await send(`message after the failed upgrade, under ${OLD}`);
        } finally {
            await inRoot(`mv ${module}.removed-by-test ${module}`);
        }
    });

    it("the upgrade with data: users and history kept, the new release serves, the old one stays beside it", async function () {
        const r = await install(settings(NEW));
        ok(r, "the upgrade");
        assert.match(r.stdout, new RegExp(`Synapse ${NEW.replace(/\./g, "\\.")} accepts the current configuration`));
        assert.match(r.stdout, /no backup before the upgrade \(upgradeBackup is off\)/);
        assert.match(r.stdout, new RegExp(`Synapse upgraded from ${OLD.replace(/\./g, "\\.")} to ${NEW.replace(/\./g, "\\.")}`));
        assert.equal(await link(), `matrix-synapse-${NEW}`);
        assert.equal(await version(), NEW);
        assert.deepEqual(await history(), messages);
        await send(`message under ${NEW}`);
        assert.deepEqual(await history(), messages);
        assert.ok(fs.existsSync(root.path(`${VENV.slice(1)}-${OLD}/bin/python`)), "the previous release is kept for a switch back");
        // The config step after it has nothing to restart.
        const c = await root.script(synapseConfigScript(settings(NEW), peers, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
        ok(c, "the config script");
        assert.doesNotMatch(c.stdout, /restarting matrix-synapse\.service/);
    });

    it("a second run changes nothing; a lower version is refused before anything changes", async function () {
        const again = await install(settings(NEW));
        ok(again, "the second run");
        assert.equal(again.stdout, "");
        const down = await install(settings(OLD));
        assert.notEqual(down.code, 0);
        assert.match(down.stderr, new RegExp(`Synapse ${NEW.replace(/\./g, "\\.")} is installed; refusing to downgrade to ${OLD.replace(/\./g, "\\.")}`));
        assert.equal(await link(), `matrix-synapse-${NEW}`);
        assert.equal(await version(), NEW);
    });
});
