// Monitoring against the real programs: Synapse from PyPI (the main
// process, a federation reader and a federation sender, with the files the
// library's scripts wrote, as in workers.test.ts), PostgreSQL and Redis from
// Debian, and Debian's Prometheus, Alertmanager and node, PostgreSQL, Redis and
// blackbox exporters started with the rendered configs and arguments
// (/etc/default/<unit>'s ARGS) as their units would: every target answers,
// `up == 1` for each, the PostgreSQL exporter reaches its server (the
// exporter role through peer authentication), the Redis exporter reaches
// Redis as its own ACL user (from the rendered secret config) and that user
// can read no key and write nothing, Synapse's
// /health probe succeeds and the alert rules are loaded.
//
// The exporters listen on their fixed loopback ports (9100, 9187, 9115, 9121), as on a VM; Prometheus and Alertmanager on free ports. nginx's
// exporter is left out here (proxy.test.ts runs nginx; its stub_status file
// is checked by `nginx -t` in the server step).

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { EXPORTER_PORTS, MONITORING_FILES, MonitoringSettings, MonitoringUnit, resolveMonitoringSettings } from "../../src/model/monitoring";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveReverseProxySettings } from "../../src/model/proxy";
import { REDIS_EXPORTER_USER } from "../../src/model/redis";
import { resolveSynapseSettings, synapseFiles, SynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, workerFiles, WorkerPeers, WorkerPoolSettings } from "../../src/model/workers";
import { POSTGRES_EXPORTER_ROLE_SQL } from "../../src/provision/monitoring";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../src/provision/workers";
import { STATE_DIR } from "../../src/render/drift";
import { FIREWALL_FRAGMENT_DIR } from "../../src/render/firewall";
import {
    renderAlertmanagerConfig,
    renderAlertRules,
    renderBlackboxConfig,
    renderExporterDefaults,
    renderNginxStatus,
    renderPostgresExporterEnv,
    renderPrometheusConfig,
    renderRedisExporterEnv,
} from "../../src/render/monitoring";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort, freeWorkerPorts, isListening } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { startRedis } from "../support/integration/redis";
import { ServiceSandbox } from "../support/integration/serviceSandbox";
import { startSynapse, startWorker, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const HOST = 'Host "test"';

/** Synapse's and the pool's scripts as on a VM, in a mount namespace with stand-ins for systemctl and curl (as in workers.test.ts). */
class Sandbox extends ServiceSandbox {
    constructor() {
        super(
            makeTempDir("monitoring-sandbox"),
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

/** The Debian binary of each unit. */
const BINARIES: Record<MonitoringUnit, string> = {
    prometheus: "prometheus",
    alertmanager: "prometheus-alertmanager",
    node: "prometheus-node-exporter",
    postgres: "prometheus-postgres-exporter",
    nginx: "prometheus-nginx-exporter",
    blackbox: "prometheus-blackbox-exporter",
    redis: "prometheus-redis-exporter",
};

/** The arguments Debian's unit passes: ARGS from the rendered /etc/default/<unit>, as systemd splits it. */
function unitArgs(s: MonitoringSettings, unit: MonitoringUnit): string[] {
    const m = /^ARGS="(.*)"$/m.exec(renderExporterDefaults(s, unit));
    assert.ok(m, unit);
    return m[1].split(" ").filter(Boolean);
}

/** An environment file's `KEY="value"` lines, as systemd's EnvironmentFile= reads them. */
function envFile(text: string): Record<string, string> {
    return Object.fromEntries([...text.matchAll(/^(\w+)="(.*)"$/gm)].map((m) => [m[1], m[2]]));
}

describe("monitoring as the library configures it: Prometheus, Alertmanager and the exporters scrape Synapse, its workers, PostgreSQL and the node", function () {
    let pg: PgServer;
    let redis: SpawnedDaemon;
    let main: SynapseProcess;
    const workers: SynapseProcess[] = [];
    const daemons: SpawnedDaemon[] = [];
    let settings: SynapseSettings;
    let pool: WorkerPoolSettings;
    let monitoring: MonitoringSettings;
    let redisPort: number;
    const redisPassword = random();
    const exporterPassword = random();

    before(async function () {
        const busy = await Promise.all(Object.entries(EXPORTER_PORTS).map(async ([n, p]) => ((await isListening(p)) ? `${n} ${p}` : "")));
        assert.deepEqual(busy.filter(Boolean), [], "the exporters' loopback ports are taken on this machine");
        let venv: string;
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        const dir = makeTempDir("monitoring");
        const sandbox = new Sandbox();

        const started = await startRedis(dir, redisPassword, { exporterPassword });
        redis = started.daemon;
        redisPort = started.settings.port;
        const dbPassword = random();
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        const peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        const port = await freePort();
        settings = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: `http://127.0.0.1:${port}/`,
            installMethod: "pip",
            httpPort: port,
            metrics: { port: await freePort() },
            replication: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        const [reader, sender] = [await freeWorkerPorts(), await freeWorkerPorts()];
        pool = resolveWorkerPoolSettings(
            'WorkerPool "test"',
            {
                workers: [
                    { role: "federation_reader", port: reader },
                    { role: "federation_sender", port: sender },
                ],
            },
            settings,
            HOST,
        );
        const workerPeers: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: started.settings.port, tls: false }, redisPassword: true };
        sandbox.setActive();
        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database, dbPassword)],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, peers, "test"));
        await sandbox.run(workerSecretsScript(pool, settings, HOST, { replicationSecret: random(), redisPassword }));
        await sandbox.run(workerConfigScript(pool, settings, HOST, workerPeers, { component: 'WorkerPool "test"', synapsePeers: peers }));
        const f = synapseFiles(settings.paths);
        main = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `http://127.0.0.1:${port}/health`,
            cwd: settings.paths.dataDir,
            name: "main",
        });
        for (const w of pool.workers)
            workers.push(
                await startWorker({
                    venv,
                    configPaths: [f.homeserverYaml, f.confD + "/", workerFiles(settings.paths).worker(w.name)],
                    healthUrl: `http://127.0.0.1:${w.port}/health`,
                    cwd: settings.paths.dataDir,
                    name: w.name,
                }),
            );

        monitoring = resolveMonitoringSettings(
            'MonitoringServer "test"',
            { prometheusPort: await freePort(), alertmanagerPort: await freePort() },
            { synapse: settings, host: 'Host "vm"', postgres: { port: pg.port, database: pgSettings.database }, redis: { port: redisPort, tls: false } },
        );

        // PostgreSQL: the exporter's role (the server step's SQL) and peer authentication on the socket, as Debian's pg_hba has it.
        await pg.runAsSuperuser(POSTGRES_EXPORTER_ROLE_SQL);
        const hba = path.join(pg.dataDir, "pg_hba.conf");
        fs.writeFileSync(hba, fs.readFileSync(hba, "utf8").replace(/^local +all +all /m, "local   all       prometheus               peer\n$&"));
        await pg.runAsSuperuser("SELECT pg_reload_conf();");
        // The exporter (user prometheus) must reach the socket in the test's directory.
        fs.chmodSync(pg.socketDir, 0o711);

        const mdir = makeTempDir("monitoring-files", { owner: "prometheus" });
        const write = (name: string, text: string) => {
            const p = path.join(mdir, name);
            fs.writeFileSync(p, text);
            fs.chmodSync(p, 0o644);
            return p;
        };
        fs.mkdirSync(path.join(mdir, "rules"));
        fs.chmodSync(path.join(mdir, "rules"), 0o755);
        write("rules/pulumi-matrix-alerts.yml", renderAlertRules());
        const files: Record<string, string> = {
            [MONITORING_FILES.prometheus]: write(
                "prometheus.yml",
                renderPrometheusConfig(monitoring, settings, pool).replace(MONITORING_FILES.rulesDir, path.join(mdir, "rules")),
            ),
            [MONITORING_FILES.alertmanager]: write("alertmanager.yml", renderAlertmanagerConfig(monitoring)),
            [MONITORING_FILES.blackbox]: write("blackbox.yml", renderBlackboxConfig(monitoring)),
        };
        // The rendered arguments, with the config files where this test wrote them and the data in its directory.
        // The backup service's gauge in the textfile collector's directory (here the test's own): the last backup 40 hours ago.
        const textfile = path.join(mdir, "textfile");
        fs.mkdirSync(textfile);
        fs.chmodSync(textfile, 0o755);
        fs.writeFileSync(
            path.join(textfile, "matrix_backup.prom"),
            `# TYPE matrix_backup_last_success_timestamp_seconds gauge\nmatrix_backup_last_success_timestamp_seconds ${Math.floor(Date.now() / 1000) - 40 * 3600}\n`,
        );
        const args = (unit: MonitoringUnit, extra: string[] = []) => [
            ...unitArgs(monitoring, unit)
                .map((a) => a.replace(/=(\/etc\/pulumi-matrix\/monitoring\/[^ ]+)$/, (m, p: string) => `=${files[p] ?? p}`))
                .map((a) => a.replace(`=${MONITORING_FILES.textfileDir}`, `=${textfile}`)),
            ...extra,
        ];
        const postgresEnv = envFile(renderPostgresExporterEnv(monitoring));
        postgresEnv.DATA_SOURCE_NAME = postgresEnv.DATA_SOURCE_NAME.replace("host=/var/run/postgresql", `host=${pg.socketDir}`);

        const start = (unit: MonitoringUnit, extra: string[] = [], env: Record<string, string> = {}) =>
            daemons.push(
                spawnDaemon(BINARIES[unit], args(unit, extra), { name: unit, user: "prometheus", cwd: mdir, env: { PATH: process.env.PATH, ...env } }),
            );
        start("node");
        start("postgres", [], postgresEnv);
        start("redis", [], envFile(renderRedisExporterEnv(exporterPassword)));
        start("blackbox");
        start("alertmanager", [`--storage.path=${mdir}/alertmanager`]);
        start("prometheus", [`--storage.tsdb.path=${mdir}/data`]);
    });

    after(async function () {
        for (const d of daemons.reverse()) await d.stop("SIGTERM", 10_000);
        for (const w of workers) await w.stop();
        await main?.stop();
        await redis?.stop("SIGTERM", 5000);
        await pg?.stop();
    });

    /** redis-cli against the test's Redis, its output (errors included). */
    async function redisCli(args: string[]): Promise<string> {
        const r = await run("redis-cli", ["--no-auth-warning", "-p", String(redisPort), ...args], { allowFailure: true, timeoutMs: 10_000 });
        return r.stdout + r.stderr;
    }

    /** An instant query's result as `label=value` strings. */
    async function query(q: string, label: (m: Record<string, string>) => string): Promise<string[]> {
        const r = await fetch(`http://127.0.0.1:${monitoring.prometheusPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
        if (!r?.ok) return [];
        const body = (await r.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
        return body.data.result.map((x) => `${label(x.metric)}=${x.value[1]}`).sort();
    }

    it("every target is up: Synapse's main process and each worker, the exporters, Prometheus and Alertmanager", async function () {
        const expected = [
            "synapse/master1",
            "synapse_workers/federation_reader1",
            "synapse_workers/federation_sender1",
            "node/node",
            "postgres/postgres",
            "redis/redis",
            "synapse_health/synapse_health",
            "prometheus/prometheus",
            "alertmanager/alertmanager",
        ]
            .map((e) => `${e}=1`)
            .sort();
        let seen: string[] = [];
        for (let i = 0; i < 90 && seen.join() !== expected.join(); i++) {
            await sleep(1000);
            // The job label of Synapse's targets is the process's (master, a role); the scrape job's name tells them apart.
            const up = await query("up", (m) => (m.index ? `${m.job === "master" ? "synapse" : "synapse_workers"}/${m.job}${m.index}` : `${m.job}/${m.job}`));
            seen = up;
        }
        assert.deepEqual(seen, expected, daemons.map((d) => `${d.name}: ${d.tail(5)}`).join("\n"));
    });

    it("the PostgreSQL exporter reaches its server, and blackbox's probe gets OK from Synapse's /health", async function () {
        for (const [q, name] of [
            ["pg_up", "PostgreSQL"],
            ['probe_success{job="synapse_health"}', "Synapse's /health"],
        ] as const) {
            let v: string[] = [];
            for (let i = 0; i < 60 && v.join() !== "x=1"; i++) {
                v = await query(q, () => "x");
                if (v.join() !== "x=1") await sleep(1000);
            }
            assert.deepEqual(v, ["x=1"], `${name}: ${daemons.map((d) => `${d.name}: ${d.tail(5)}`).join("\n")}`);
        }
    });

    it("the Redis exporter reaches Redis as its own ACL user: redis_up 1 through Prometheus, and Redis's ACL LOG has no denial but SLOWLOG GET", async function () {
        let v: string[] = [];
        for (let i = 0; i < 60 && v.join() !== "x=1"; i++) {
            v = await query('redis_up{job="redis"}', () => "x");
            if (v.join() !== "x=1") await sleep(1000);
        }
        assert.deepEqual(v, ["x=1"], daemons.map((d) => `${d.name}: ${d.tail(5)}`).join("\n"));
        // Its metrics come from INFO and CONFIG GET (the default user may run neither: -@dangerous).
        assert.deepEqual(await query("redis_config_maxmemory", () => "x"), [`x=${256 * 1024 * 1024}`]);
        assert.equal((await query("redis_connected_clients", () => "x")).length, 1);
        // Every command the exporter sent on its scrapes so far was allowed, but SLOWLOG GET (kept from it: it holds commands' arguments).
        const log = await redisCli(["--user", "default", "--pass", redisPassword, "ACL", "LOG"]);
        // redis-cli prints each entry's fields as name and value lines: object (the command), then username.
        const lines = log.split("\n");
        const denied = lines.flatMap((l, i) => (l === "object" ? [`${lines[lines.indexOf("username", i) + 1]} ${lines[i + 1]}`] : []));
        assert.deepEqual(
            denied.filter((d) => d !== `${REDIS_EXPORTER_USER.name} slowlog|get`),
            [],
            log,
        );
    });

    it("the exporter's Redis user can read no key, write nothing, and run no dangerous command", async function () {
        const asExporter = (args: string[]) => redisCli(["--user", REDIS_EXPORTER_USER.name, "--pass", exporterPassword, ...args]);
        assert.match(await asExporter(["PING"]), /NOPERM/);
        for (const cmd of [
            ["SET", "k", "v"],
            ["GET", "k"],
            ["KEYS", "*"],
            ["SCAN", "0"],
            ["FLUSHALL"],
            ["CONFIG", "SET", "maxmemory", "1"],
            ["PUBLISH", "c", "m"],
            ["SLOWLOG", "GET"],
            ["ACL", "LIST"],
        ])
            assert.match(await asExporter(cmd), /NOPERM/, cmd.join(" "));
        assert.match(await asExporter(["INFO", "server"]), /redis_version:/);
        // A wrong password is refused.
        assert.match(await redisCli(["--user", REDIS_EXPORTER_USER.name, "--pass", "wrong-password-0000", "INFO"]), /WRONGPASS|invalid username-password/);
    });

    it("a backup older than 36 hours, read from the textfile collector, makes BackupTooOld pending", async function () {
        let v: string[] = [];
        for (let i = 0; i < 60 && v.join() !== "pending=1"; i++) {
            v = await query('ALERTS{alertname="BackupTooOld"}', (m) => m.alertstate);
            if (v.join() !== "pending=1") await sleep(1000);
        }
        assert.deepEqual(v, ["pending=1"]);
        // Nothing else is wrong on this server.
        assert.deepEqual(await query('ALERTS{alertname!="BackupTooOld"}', (m) => m.alertname), []);
    });

    it("Prometheus loaded the library's alerts and knows Alertmanager", async function () {
        const rules = (await (await fetch(`http://127.0.0.1:${monitoring.prometheusPort}/api/v1/rules`)).json()) as {
            data: { groups: { name: string; rules: { name: string; health: string }[] }[] };
        };
        const group = rules.data.groups.find((g) => g.name === "pulumi-matrix");
        assert.ok(group, JSON.stringify(rules.data.groups.map((g) => g.name)));
        assert.equal(group.rules.length, 9);
        let active: string[] = [];
        for (let i = 0; i < 30 && !active.length; i++) {
            const am = (await (await fetch(`http://127.0.0.1:${monitoring.prometheusPort}/api/v1/alertmanagers`)).json()) as {
                data: { activeAlertmanagers: { url: string }[] };
            };
            active = am.data.activeAlertmanagers.map((a) => a.url);
            if (!active.length) await sleep(1000);
        }
        assert.deepEqual(active, [`http://127.0.0.1:${monitoring.alertmanagerPort}/api/v2/alerts`]);
    });
});

describe("nginx's status page and the nginx exporter, as the server step writes them", function () {
    const daemons: SpawnedDaemon[] = [];
    after(async function () {
        for (const d of daemons.reverse()) await d.stop("SIGTERM", 10_000);
    });

    it("nginx serves stub_status on loopback from the rendered file, and the exporter reads it: nginx_up == 1", async function () {
        assert.equal(await isListening(EXPORTER_PORTS.nginx), false, "the nginx exporter's port is taken on this machine");
        const synapse = resolveSynapseSettings("t", { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" });
        const proxy = resolveReverseProxySettings("p", { acme: { email: "admin@example.com" } }, synapse);
        const s = resolveMonitoringSettings(
            "t",
            { nginxStatusPort: await freePort() },
            { synapse, host: 'Host "vm"', proxy: { domain: proxy.homeserverDomain, address: "127.0.0.1", acme: proxy.acme } },
        );
        const dir = makeTempDir("monitoring-nginx");
        fs.writeFileSync(path.join(dir, "status.conf"), renderNginxStatus(s));
        // nginx.conf's http block includes conf.d/*.conf on Debian; here it includes the one file.
        const conf = path.join(dir, "nginx.conf");
        const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `    ${t}_temp_path ${dir}/${t};`).join("\n");
        fs.writeFileSync(
            conf,
            `daemon off;\npid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n    access_log off;\n${temp}\n    include ${dir}/status.conf;\n}\n`,
        );
        const check = await run("nginx", ["-t", "-q", "-c", conf, "-p", dir], { allowFailure: true });
        assert.equal(check.code, 0, check.stdout + check.stderr);
        daemons.push(spawnDaemon("nginx", ["-c", conf, "-p", dir], { name: "nginx" }));
        daemons.push(spawnDaemon(BINARIES.nginx, unitArgs(s, "nginx"), { name: "nginx-exporter", user: "prometheus" }));
        let metrics = "";
        for (let i = 0; i < 50 && !/^nginx_up 1$/m.test(metrics); i++) {
            await sleep(200);
            metrics = await fetch(`http://127.0.0.1:${EXPORTER_PORTS.nginx}/metrics`)
                .then((r) => r.text())
                .catch(() => "");
        }
        assert.match(metrics, /^nginx_up 1$/m, daemons.map((d) => `${d.name}: ${d.tail(5)}`).join("\n"));
        assert.match(metrics, /^nginx_connections_accepted \d+/m);
        // Loopback only: the status page answers nothing else.
        assert.equal((await fetch(`http://127.0.0.1:${s.proxy!.statusPort}/`)).status, 404);
    });
});
