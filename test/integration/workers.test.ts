// Synapse's workers against the real programs: Redis from Debian (the
// rendered config and password file), PostgreSQL from Debian, Synapse from
// PyPI: the main process, two federation readers and two federation senders,
// each started with the files the library's own scripts wrote (Synapse's
// secrets and config scripts, the WorkerPool's secrets and config scripts,
// paths pointed at a temp dir). Then the restarts each change causes, with
// the same scripts and a systemctl stand-in.
//
// The scripts run as on a VM, as root, in a mount namespace of their own
// where the state directory, /etc/systemd/system and /etc/pulumi-matrix are
// temp dirs, so nothing is left on this machine; systemctl and curl are
// stand-ins on PATH that record what they were asked (this machine runs no
// systemd), and the processes are started by the test.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { parse, stringify } from "yaml";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapseOptions, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, workerFiles, WorkerPeers, WorkerPoolOptions, WorkerPoolSettings, WorkerSpec } from "../../src/model/workers";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../src/provision/workers";
import { STATE_DIR } from "../../src/render/drift";
import { FIREWALL_FRAGMENT_DIR } from "../../src/render/firewall";
import { PROMETHEUS_SCRAPE_DIR, PROMETHEUS_SCRAPE_FILES } from "../../src/render/prometheus";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort, freeWorkerPorts } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { startRedis } from "../support/integration/redis";
import { ServiceSandbox } from "../support/integration/serviceSandbox";
import { registerWithSharedSecret, startSynapse, startWorker, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const HOST = 'Host "test"';
const COMPONENT = 'WorkerPool "test"';

/**
 * Runs scripts as they run on a VM, as root, in a mount namespace where the
 * state directory, /etc/systemd/system and the firewall fragments are temp
 * dirs (kept across runs), with systemctl and curl stand-ins that record
 * their calls (test/support/integration/serviceSandbox.ts): `systemctl is-active` answers from
 * the file `active`, start and restart add to it, stop removes; curl (the
 * health checks) succeeds.
 */
class Sandbox extends ServiceSandbox {
    constructor(name: string) {
        super(
            makeTempDir(`workers-${name}`),
            [
                { real: STATE_DIR, name: "state" },
                { real: "/etc/systemd/system", name: "units" },
                { real: path.dirname(FIREWALL_FRAGMENT_DIR), name: "pulumi-matrix" },
            ],
            120_000,
        );
        this.writeStandIns({ recordFlags: true, journal: "echo journal" });
    }

    /** Only the calls that start, stop or restart a process (and their health checks). */
    lifecycle(): string[] {
        return this.calls().filter((c) => /^(start|stop|restart|disable) |^health /.test(c));
    }
}

/** Synapse's settings for a test: paths in `dir`, running as root. */
function synapseSettings(dir: string, o: Partial<SynapseOptions> & { httpPort: number }): SynapseSettings {
    return resolveSynapseSettings("test", {
        serverName: "matrix.test",
        publicBaseUrl: `http://127.0.0.1:${o.httpPort}/`,
        installMethod: "pip",
        paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: `${dir}/venv`, user: "root" },
        ...o,
    });
}

describe("Synapse workers as the library configures them: Redis, the main process, 2 federation readers, 2 federation senders", function () {
    let pg: PgServer;
    let venv: string;
    let redis: SpawnedDaemon;
    let dir: string;
    let sandbox: Sandbox;
    let settings: SynapseSettings;
    let pool: WorkerPoolSettings;
    let peers: SynapsePeers;
    let baseUrl: string;
    let main: SynapseProcess;
    const workers = new Map<string, SynapseProcess>();
    const dbPassword = random();
    const redisPassword = random();
    const sharedSecret = random();
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("workers");
        sandbox = new Sandbox("real");

        // Redis: the rendered config and password file; pid file and working dir in the temp dir, not supervised by systemd.
        const started = await startRedis(dir, redisPassword);
        redis = started.daemon;
        const redisSettings = started.settings;

        const port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        settings = synapseSettings(dir, {
            httpPort: port,
            metrics: { port: await freePort() },
            replication: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        const base = await freeWorkerPorts(4);
        const specs: WorkerSpec[] = [
            { role: "federation_reader", count: 2, port: base },
            { role: "federation_sender", count: 2, port: base + 2 },
        ];
        pool = resolveWorkerPoolSettings(COMPONENT, { workers: specs }, settings, HOST);
        const workerPeers: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: redisSettings.port, tls: false }, redisPassword: true };

        // The scripts the components send to a VM, in the order they run there.
        sandbox.setActive();
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: sharedSecret,
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, dbPassword)],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, peers, "test"));
        await sandbox.run(workerSecretsScript(pool, settings, HOST, { replicationSecret: random(), redisPassword }));
        await sandbox.run(workerConfigScript(pool, settings, HOST, workerPeers, { component: COMPONENT, synapsePeers: peers }));

        const f = synapseFiles(settings.paths);
        main = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `${baseUrl}/health`,
            cwd: settings.paths.dataDir,
            name: "main",
        });
        for (const w of pool.workers) {
            workers.set(
                w.name,
                await startWorker({
                    venv,
                    configPaths: [f.homeserverYaml, f.confD + "/", workerFiles(settings.paths).worker(w.name)],
                    healthUrl: `http://127.0.0.1:${w.port}/health`,
                    cwd: settings.paths.dataDir,
                    name: w.name,
                }),
            );
        }
    });

    after(async function () {
        for (const w of workers.values()) await w.stop();
        await main?.stop();
        await redis?.stop("SIGTERM", 5000);
        await pg?.stop();
    });

    it("wrote the worker files the pool renders, with no key current Synapse refuses", function () {
        const files = workerFiles(settings.paths);
        const shared = fs.readFileSync(files.shared, "utf8");
        assert.match(shared, /instance_map:\n {2}main:\n {4}host: 127\.0\.0\.1\n/);
        assert.match(shared, /password_path: .*\/secrets\/redis_password/);
        assert.doesNotMatch(shared, new RegExp(redisPassword));
        assert.match(fs.readFileSync(files.senders, "utf8"), /federation_sender_instances:\n {2}- federation_sender1\n {2}- federation_sender2\n/);
        const all = [files.shared, files.senders, ...pool.workers.map((w) => files.worker(w.name)), synapseFiles(settings.paths).homeserverYaml]
            .map((p) => fs.readFileSync(p, "utf8"))
            .join("\n");
        for (const refused of [
            "worker_replication_host",
            "worker_replication_http_port",
            "worker_replication_port",
            "synapse.app.federation_sender",
            "send_federation",
        ])
            assert.ok(!all.includes(refused), refused);
        assert.equal((fs.statSync(files.redisPassword).mode & 0o777).toString(8), "640");
        assert.equal((fs.statSync(files.replicationSecret).mode & 0o777).toString(8), "640");
    });

    it("every worker answers /health on its own port", async function () {
        for (const w of pool.workers) {
            const r = await fetch(`http://127.0.0.1:${w.port}/health`);
            assert.equal(r.status, 200, w.name);
            assert.equal(await r.text(), "OK", w.name);
        }
    });

    it("answers federation requests sent to a reader's port from that reader: /_matrix/federation/v1/version and /_matrix/key/v2/query", async function () {
        for (const reader of pool.workers.filter((w) => w.role === "federation_reader")) {
            const proc = workers.get(reader.name)!;
            const version = await fetch(`http://127.0.0.1:${reader.port}/_matrix/federation/v1/version`);
            assert.equal(version.status, 200);
            assert.equal(((await version.json()) as { server: { name: string } }).server.name, "Synapse");
            const keys = await fetch(`http://127.0.0.1:${reader.port}/_matrix/key/v2/query`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ server_keys: { "matrix.test": {} } }),
            });
            assert.equal(keys.status, 200);
            // The notary answers from what it has stored (a fresh server has stored nothing): the answer's shape is enough here.
            assert.ok(Array.isArray(((await keys.json()) as { server_keys: unknown }).server_keys));
            // The reader's own access log has both requests.
            await waitFor(
                () => /GET \/_matrix\/federation\/v1\/version/.test(proc.log()) && /POST \/_matrix\/key\/v2\/query/.test(proc.log()),
                `${reader.name} logs the requests`,
            );
        }
        assert.doesNotMatch(main.log(), /\/_matrix\/federation\/v1\/version|\/_matrix\/key\/v2\/query/, "the main process saw a reader's request");
    });

    it("sends federation from a federation sender, never from the main process", async function () {
        const user = await registerWithSharedSecret(baseUrl, sharedSecret, "alice", random(), false);
        // A to-device message to a user on another server: an EDU the federation senders deliver.
        const closed = await freePort();
        const destination = `127.0.0.1:${closed}`;
        const r = await fetch(`${baseUrl}/_matrix/client/v3/sendToDevice/m.test/${random()}`, {
            method: "PUT",
            headers: { authorization: `Bearer ${user.access_token}`, "content-type": "application/json" },
            body: JSON.stringify({ messages: { [`@bob:${destination}`]: { DEVICE: { hello: "world" } } } }),
        });
        assert.equal(r.status, 200, await r.text());
        const senders = pool.workers.filter((w) => w.role === "federation_sender").map((w) => workers.get(w.name)!);
        const attempt = new RegExp(`TX \\[${destination.replace(/\./g, "\\.")}\\] \\{\\d+\\} Sending transaction`);
        await waitFor(() => senders.some((s) => attempt.test(s.log())), "a federation sender attempts the transaction");
        assert.equal(senders.filter((s) => attempt.test(s.log())).length, 1, "exactly one sender handles a destination");
        assert.doesNotMatch(main.log(), /Sending transaction/, "the main process sent federation");
        assert.doesNotMatch(main.log(), /synapse\.federation\.sender/, "the main process runs a federation sender");
    });

    it("logs no worker-config warning and no deprecation in any process", function () {
        // The start-up banner is logged at WARNING level on purpose; everything else counts.
        const banner = /synapse\.config\.logger - \d+ - WARNING - main - (\*{5} STARTING SERVER|Server .* version |Copyright|Licensed under)/;
        for (const proc of [main, ...workers.values()]) {
            const bad = proc
                .log()
                .split("\n")
                .filter((l) => !banner.test(l))
                .filter((l) => /deprecat/i.test(l) || (/ - (WARNING|ERROR|CRITICAL) - /.test(l) && /config|setting|option|worker|replication|redis/i.test(l)));
            assert.deepEqual(bad, [], proc.name);
        }
    });

    it("a real Prometheus, given the scrape files the scripts wrote, scrapes the main process and every worker: up == 1 (issue 23)", async function () {
        // The scripts wrote /etc/pulumi-matrix/prometheus/ inside the sandbox.
        const scrapeDir = path.join(sandbox.dir, "pulumi-matrix", path.basename(PROMETHEUS_SCRAPE_DIR));
        const jobs = [PROMETHEUS_SCRAPE_FILES.synapse, PROMETHEUS_SCRAPE_FILES.workers].flatMap(
            (file) => (parse(fs.readFileSync(path.join(scrapeDir, path.basename(file)), "utf8")) as { scrape_configs: unknown[] }).scrape_configs,
        );
        const promDir = makeTempDir("workers-prometheus");
        const config = path.join(promDir, "prometheus.yml");
        // Both files pasted under scrape_configs as they are, as the README says.
        fs.writeFileSync(config, stringify({ global: { evaluation_interval: "15s" }, scrape_configs: jobs }));
        const check = await run("promtool", ["check", "config", config], { allowFailure: true });
        assert.equal(check.code, 0, check.stdout + check.stderr);
        const port = await freePort();
        const prometheus = spawnDaemon(
            "prometheus",
            [`--config.file=${config}`, `--storage.tsdb.path=${promDir}/data`, `--web.listen-address=127.0.0.1:${port}`],
            { name: "prometheus", cwd: promDir },
        );
        try {
            const expected = ["master1", ...pool.workers.map((w) => `${w.role}${pool.workers.filter((o) => o.role === w.role).indexOf(w) + 1}`)].sort();
            let seen: string[] = [];
            // Each job's first scrape comes within its 15 s interval.
            for (let i = 0; i < 90 && seen.join() !== expected.map((e) => `${e}=1`).join(); i++) {
                await sleep(1000);
                const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`).catch(() => undefined);
                if (!r?.ok) continue;
                const body = (await r.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
                seen = body.data.result.map((x) => `${x.metric.job}${x.metric.index}=${x.value[1]}`).sort();
            }
            assert.deepEqual(
                seen,
                expected.map((e) => `${e}=1`),
                prometheus.tail(20),
            );
        } finally {
            await prometheus.stop("SIGTERM", 10_000);
        }
    });
});

describe("what each change restarts (the pool's and Synapse's scripts, with a systemctl stand-in)", function () {
    let sandbox: Sandbox;
    let dir: string;
    let settings: SynapseSettings;
    const peers: SynapsePeers = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };
    const workerPeers: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: 6379, tls: false }, redisPassword: true };
    const MAIN = "matrix-synapse.service";
    const unit = (name: string) => `matrix-synapse-worker@${name}.service`;
    const poolOf = (workers: WorkerPoolOptions["workers"]) => resolveWorkerPoolSettings(COMPONENT, { workers }, settings, HOST);
    const deploy = async (p: WorkerPoolSettings, replicationSecret = "secret-one") => {
        sandbox.reset();
        // As the component: a pool without workers has no secrets step.
        if (p.workers.length) await sandbox.run(workerSecretsScript(p, settings, HOST, { replicationSecret, redisPassword: "redis-password" }));
        await sandbox.run(workerConfigScript(p, settings, HOST, workerPeers, { component: COMPONENT, synapsePeers: peers }));
        return sandbox.lifecycle();
    };
    const restartOf = (u: string, port: number) => [`restart ${u}`, `health http://127.0.0.1:${port}/health`];
    const startOf = (u: string, port: number) => [`start ${u}`, `health http://127.0.0.1:${port}/health`];

    before(async function () {
        sandbox = new Sandbox("restarts");
        dir = makeTempDir("workers-restarts");
        settings = synapseSettings(dir, { httpPort: 8008, replication: {} });
        await sandbox.run(synapseConfigScript(settings, peers, "test"));
        // The main process runs (Synapse's own config step started it).
        sandbox.setActive(MAIN);
    });

    const base = { federation_reader: 2, federation_sender: 2 };

    it("first deploy: the main process restarts once for the shared worker config, then each worker starts, each healthy before the next", async function () {
        assert.deepEqual(await deploy(poolOf(base)), [
            ...restartOf(MAIN, 8008),
            ...startOf(unit("federation_reader1"), 8100),
            ...startOf(unit("federation_reader2"), 8101),
            ...startOf(unit("federation_sender1"), 8120),
            ...startOf(unit("federation_sender2"), 8121),
        ]);
    });

    it("a second run with the same settings starts, stops and restarts nothing", async function () {
        assert.deepEqual(await deploy(poolOf(base)), [
            "health http://127.0.0.1:8008/health",
            "health http://127.0.0.1:8100/health",
            "health http://127.0.0.1:8101/health",
            "health http://127.0.0.1:8120/health",
            "health http://127.0.0.1:8121/health",
        ]);
    });

    it("a change to one worker restarts that worker only", async function () {
        const moved = poolOf([
            { role: "federation_reader", count: 1 },
            { role: "federation_reader", name: "federation_reader2", port: 8150 },
            { role: "federation_sender", count: 2 },
        ]);
        const calls = await deploy(moved);
        assert.deepEqual(
            calls.filter((c) => !c.startsWith("health")),
            [`restart ${unit("federation_reader2")}`],
        );
        assert.ok(calls.includes("health http://127.0.0.1:8150/health"));
        await deploy(poolOf(base));
    });

    it("a change to the shared worker config restarts the main process, then every worker in turn (a new stream writer starts last)", async function () {
        const calls = await deploy(poolOf({ ...base, typing: 1 }));
        assert.deepEqual(calls, [
            ...restartOf(MAIN, 8008),
            ...restartOf(unit("federation_reader1"), 8100),
            ...restartOf(unit("federation_reader2"), 8101),
            ...restartOf(unit("federation_sender1"), 8120),
            ...restartOf(unit("federation_sender2"), 8121),
            ...startOf(unit("typing1"), 8320),
        ]);
    });

    it("a change of the federation senders stops every sender before any starts; a removed worker is stopped and disabled", async function () {
        const more = await deploy(poolOf({ federation_reader: 2, federation_sender: 3, typing: 1 }));
        const life = more.filter((c) => !c.startsWith("health"));
        assert.deepEqual(life, [
            `stop ${unit("federation_sender1")}`,
            `stop ${unit("federation_sender2")}`,
            `restart ${MAIN}`,
            `start ${unit("federation_sender1")}`,
            `start ${unit("federation_sender2")}`,
            `start ${unit("federation_sender3")}`,
        ]);
        const fewer = (await deploy(poolOf({ federation_reader: 2, federation_sender: 1, typing: 1 }))).filter((c) => !c.startsWith("health"));
        assert.deepEqual(fewer, [
            `disable --now -q ${unit("federation_sender2")}`,
            `disable --now -q ${unit("federation_sender3")}`,
            `stop ${unit("federation_sender1")}`,
            `restart ${MAIN}`,
            `start ${unit("federation_sender1")}`,
        ]);
        assert.ok(!fs.existsSync(workerFiles(settings.paths).worker("federation_sender2")), "the removed worker's file is gone");
    });

    it("a change to homeserver.yaml (Synapse's own config step) restarts the main process, then every worker of this host in turn", async function () {
        const p = poolOf(base);
        await deploy(p);
        sandbox.reset();
        await sandbox.run(synapseConfigScript({ ...settings, maxUploadSize: "100M" }, peers, "test"));
        assert.deepEqual(sandbox.lifecycle(), [
            ...restartOf(MAIN, 8008),
            ...restartOf(unit("federation_reader1"), 8100),
            ...restartOf(unit("federation_reader2"), 8101),
            ...restartOf(unit("federation_sender1"), 8120),
            ...restartOf(unit("federation_sender2"), 8121),
        ]);
    });

    it("a changed secret restarts the main process, then every worker in turn", async function () {
        const calls = await deploy(poolOf(base), "secret-two");
        assert.deepEqual(calls, [
            ...restartOf(MAIN, 8008),
            ...restartOf(unit("federation_reader1"), 8100),
            ...restartOf(unit("federation_reader2"), 8101),
            ...restartOf(unit("federation_sender1"), 8120),
            ...restartOf(unit("federation_sender2"), 8121),
            // The config step after it has nothing left to do but check health.
            "health http://127.0.0.1:8008/health",
            "health http://127.0.0.1:8100/health",
            "health http://127.0.0.1:8101/health",
            "health http://127.0.0.1:8120/health",
            "health http://127.0.0.1:8121/health",
        ]);
    });

    it("a pool without workers removes what an earlier pool wrote; the main process restarts to run alone", async function () {
        const calls = (await deploy(poolOf({}))).filter((c) => !c.startsWith("health"));
        assert.deepEqual(calls, [
            `disable --now -q ${unit("federation_reader1")}`,
            `disable --now -q ${unit("federation_reader2")}`,
            `disable --now -q ${unit("federation_sender1")}`,
            `disable --now -q ${unit("federation_sender2")}`,
            `restart ${MAIN}`,
        ]);
        const files = workerFiles(settings.paths);
        for (const f of [files.shared, files.senders, synapseFiles(settings.paths).workerList]) assert.ok(!fs.existsSync(f), `${f} is left`);
    });
});

/** Polls until `check` holds (20 s at most). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
        if (check()) return;
        await sleep(100);
    }
    assert.fail(`timed out: ${what}`);
}
