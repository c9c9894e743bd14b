// Deploying again to a host that keeps everything (after `pulumi destroy`, or
// with a lost stack state): the signing-key guard and the admin password rule,
// with the secrets and admin scripts the component sends to a VM, run here for
// real against real Synapse and PostgreSQL.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapseOptions, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { synapseAdminScript, synapseSecretsScript } from "../../src/provision/synapse";
import { synapseRecords } from "../../src/provision/synapse/records";
import { DIGEST_KEY_FILE } from "../../src/render/drift";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { SigningKey, signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { loginWithPassword } from "../support/integration/client";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run } from "../support/integration/processes";
import { startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const newKey = (): SigningKey => signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
const seedOf = (k: SigningKey) => k.fileLine.trim().split(" ")[2];
const COMPONENT = 'SynapseHomeserver "redeploy"';

/** Every file under a directory with its content and mtime: "nothing changed" means this is equal before and after. */
function snapshot(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else out[p] = `${fs.statSync(p).mtimeMs} ${fs.readFileSync(p, "base64")}`;
        }
    };
    if (fs.existsSync(dir)) walk(dir);
    return out;
}

describe("deploying again to a host that keeps its data (destroy, then up)", function () {
    let pg: PgServer;
    let venv: string;
    let dir: string;
    let settings: SynapseSettings;
    let peers: SynapsePeers;
    let synapse: SynapseProcess | undefined;
    let baseUrl: string;
    const dbPassword = random();
    const keyA = newKey();
    const recordDirs: string[] = [];

    const secretsScript = (s: SynapseSettings, key: SigningKey) =>
        synapseSecretsScript(
            s,
            {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: key.fileLine,
                files: peers.database ? [pgpassSecretFile(peers.database, dbPassword)] : [],
            },
            COMPONENT,
        );

    function settingsIn(configDir: string, extra: Partial<SynapseOptions> = {}): SynapseSettings {
        recordDirs.push(synapseRecords({ ...settings.paths, configDir }).dir);
        return resolveSynapseSettings("test", { ...settingsOptions(), ...extra, paths: { ...settings.paths, configDir } });
    }
    let settingsOptions: () => SynapseOptions;

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("synapse-redeploy");
        const port = await freePort();
        const metricsPort = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        settingsOptions = () => ({
            serverName: "matrix.test",
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: port,
            metrics: { port: metricsPort },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
            // Failed logins are tested on purpose: Synapse's login rate limits would make them slow.
            extraConfig: { rc_login: Object.fromEntries(["address", "account", "failed_attempts"].map((k) => [k, { per_second: 1000, burst_count: 1000 }])) },
        });
        settings = resolveSynapseSettings("test", settingsOptions());
        recordDirs.push(synapseRecords(settings.paths).dir);
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        const f = synapseFiles(settings.paths);
        fs.mkdirSync(f.confD, { recursive: true });
        fs.mkdirSync(settings.paths.mediaStorePath, { recursive: true });
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", settings, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(settings));
    });

    after(async function () {
        await synapse?.stop();
        await pg?.stop();
        for (const d of recordDirs) fs.rmSync(d, { recursive: true, force: true });
    });

    async function start() {
        const f = synapseFiles(settings.paths);
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: settings.paths.dataDir });
    }

    async function publishedKeyIds(): Promise<string[]> {
        const body = (await (await fetch(`${baseUrl}/_matrix/key/v2/server`)).json()) as { verify_keys: Record<string, unknown> };
        return Object.keys(body.verify_keys);
    }

    describe("the signing key", function () {
        it("a fresh install passes the guard and records the key it wrote, root-only", async function () {
            const r = await run("bash", ["-s"], { input: secretsScript(settings, keyA) });
            assert.doesNotMatch(r.stdout + r.stderr, /replacing the signing key/);
            assert.equal(fs.readFileSync(synapseFiles(settings.paths).signingKey, "utf8"), keyA.fileLine);
            const rec = synapseRecords(settings.paths);
            assert.match(fs.readFileSync(rec.signingKey, "utf8"), new RegExp(`^${keyA.keyId} [0-9a-f]{64}\\n$`));
            assert.equal((fs.statSync(rec.signingKey).mode & 0o777).toString(8), "600");
            assert.equal((fs.statSync(rec.dir).mode & 0o777).toString(8), "700");
            // A second run with the same key changes nothing and passes.
            await run("bash", ["-s"], { input: secretsScript(settings, keyA) });
            await start();
            assert.deepEqual(await publishedKeyIds(), [`ed25519:${keyA.keyId}`]);
        });

        it("refuses a different key after a destroy: names the component and both key ids, prints no seed, changes nothing", async function () {
            const keyB = newKey();
            const before = snapshot(settings.paths.configDir);
            const r = await run("bash", ["-s"], { input: secretsScript(settings, keyB), allowFailure: true });
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, new RegExp(`^${COMPONENT}: this host already has a different signing key; nothing was changed\\.`));
            assert.ok(r.stderr.includes(`holds ed25519:${keyA.keyId} (pulumi-matrix wrote it for an earlier deployment)`), r.stderr);
            assert.ok(r.stderr.includes(`this deployment's key is ed25519:${keyB.keyId}`), r.stderr);
            assert.ok(r.stderr.includes(`sudo cat ${synapseFiles(settings.paths).signingKey} | pulumi config set --secret signingKey`), r.stderr);
            assert.ok(r.stderr.includes("pulumi config set allowSigningKeyReplacement true"), r.stderr);
            for (const k of [keyA, keyB]) assert.ok(!(r.stdout + r.stderr).includes(seedOf(k)), "a seed was printed");
            assert.deepEqual(snapshot(settings.paths.configDir), before);
        });

        it("with allowSigningKeyReplacement, replaces the key, keeps the old one in keys-replaced/, and Synapse publishes the new one", async function () {
            const keyC = newKey();
            const s = resolveSynapseSettings("test", { ...settingsOptions(), allowSigningKeyReplacement: true });
            const r = await run("bash", ["-s"], { input: secretsScript(s, keyC) });
            assert.match(
                r.stdout,
                new RegExp(`replacing the signing key ed25519:${keyA.keyId} \\(pulumi-matrix wrote it for an earlier deployment\\) with ed25519:${keyC.keyId}`),
            );
            for (const k of [keyA, keyC]) assert.ok(!(r.stdout + r.stderr).includes(seedOf(k)), "a seed was printed");
            const f = synapseFiles(s.paths);
            assert.equal(fs.readFileSync(f.signingKey, "utf8"), keyC.fileLine);
            const kept = fs.readdirSync(`${f.secretsDir}/keys-replaced`);
            assert.equal(kept.length, 1);
            assert.equal(fs.readFileSync(`${f.secretsDir}/keys-replaced/${kept[0]}`, "utf8"), keyA.fileLine);
            assert.match(fs.readFileSync(synapseRecords(s.paths).signingKey, "utf8"), new RegExp(`^${keyC.keyId} `));
            await synapse!.restart();
            assert.deepEqual(await publishedKeyIds(), [`ed25519:${keyC.keyId}`]);
        });
    });

    describe("the admin password", function () {
        const p1 = random();
        const p2 = random();

        const admin = async (password: string) => (await run("bash", ["-s"], { input: synapseAdminScript(settings, "admin", password) })).stdout;
        /** Whether the password logs in; waits out Synapse's login rate limit (several failed logins are tested on purpose). */
        const logsIn = async (password: string): Promise<boolean> => {
            for (let attempt = 0; attempt < 5; attempt++) {
                try {
                    (await loginWithPassword(baseUrl, "admin", password)).client.stopClient();
                    return true;
                } catch (e) {
                    const err = e as { errcode?: string; data?: { retry_after_ms?: number } };
                    if (err.errcode !== "M_LIMIT_EXCEEDED") return false;
                    await new Promise((r) => setTimeout(r, Math.min(err.data?.retry_after_ms ?? 1000, 10_000) + 100));
                }
            }
            throw new Error("login rate limited five times in a row");
        };

        it("creates the admin and records the password it set", async function () {
            assert.match(await admin(p1), /admin user @admin:matrix.test created/);
            const rec = synapseRecords(settings.paths).adminPassword;
            // A keyed digest (issue 19): HMAC-SHA256 with the host's own key, not the password's plain sha256.
            const key = fs.readFileSync(DIGEST_KEY_FILE, "utf8").trim();
            assert.equal(fs.readFileSync(rec, "utf8"), `@admin:matrix.test ${crypto.createHmac("sha256", key).update(p1).digest("hex")}\n`);
            assert.equal((fs.statSync(rec).mode & 0o777).toString(8), "600");
            assert.ok(await logsIn(p1));
        });

        it("after a destroy (a new adminPassword), sets the existing account's password to it: the output logs in", async function () {
            const out = await admin(p2);
            assert.match(out, /already existed with another password than this deployment's adminPassword; its password is now adminPassword/);
            assert.ok(!out.includes(p2));
            assert.ok(await logsIn(p2), "the new password logs in (no restart: the hash is read uncached)");
            assert.ok(!(await logsIn(p1)), "the old password no longer does");
        });

        it("with nothing recorded and an existing account, sets the password too", async function () {
            fs.rmSync(synapseRecords(settings.paths).adminPassword);
            const p3 = random();
            assert.match(await admin(p3), /its password is now adminPassword/);
            assert.ok(await logsIn(p3));
            assert.match(await admin(p2), /its password is now adminPassword/);
        });

        it("leaves a password the user changed in a client alone while the stack's password is the one it recorded", async function () {
            const changed = random();
            // The user changes it in a client: logged in, confirming with the current password.
            const session = await loginWithPassword(baseUrl, "admin", p2);
            session.client.stopClient();
            const r = await fetch(`${baseUrl}/_matrix/client/v3/account/password`, {
                method: "POST",
                headers: { "content-type": "application/json", authorization: `Bearer ${session.accessToken}` },
                body: JSON.stringify({
                    new_password: changed,
                    logout_devices: false,
                    auth: { type: "m.login.password", identifier: { type: "m.id.user", user: "admin" }, password: p2 },
                }),
            });
            assert.equal(r.status, 200, await r.text());
            assert.match(await admin(p2), /already exists with the password pulumi-matrix set; left unchanged/);
            assert.ok(await logsIn(changed));
            assert.ok(!(await logsIn(p2)));
        });
    });

    // Last: these run the secrets script for other config directories, and the file-set manifests in
    // /var/lib/pulumi-matrix are per host (one Synapse), so those runs prune the main directory's secrets.
    describe("a signing key the library did not write, on a fresh host", function () {
        it("refuses a different key the library did not write (Synapse may have used it)", async function () {
            const s = settingsIn(`${dir}/etc-foreign`);
            const f = synapseFiles(s.paths);
            fs.mkdirSync(s.paths.configDir, { recursive: true });
            const foreign = newKey();
            fs.writeFileSync(f.signingKey, foreign.fileLine.trimEnd()); // another layout of the file: no final newline
            const r = await run("bash", ["-s"], { input: secretsScript(s, newKey()), allowFailure: true });
            assert.notEqual(r.code, 0);
            assert.ok(r.stderr.includes(`holds ed25519:${foreign.keyId} (not written by pulumi-matrix; Synapse may have used it)`), r.stderr);
            assert.deepEqual(fs.readdirSync(s.paths.configDir), ["homeserver.signing.key"]);
            // The same key in another layout is the same key: no replacement, no refusal.
            await run("bash", ["-s"], { input: secretsScript(s, foreign) });
        });

        it("replaces the key the matrix.org package generated at install (no deployment used it) without being asked", async function () {
            const s = settingsIn(`${dir}/etc-package`);
            const f = synapseFiles(s.paths);
            const rec = synapseRecords(s.paths);
            fs.mkdirSync(s.paths.configDir, { recursive: true });
            const pkg = newKey();
            fs.writeFileSync(f.signingKey, pkg.fileLine);
            fs.mkdirSync(rec.dir, { recursive: true, mode: 0o700 });
            fs.writeFileSync(rec.packageSigningKey, `${pkg.keyId} ${crypto.createHash("sha256").update(pkg.fileLine).digest("hex")}\n`);
            const mine = newKey();
            const r = await run("bash", ["-s"], { input: secretsScript(s, mine) });
            assert.match(r.stdout, /the key the matrix.org package generated at install/);
            assert.equal(fs.readFileSync(f.signingKey, "utf8"), mine.fileLine);
            assert.equal(fs.readdirSync(`${f.secretsDir}/keys-replaced`).length, 1);
        });
    });
});
