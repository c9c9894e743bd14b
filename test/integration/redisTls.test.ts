// Redis as the library configures it for Synapse processes on other hosts
// (issue 19 item 8 and the Low item on Redis's default user): a real
// redis-server from Debian with the rendered config, TLS only on its port
// (a CA and certificate of the shape components/privateCa.ts makes), a
// client in a network namespace of this test's own as the other host, and
// a real Synapse main process and worker (from PyPI) configured by the
// library's own scripts with use_tls and ca_file: they talk through Redis
// over TLS, as the default user that has lost Redis's dangerous commands.
// Monitoring's Redis exporter, with its rendered arguments, reaches it over
// TLS on loopback as its own ACL user, verified against the CA.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolveMonitoringSettings } from "../../src/model/monitoring";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { REDIS_FILES, resolveRedisSettings } from "../../src/model/redis";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, workerFiles, WorkerPeers } from "../../src/model/workers";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../src/provision/workers";
import { STATE_DIR } from "../../src/render/drift";
import { FIREWALL_FRAGMENT_DIR } from "../../src/render/firewall";
import { renderExporterDefaults, renderRedisExporterEnv } from "../../src/render/monitoring";
import { renderRedisConf, renderRedisSecretConf } from "../../src/render/redis";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort, freeWorkerPorts, isListening } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, registerCleanup, run, sleep, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { addClientNamespace, makeServerCertificate } from "../support/integration/remotePeer";
import { ServiceSandbox } from "../support/integration/serviceSandbox";
import { startSynapse, startWorker, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const NS = `pm-redistls-${process.pid}`;
const HOST_IF = `pmrd${process.pid % 100000}`;
const SERVER = "10.231.8.1";
const CLIENT = "10.231.8.2";
const random = () => crypto.randomBytes(24).toString("hex");
const COMPONENT = 'WorkerPool "test"';
const HOST = 'Host "test"';

/** Scripts run as on a VM, with the state directory, units and firewall fragments in temp dirs and a systemctl stand-in (as in workers.test.ts). */
class Sandbox extends ServiceSandbox {
    constructor() {
        super(
            makeTempDir("redis-tls-sandbox"),
            [
                { real: STATE_DIR, name: "state" },
                { real: "/etc/systemd/system", name: "units" },
                { real: path.dirname(FIREWALL_FRAGMENT_DIR), name: "pulumi-matrix" },
            ],
            120_000,
        );
        this.writeStandIns({ recordFlags: true, journal: "echo journal" });
    }
}

describe("Redis for Synapse processes on other hosts: TLS only, and a default user without dangerous commands", function () {
    let dir: string;
    let port: number;
    let redis: SpawnedDaemon;
    let pg: PgServer;
    let venv: string;
    let main: SynapseProcess;
    let worker: SynapseProcess;
    let settings: SynapseSettings;
    const password = random();
    const exporterPassword = random();

    before(async function () {
        await addClientNamespace(NS, HOST_IF, SERVER, CLIENT);
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);

        dir = makeTempDir("redis-tls");
        await makeServerCertificate(dir, "Redis", ["127.0.0.1", SERVER]);

        port = await freePort();
        const s = resolveRedisSettings("test", { port, bindAddresses: ["127.0.0.1", SERVER], allowedClients: [`${CLIENT}/32`] });
        // The rendered files, with this test's paths for the TLS files, the pid file and the working dir.
        fs.writeFileSync(
            path.join(dir, "secrets.conf"),
            renderRedisSecretConf(password, { tlsPort: port, exporterPassword }).split(REDIS_FILES.tlsDir).join(dir),
            {
                mode: 0o600,
            },
        );
        fs.writeFileSync(path.join(dir, "redis.conf"), renderRedisConf(s, path.join(dir, "secrets.conf")));
        redis = spawnDaemon("redis-server", [path.join(dir, "redis.conf"), "--dir", dir, "--pidfile", path.join(dir, "redis.pid"), "--supervised", "no"], {
            name: "redis",
            exitSignal: "SIGKILL",
        });
        registerCleanup({ name: "redis", run: () => redis.stop("SIGTERM", 5000) });
        for (let i = 0; i < 50 && !(await isListening(port)); i++) await sleep(100);
        assert.ok(await isListening(port), redis.tail(20));
    });

    after(async function () {
        await worker?.stop();
        await main?.stop();
        await redis?.stop("SIGTERM", 5000);
        await pg?.stop();
    });

    /** redis-cli from the other host (the namespace); the password through the environment. */
    const fromOtherHost = (args: string[]) =>
        run("ip", ["netns", "exec", NS, "timeout", "10", "redis-cli", "-h", SERVER, "-p", String(port), ...args], {
            env: { ...process.env, REDISCLI_AUTH: password },
            allowFailure: true,
        });
    const tls = () => ["--tls", "--cacert", path.join(dir, "ca.crt")];

    it("refuses a cleartext connection from another host", async function () {
        const r = await fromOtherHost(["PING"]);
        assert.doesNotMatch(r.stdout, /PONG/);
    });

    it("answers over TLS verified against the CA from another host, and not against another CA", async function () {
        assert.equal((await fromOtherHost([...tls(), "PING"])).stdout.trim(), "PONG");
        const other = await fromOtherHost(["--tls", "--cacert", "/etc/ssl/certs/ca-certificates.crt", "PING"]);
        assert.doesNotMatch(other.stdout, /PONG/);
    });

    it("monitoring's Redis exporter, with its rendered arguments, reaches it over TLS as its own user: redis_up 1; with another CA, 0", async function () {
        const m = resolveMonitoringSettings(
            "test",
            {},
            { synapse: resolveSynapseSettings("t", { serverName: "example.com" }), host: 'Host "vm"', redis: { port, tls: true } },
        );
        const listen = await freePort();
        const args = (ca: string) =>
            /^ARGS="(.*)"$/m
                .exec(renderExporterDefaults(m, "redis"))![1]
                .split(" ")
                .map((a) => a.replace("127.0.0.1:9121", `127.0.0.1:${listen}`).replace(REDIS_FILES.tlsCa, ca));
        const env = Object.fromEntries([...renderRedisExporterEnv(exporterPassword).matchAll(/^(\w+)="(.*)"$/gm)].map((x) => [x[1], x[2]]));
        for (const [ca, up] of [
            [path.join(dir, "ca.crt"), "1"],
            ["/etc/ssl/certs/ca-certificates.crt", "0"],
        ]) {
            const exporter = spawnDaemon("prometheus-redis-exporter", args(ca), { name: "redis-exporter", env: { PATH: process.env.PATH, ...env } });
            try {
                let metrics = "";
                for (let i = 0; i < 50 && !/^redis_up \d$/m.test(metrics); i++) {
                    await sleep(200);
                    metrics = await fetch(`http://127.0.0.1:${listen}/metrics`)
                        .then((r) => r.text())
                        .catch(() => "");
                }
                assert.match(metrics, new RegExp(`^redis_up ${up}$`, "m"), `${ca}: ${exporter.tail(5)}`);
            } finally {
                await exporter.stop("SIGTERM", 5000);
            }
        }
    });

    it("the default user may not run dangerous commands", async function () {
        for (const cmd of [["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "*"], ["KEYS", "*"], ["SHUTDOWN"], ["ACL", "LIST"], ["REPLICAOF", "NO", "ONE"]]) {
            const r = await fromOtherHost([...tls(), ...cmd]);
            assert.match(r.stdout + r.stderr, /NOPERM/, cmd.join(" "));
        }
        // DEBUG and MODULE are off in Redis 7 already (enable-debug-command, enable-module-command); what Synapse uses still works.
        assert.equal((await fromOtherHost([...tls(), "SET", "k", "v"])).stdout.trim(), "OK");
    });

    it("a Synapse main process and worker configured with use_tls and ca_file talk through it", async function () {
        const httpPort = await freePort();
        settings = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: `http://127.0.0.1:${httpPort}/`,
            installMethod: "pip",
            httpPort,
            metrics: { port: await freePort() },
            replication: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        const dbPassword = random();
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        const peers: SynapsePeers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        const pool = resolveWorkerPoolSettings(
            COMPONENT,
            { workers: [{ role: "federation_reader", count: 1, port: await freeWorkerPorts() }] },
            settings,
            HOST,
        );
        const workerPeers: WorkerPeers = {
            privateAddresses: {},
            redis: { host: "127.0.0.1", port, tls: true, caCertificate: fs.readFileSync(path.join(dir, "ca.crt"), "utf8") },
            redisPassword: true,
        };
        const sandbox = new Sandbox();
        sandbox.setActive();
        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, dbPassword)],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, peers, "test"));
        await sandbox.run(workerSecretsScript(pool, settings, HOST, { replicationSecret: random(), redisPassword: password }));
        await sandbox.run(workerConfigScript(pool, settings, HOST, workerPeers, { component: COMPONENT, synapsePeers: peers }));
        const shared = fs.readFileSync(workerFiles(settings.paths).shared, "utf8");
        assert.match(shared, /use_tls: true/);
        assert.match(shared, /ca_file: /);

        const f = synapseFiles(settings.paths);
        main = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `http://127.0.0.1:${httpPort}/health`,
            cwd: settings.paths.dataDir,
            name: "main",
        });
        const w = pool.workers[0];
        worker = await startWorker({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/", workerFiles(settings.paths).worker(w.name)],
            healthUrl: `http://127.0.0.1:${w.port}/health`,
            cwd: settings.paths.dataDir,
            name: w.name,
        });
        // Both subscribe to the server's replication channel: only possible over TLS (the cleartext port is off).
        let subscribers = 0;
        for (let i = 0; i < 60 && subscribers < 2; i++) {
            const r = await run("redis-cli", [...tls(), "-h", "127.0.0.1", "-p", String(port), "PUBSUB", "NUMSUB", "matrix.test"], {
                env: { ...process.env, REDISCLI_AUTH: password },
            });
            subscribers = Number(r.stdout.trim().split("\n")[1] ?? 0);
            if (subscribers < 2) await sleep(500);
        }
        assert.equal(subscribers, 2, `main: ${main.log().slice(-2000)}\nworker: ${worker.log().slice(-2000)}`);
        assert.doesNotMatch(main.log() + worker.log(), /NOPERM/);
    });
});
