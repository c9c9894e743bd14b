// Adopting a hand-installed Synapse that already runs on PostgreSQL, against
// the real programs: Synapse from PyPI in the Debian package's layout on a
// database of its own (its own role and password) in PostgreSQL from Debian,
// with users, a room with messages and media. Each of the two ways is run:
// `dump` (pg_dump of the old database once its unit stopped, restored into
// the stack's empty database; the old one left as it was) and `in-place`
// (the stack's database step takes over the database and its role). The
// scripts are the ones SynapseAdoption and PostgresDatabase run, with the
// host's paths under a temp dir; `systemctl` is a stand-in that stops the
// old server's real process (as in adopt.test.ts).

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { ADOPT_FILES, AdoptFiles, AdoptPostgresMode, resolveAdoptSettings } from "../../src/model/adopt";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { ADOPTED_KEY_PREFIX, adoptPreflightScript, adoptScript } from "../../src/provision/adopt";
import { postgresDatabaseScript } from "../../src/provision/postgres";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { SigningKey, signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { renderYaml } from "../../src/render/yaml";
import { loginWithPassword } from "../support/integration/client";
import { freePort } from "../support/integration/net";
import { type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, type RunResult } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const newKey = () => signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
/** What a database holds, as one line: users, events and their ids, media (read as the superuser). */
const CONTENT_SQL =
    "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM events) || ' ' || (SELECT md5(string_agg(event_id, ',' ORDER BY event_id)) FROM events) || ' ' || (SELECT count(*) FROM local_media_repository)";

/** A Synapse in the package's layout on a PostgreSQL database of its own, its unit a stand-in for systemctl. */
class OldServer {
    readonly dir: string;
    readonly conf: string;
    readonly data: string;
    readonly key: SigningKey = newKey();
    readonly secret = random();
    readonly users = { alice: random(), bob: random() };
    readonly mediaBytes = crypto.randomBytes(30_000);
    readonly files: AdoptFiles;
    readonly env: NodeJS.ProcessEnv;
    process?: SynapseProcess;
    baseUrl = "";
    port = 0;
    metricsPort = 0;
    roomId = "";
    mediaUri = "";
    mediaFile = "";
    mediaMtime = 0;

    constructor(
        readonly name: string,
        readonly pg: PgServer,
        readonly db: { database: string; user: string; password: string },
    ) {
        this.dir = makeTempDir(`adopt-pg-${name}`);
        this.conf = `${this.dir}/etc/matrix-synapse`;
        this.data = `${this.dir}/var/lib/matrix-synapse`;
        this.files = Object.fromEntries(Object.entries(ADOPT_FILES).map(([k, p]) => [k, path.join(this.dir, p)])) as AdoptFiles;
        fs.mkdirSync(path.dirname(this.files.stateDir), { recursive: true });
        const bin = `${this.dir}/bin`;
        fs.mkdirSync(bin);
        fs.writeFileSync(`${this.dir}/unit.enabled`, "");
        const psql = `${pg.binDir}/psql -X -At -h ${pg.socketDir} -p ${pg.port} -U postgres -d ${db.database}`;
        fs.writeFileSync(
            `${bin}/systemctl`,
            [
                "#!/bin/bash",
                `printf '%s\\n' "$*" >>${this.dir}/systemctl.log`,
                'args=(); for a in "$@"; do case "$a" in -q) ;; *) args+=("$a") ;; esac; done',
                'case "${args[0]}" in',
                `  is-active) kill -0 "$(cat ${this.dir}/unit.pid 2>/dev/null)" 2>/dev/null ;;`,
                // What the old database holds when its server stopped: the dump must carry all of it, and leave it so.
                `  stop) pid=$(cat ${this.dir}/unit.pid); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; ${psql} -c "${CONTENT_SQL}" >${this.dir}/db.at-stop ;;`,
                `  is-enabled) [ -e ${this.dir}/unit.enabled ] ;;`,
                `  disable) rm -f ${this.dir}/unit.enabled ;;`,
                "  *) exit 1 ;;",
                "esac",
                "",
            ].join("\n"),
            { mode: 0o755 },
        );
        this.env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    }

    /** Its database (UTF8, the given collation, from template0, owned by its role with its own password), its config, then it runs with users, a room, messages and media. */
    async start(venv: string, collation = "C"): Promise<void> {
        await this.pg.runAsSuperuser(
            [
                `CREATE ROLE ${this.db.user} LOGIN PASSWORD '${this.db.password}';`,
                `CREATE DATABASE ${this.db.database} OWNER ${this.db.user} ENCODING 'UTF8' LC_COLLATE '${collation}' LC_CTYPE '${collation}' TEMPLATE template0;`,
            ].join("\n"),
        );
        this.port = await freePort();
        this.metricsPort = await freePort();
        this.baseUrl = `http://127.0.0.1:${this.port}`;
        fs.mkdirSync(`${this.conf}/conf.d`, { recursive: true });
        fs.mkdirSync(`${this.data}/media`, { recursive: true });
        fs.writeFileSync(`${this.conf}/homeserver.signing.key`, this.key.fileLine, { mode: 0o600 });
        fs.writeFileSync(`${this.conf}/conf.d/server_name.yaml`, renderYaml({ server_name: "matrix.test" }));
        fs.writeFileSync(`${this.conf}/conf.d/report_stats.yaml`, renderYaml({ report_stats: false }));
        fs.writeFileSync(
            `${this.conf}/homeserver.yaml`,
            renderYaml({
                pid_file: `${this.data}/homeserver.pid`,
                listeners: [
                    {
                        port: this.port,
                        bind_addresses: ["127.0.0.1"],
                        type: "http",
                        tls: false,
                        x_forwarded: true,
                        resources: [{ names: ["client", "federation"], compress: false }],
                    },
                ],
                // As the seed guides write it: the role's password in the config, TCP on localhost.
                database: {
                    name: "psycopg2",
                    args: {
                        user: this.db.user,
                        password: this.db.password,
                        database: this.db.database,
                        host: "localhost",
                        port: this.pg.port,
                        cp_min: 1,
                        cp_max: 5,
                    },
                },
                media_store_path: `${this.data}/media`,
                signing_key_path: `${this.conf}/homeserver.signing.key`,
                trusted_key_servers: [],
                registration_shared_secret: this.secret,
                ...(collation === "C" ? {} : { database_allow_unsafe_locale: true }),
            }),
        );
        this.process = await startSynapse({
            venv,
            configPaths: [`${this.conf}/homeserver.yaml`, `${this.conf}/conf.d/`],
            healthUrl: `${this.baseUrl}/health`,
            cwd: this.data,
            name: `old-${this.name}`,
        });
        fs.writeFileSync(`${this.dir}/unit.pid`, String(this.process.pid));
        for (const [u, pw] of Object.entries(this.users)) await registerWithSharedSecret(this.baseUrl, this.secret, u, pw, false);
        const alice = await loginWithPassword(this.baseUrl, "alice", this.users.alice);
        this.roomId = (await alice.client.createRoom({ name: `adopted ${this.name}`, invite: ["@bob:matrix.test"] })).room_id;
        for (let i = 0; i < 5; i++) await alice.client.sendTextMessage(this.roomId, `message ${i} before the adoption`);
        this.mediaUri = (await alice.client.uploadContent(this.mediaBytes, { type: "application/octet-stream", name: "old.bin" })).content_uri;
        alice.client.stopClient();
        const mediaId = this.mediaUri.split("/").pop()!;
        this.mediaFile = `${this.data}/media/local_content/${mediaId.slice(0, 2)}/${mediaId.slice(2, 4)}/${mediaId.slice(4)}`;
        this.mediaMtime = fs.statSync(this.mediaFile).mtimeMs;
    }

    /** The stack's Synapse for this server: the package's layout under its dir, its port. */
    synapseSettings(venv: string): SynapseSettings {
        return resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: this.baseUrl + "/",
            installMethod: "pip",
            httpPort: this.port,
            metrics: { port: this.metricsPort },
            paths: { configDir: this.conf, dataDir: this.data, mediaStorePath: `${this.data}/media`, venvDir: venv, user: "root" },
        });
    }

    /** A script as the secret step runs it: fd 4 is the command's stdout. */
    runScript(text: string): Promise<RunResult> {
        return run("bash", ["-c", "exec 4>&1; exec bash -s"], { input: text, env: this.env, allowFailure: true, timeoutMs: 15 * 60_000 });
    }

    content(database = this.db.database): Promise<string> {
        return this.pg.psql(CONTENT_SQL, { db: database });
    }
}

/** The stack's Synapse started on its database: the adopted key is published, old users log in, history and media are there. */
async function checkAdopted(old: OldServer, venv: string, settings: SynapseSettings, peers: SynapsePeers): Promise<SynapseProcess> {
    const f = synapseFiles(settings.paths);
    fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", settings, peers));
    fs.writeFileSync(f.logConfig, renderLogConfig(settings));
    const synapse = await startSynapse({
        venv,
        configPaths: [f.homeserverYaml, f.confD + "/"],
        healthUrl: `${old.baseUrl}/health`,
        cwd: old.data,
        name: `adopted-${old.name}`,
    });
    const keys = (await (await fetch(`${old.baseUrl}/_matrix/key/v2/server`)).json()) as { server_name: string; verify_keys: Record<string, unknown> };
    assert.equal(keys.server_name, "matrix.test");
    assert.deepEqual(Object.keys(keys.verify_keys), [`ed25519:${old.key.keyId}`]);
    const bob = await loginWithPassword(old.baseUrl, "bob", old.users.bob);
    const alice = await loginWithPassword(old.baseUrl, "alice", old.users.alice);
    const messages = (await (
        await fetch(`${old.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(old.roomId)}/messages?dir=b&limit=50`, {
            headers: { Authorization: `Bearer ${alice.accessToken}` },
        })
    ).json()) as { chunk: { content: { body?: string } }[] };
    for (let i = 0; i < 5; i++)
        assert.ok(
            messages.chunk.some((e) => e.content.body === `message ${i} before the adoption`),
            `message ${i}`,
        );
    await alice.client.sendTextMessage(old.roomId, "a message after the adoption");
    const [server, mediaId] = old.mediaUri.replace("mxc://", "").split("/");
    const media = await fetch(`${old.baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
        headers: { Authorization: `Bearer ${bob.accessToken}` },
    });
    assert.equal(media.status, 200);
    assert.ok(Buffer.from(await media.arrayBuffer()).equals(old.mediaBytes), "the media's bytes");
    assert.equal(fs.statSync(old.mediaFile).mtimeMs, old.mediaMtime, "the media file keeps its time");
    alice.client.stopClient();
    bob.client.stopClient();
    return synapse;
}

/** Synapse's secrets step with the adopted key and the stack's database passfile (what the component runs before the adoption step). */
async function writeSecrets(settings: SynapseSettings, peers: SynapsePeers, key: string, password: string): Promise<void> {
    const secrets = await run("bash", ["-s"], {
        input: synapseSecretsScript(settings, {
            macaroonSecretKey: random(),
            formSecret: random(),
            registrationSharedSecret: random(),
            signingKey: key,
            files: [pgpassSecretFile(peers.database!, password)],
        }),
        allowFailure: true,
    });
    assert.equal(secrets.code, 0, secrets.stderr + secrets.stdout);
}

/** The key line the preflight hands the stack. */
function importedKey(r: RunResult): string {
    const line = r.stdout.split("\n").find((l) => l.startsWith(ADOPTED_KEY_PREFIX));
    assert.ok(line, r.stdout + r.stderr);
    return `${line.slice(ADOPTED_KEY_PREFIX.length)}\n`;
}

describe("adopting a Synapse on PostgreSQL, with real Synapse and PostgreSQL", function () {
    let pg: PgServer;
    let venv: string;
    const processes: (SynapseProcess | undefined)[] = [];

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
    });

    after(async function () {
        await Promise.all(processes.map((p) => p?.stop()));
        await pg?.stop();
    });

    const adoptSettings = (old: OldServer, settings: SynapseSettings, mode: AdoptPostgresMode, db: { database: string; user: string }) =>
        resolveAdoptSettings(
            "test",
            { configDir: old.conf, venvDir: venv, postgres: mode },
            { ...settings, sqlite: false },
            { database: db.database, user: db.user, port: pg.port },
        );

    describe("dump: restored into the stack's empty database, the old one left as it was", function () {
        let old: OldServer;
        let settings: SynapseSettings;
        let peers: SynapsePeers;
        const stackDb = { database: "synapse_stack", user: "synapse_stack" };
        const stackPassword = random();

        before(async function () {
            old = new OldServer("dump", pg, { database: "synapse_old", user: "synapse_user", password: random() });
            await old.start(venv);
            processes.push(old.process);
            settings = old.synapseSettings(venv);
            peers = { database: { host: "127.0.0.1", port: pg.port, ...stackDb } };
        });

        it("the preflight refuses the old database or role as the stack's, changing nothing", async function () {
            const before = await old.content();
            for (const [db, message] of [
                [{ database: "synapse_old", user: "synapse_stack" }, /its database 'synapse_old' is the stack's database: .* such as 'synapse_old_adopted'/],
                [{ database: "synapse_stack", user: "synapse_user" }, /it connects as 'synapse_user', the stack's role/],
            ] as const) {
                const r = await old.runScript(adoptPreflightScript(adoptSettings(old, settings, "dump", db), old.files));
                assert.notEqual(r.code, 0, r.stdout);
                assert.match(r.stderr, /refused by the preflight; nothing was changed/);
                assert.match(r.stderr, message);
            }
            assert.equal(await old.content(), before);
            assert.ok(old.process!.running());
        });

        it("adopts: the old unit stopped, pg_dump restored as the stack's role; name, key, users, history and media kept; the old database intact", async function () {
            this.timeout(30 * 60_000);
            const a = adoptSettings(old, settings, "dump", stackDb);
            const pre = await old.runScript(adoptPreflightScript(a, old.files));
            assert.equal(pre.code, 0, pre.stderr + pre.stdout);
            assert.match(
                pre.stdout,
                /preflight passed: server_name matrix\.test, .*PostgreSQL database 'synapse_old' \(role 'synapse_user'\) on localhost port \d+ \(\d+ bytes\), dumped/,
            );
            const key = importedKey(pre);
            assert.equal(key, old.key.fileLine);

            // PostgresDatabase's database step: the stack's role and empty UTF8/C database.
            const dbStep = await run("bash", ["-s"], {
                input: postgresDatabaseScript(stackDb, stackPassword, crypto.randomBytes(16)),
                env: { ...process.env, PGHOST: pg.socketDir, PGPORT: String(pg.port) },
                allowFailure: true,
            });
            assert.equal(dbStep.code, 0, dbStep.stderr);
            await writeSecrets(settings, peers, key, stackPassword);

            const r = await old.runScript(adoptScript(a, settings, peers, old.files));
            assert.equal(r.code, 0, r.stderr + r.stdout);
            assert.match(r.stdout, /adoption: the stack's database is empty/);
            assert.match(r.stdout, /stopping matrix-synapse\.service for the dump/);
            assert.match(r.stdout, /restoring the dump into the stack's database as synapse_stack/);
            assert.match(r.stdout, /adoption done/);
            assert.ok(!old.process!.running(), "the old unit was stopped before the dump");
            assert.equal(fs.existsSync(`${old.dir}/unit.enabled`), false, "the old unit is disabled");
            const atStop = fs.readFileSync(`${old.dir}/db.at-stop`, "utf8").trim();
            assert.equal(await old.content(), atStop, "the old database is as its server left it");
            assert.equal(await old.content(stackDb.database), atStop, "the stack's database holds all of it");
            assert.equal(
                await pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'synapse_stack'", { db: stackDb.database }),
                "0",
                "every table is the stack's role's",
            );
            assert.equal(
                await pg.psql("SELECT datcollate || ' ' || datctype || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'synapse_stack'"),
                "C C UTF8",
            );
            // The old role still has its password: the old server could start again.
            assert.equal(await pg.psql("SELECT 1", { db: "synapse_old", user: "synapse_user", password: old.db.password }), "1");
            assert.equal(fs.readdirSync(old.files.stateDir).filter((n) => n.startsWith("old-database")).length, 0, "no dump or passfile left behind");
            assert.match(fs.readFileSync(`${old.conf}/homeserver.yaml.pre-adoption`, "utf8"), /psycopg2/);

            processes.push(await checkAdopted(old, venv, settings, peers));
        });

        it("a second run changes nothing", async function () {
            const before = [await old.content(stackDb.database), await old.content()];
            const step = await old.runScript(adoptScript(adoptSettings(old, settings, "dump", stackDb), settings, peers, old.files));
            assert.equal(step.code, 0, step.stderr);
            assert.match(step.stdout, /adopted already \(.* matrix\.test ed25519:.* from PostgreSQL database 'synapse_old'.*dumped\): nothing to do/);
            const pre = await old.runScript(adoptPreflightScript(adoptSettings(old, settings, "dump", stackDb), old.files));
            assert.equal(pre.code, 0, pre.stderr);
            assert.equal(importedKey(pre), old.key.fileLine);
            assert.deepEqual([await old.content(stackDb.database), await old.content()], before);
        });
    });

    describe("in-place: the stack's database step takes over the database and its role", function () {
        let old: OldServer;
        let settings: SynapseSettings;
        let peers: SynapsePeers;
        const stackDb = { database: "synapse_inplace", user: "synapse_inplace" };
        const stackPassword = random();
        const oid = () => pg.psql("SELECT oid FROM pg_database WHERE datname = 'synapse_inplace'");

        before(async function () {
            old = new OldServer("in-place", pg, { ...stackDb, password: random() });
            await old.start(venv);
            processes.push(old.process);
            settings = old.synapseSettings(venv);
            peers = { database: { host: "127.0.0.1", port: pg.port, ...stackDb } };
            assert.equal(resolvePostgresSettings("test", { port: pg.port, ...stackDb }).database, stackDb.database);
        });

        it("a collation other than C is refused in place (dump would restore it into a C database), changing nothing", async function () {
            // Another config of the same server (same key, same listener) whose database has another collation.
            const nonC = "synapse_nonc";
            await pg.runAsSuperuser(
                [
                    `CREATE DATABASE ${nonC} OWNER ${stackDb.user} ENCODING 'UTF8' LC_COLLATE '${pg.locale === "C" ? "C.UTF-8" : pg.locale}' LC_CTYPE '${pg.locale === "C" ? "C.UTF-8" : pg.locale}' TEMPLATE template0;`,
                ].join("\n"),
            );
            assert.notEqual(await pg.psql(`SELECT datcollate FROM pg_database WHERE datname = '${nonC}'`), "C");
            await pg.psql("CREATE TABLE schema_version (version integer, upgraded boolean); INSERT INTO schema_version VALUES (80, true);", {
                db: nonC,
                user: stackDb.user,
                password: old.db.password,
            });
            const conf2 = `${old.dir}/etc/matrix-synapse-nonc`;
            fs.cpSync(old.conf, conf2, { recursive: true });
            fs.writeFileSync(
                `${conf2}/homeserver.yaml`,
                fs.readFileSync(`${old.conf}/homeserver.yaml`, "utf8").replace(`database: ${stackDb.database}`, `database: ${nonC}`),
            );
            assert.match(fs.readFileSync(`${conf2}/homeserver.yaml`, "utf8"), /database: synapse_nonc/);
            const a = resolveAdoptSettings(
                "test",
                { configDir: conf2, venvDir: venv, postgres: "in-place" },
                { ...settings, sqlite: false },
                { database: nonC, user: stackDb.user, port: pg.port },
            );
            const before = sha256(`${conf2}/homeserver.yaml`);
            const pre = await old.runScript(adoptPreflightScript(a, old.files));
            const step = await old.runScript(adoptScript(a, settings, peers, old.files));
            for (const r of [pre, step]) {
                assert.notEqual(r.code, 0, r.stdout);
                assert.match(r.stderr, /refused by the preflight; nothing was changed/);
                assert.match(
                    r.stderr,
                    /LC_COLLATE \S+ and LC_CTYPE \S+; Synapse needs UTF8 and C for both, and in-place keeps the database as it is: set the adoption's postgres to dump/,
                );
                assert.doesNotMatch(r.stderr, /is not the key the server publishes|is the stack's database|owned by/);
            }
            assert.ok(old.process!.running(), "the old server still runs");
            assert.equal(sha256(`${conf2}/homeserver.yaml`), before);
            assert.equal(fs.existsSync(old.files.stateDir), false);
            assert.equal(await pg.psql("SELECT 1", { db: nonC, user: stackDb.user, password: old.db.password }), "1", "the role keeps its password");
            // Dump mode takes the same database: restored into a C database, the preflight only notes it.
            const dump = await old.runScript(
                adoptPreflightScript(
                    resolveAdoptSettings(
                        "test",
                        { configDir: conf2, venvDir: venv },
                        { ...settings, sqlite: false },
                        { database: "synapse_other", user: "synapse_other", port: pg.port },
                    ),
                    old.files,
                ),
            );
            assert.equal(dump.code, 0, dump.stderr + dump.stdout);
            assert.match(dump.stderr, /the dump is restored into the stack's UTF8\/C database/);
        });

        it("refuses a stack whose database or role is not the old one's, changing nothing", async function () {
            const r = await old.runScript(adoptPreflightScript(adoptSettings(old, settings, "in-place", { database: "synapse", user: "synapse" }), old.files));
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                /its database is 'synapse_inplace', the stack's is 'synapse': set postgres database \(postgresDatabase\) to 'synapse_inplace'/,
            );
            assert.match(r.stderr, /in-place needs both to be the stack's role 'synapse'/);
            assert.ok(old.process!.running());
        });

        it("adopts: the old unit stopped, then the database step sets the stack's password; the database is never recreated; name, key, users, history and media kept", async function () {
            this.timeout(30 * 60_000);
            const oidBefore = await oid();
            const contentBefore = await old.content();
            const a = adoptSettings(old, settings, "in-place", stackDb);
            const pre = await old.runScript(adoptPreflightScript(a, old.files));
            assert.equal(pre.code, 0, pre.stderr + pre.stdout);
            assert.match(pre.stdout, /PostgreSQL database 'synapse_inplace' \(role 'synapse_inplace'\) on localhost port \d+, taken over in place/);
            const key = importedKey(pre);
            await writeSecrets(settings, peers, key, stackPassword);

            const r = await old.runScript(adoptScript(a, settings, peers, old.files));
            assert.equal(r.code, 0, r.stderr + r.stdout);
            assert.match(r.stdout, /stopping matrix-synapse\.service: the stack's PostgreSQL steps take over its database and role next/);
            assert.doesNotMatch(r.stdout, /pg_dump|restoring/);
            assert.ok(!old.process!.running());
            assert.equal(fs.existsSync(`${old.dir}/unit.enabled`), false);

            // PostgresDatabase's database step, as it runs after the adoption step: the role gets the stack's password.
            const dbStep = await run("bash", ["-s"], {
                input: postgresDatabaseScript(stackDb, stackPassword, crypto.randomBytes(16)),
                env: { ...process.env, PGHOST: pg.socketDir, PGPORT: String(pg.port) },
                allowFailure: true,
            });
            assert.equal(dbStep.code, 0, dbStep.stderr);
            assert.equal(await oid(), oidBefore, "the same database, never dropped or recreated");
            assert.equal(await old.content(), fs.readFileSync(`${old.dir}/db.at-stop`, "utf8").trim());
            assert.ok(contentBefore.length > 0);
            await assert.rejects(
                pg.psql("SELECT 1", { db: stackDb.database, user: stackDb.user, password: old.db.password }),
                "the old password no longer works",
            );
            assert.equal(await pg.psql("SELECT 1", { db: stackDb.database, user: stackDb.user, password: stackPassword }), "1");

            processes.push(await checkAdopted(old, venv, settings, peers));
        });

        it("a second run changes nothing: the step does nothing, the database step keeps the database", async function () {
            const oidBefore = await oid();
            const content = await old.content();
            const step = await old.runScript(adoptScript(adoptSettings(old, settings, "in-place", stackDb), settings, peers, old.files));
            assert.equal(step.code, 0, step.stderr);
            assert.match(step.stdout, /adopted already \(.*taken over in place\): nothing to do/);
            const dbStep = await run("bash", ["-s"], {
                input: postgresDatabaseScript(stackDb, stackPassword, crypto.randomBytes(16)),
                env: { ...process.env, PGHOST: pg.socketDir, PGPORT: String(pg.port) },
                allowFailure: true,
            });
            assert.equal(dbStep.code, 0, dbStep.stderr);
            assert.equal(await oid(), oidBefore);
            assert.equal(await old.content(), content);
        });
    });
});
