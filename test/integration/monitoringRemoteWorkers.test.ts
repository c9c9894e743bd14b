// Monitoring of a worker on another host (issue 23), against the real
// programs: two "hosts" joined by a private network, this machine's network
// namespace (Synapse's host: the main process, PostgreSQL and Redis from
// Debian, Debian's Prometheus with the rendered config and alert rules) and a
// network namespace of the test's own (the worker host: a federation reader
// from PyPI, started with the files the WorkerPool's scripts wrote for that
// host, behind the host's nftables ruleset with the pool's fragment).
//
// The pool has `metricsScrapedFrom` Synapse's host: the worker's metrics
// listener binds the worker host's private address, the fragment opens it
// to Synapse's host's address alone (a probe from another address of the
// same network is dropped, and answered before the ruleset is loaded),
// Prometheus scrapes it with the labels of every worker target (`up == 1`),
// and once the worker stops `up == 0` and the TargetDown alert is pending
// for it. The worker host's node exporter (Debian's, run in the namespace
// with the arguments the pool's script wrote) listens on the same private
// address, opened to Synapse's host alone, and Prometheus scrapes it with
// the `host` label the disk and failed-unit alerts name; without
// `metricsScrapedFrom` the script takes its arguments away and stops it.
//
// The scripts run as on a VM, as root, each host's in a mount namespace of
// its own (state directory, units and /etc/pulumi-matrix are temp dirs; the
// two hosts' Synapse configs are in two directories), with systemctl and curl
// stand-ins; the processes are started by the test and stopped after it, and
// the namespace is removed.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { parse } from "yaml";

import { MONITORING_FILES, resolveMonitoringSettings } from "../../src/model/monitoring";
import { NODE_EXPORTER_PORT, NODE_EXPORTER_UNIT } from "../../src/model/nodeExporter";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveRedisSettings } from "../../src/model/redis";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, workerFiles, WorkerPeers, WorkerPoolSettings } from "../../src/model/workers";
import { firewallFragmentPath } from "../../src/provision/host";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../src/provision/workers";
import { STATE_DIR } from "../../src/render/drift";
import { FIREWALL_FRAGMENT_DIR, renderFirewall, renderSshPorts, SSH_PORTS_FILE } from "../../src/render/firewall";
import { renderAlertRules, renderPrometheusConfig } from "../../src/render/monitoring";
import { nodeExporterArgs } from "../../src/render/nodeExporter";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort, freeWorkerPorts, waitForHttp } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { startRedis, type TestRedis } from "../support/integration/redis";
import { addClientNamespace } from "../support/integration/remotePeer";
import { ServiceSandbox } from "../support/integration/serviceSandbox";
import { startSynapse, startWorker, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");
const MAIN_HOST = 'Host "vm"';
const WORKER_HOST = 'Host "w2"';
const COMPONENT = 'WorkerPool "test"';
const NS = `pm-monrw-${process.pid}`;
const HOST_IF = `pmmrw${process.pid % 100000}`;
/** Synapse's host's private address (here), the worker host's (in the namespace), and another address of the network (here). */
const MAIN_ADDR = "10.213.9.1";
const WORKER_ADDR = "10.213.9.2";
const OTHER_ADDR = "10.213.9.5";

/** One host's scripts, as on its VM: a mount namespace with its own state, units and /etc/pulumi-matrix. */
class Sandbox extends ServiceSandbox {
    constructor(name: string) {
        super(
            makeTempDir(`monrw-${name}`),
            [
                { real: STATE_DIR, name: "state" },
                { real: "/etc/systemd/system", name: "units" },
                { real: path.dirname(FIREWALL_FRAGMENT_DIR), name: "pulumi-matrix" },
                // The node exporter's arguments (a copy: the machine's own stay as they are).
                { real: "/etc/default", name: "default", copy: true },
            ],
            120_000,
        );
        this.writeStandIns({ recordFlags: true, journal: "echo journal" });
    }
}

type Sample = { metric: Record<string, string>; value: [number, string] };

describe("monitoring scrapes a worker on another host over the private network (metricsScrapedFrom, issue 23)", function () {
    let pg: PgServer;
    let redis: TestRedis;
    let main: SynapseProcess;
    let worker: SynapseProcess | undefined;
    let prometheus: SpawnedDaemon | undefined;
    let nodeExporter: SpawnedDaemon | undefined;
    let workerPeers: WorkerPeers;
    let peers: SynapsePeers;
    let pool: WorkerPoolSettings;
    let there: SynapseSettings;
    let workerSandbox: Sandbox;
    let promPort: number;
    let metricsPort: number;

    before(async function () {
        await addClientNamespace(NS, HOST_IF, MAIN_ADDR, WORKER_ADDR);
        // A third address on the same network, for a probe from a host the ruleset does not name.
        await run("ip", ["addr", "add", `${OTHER_ADDR}/32`, "dev", HOST_IF]);
        await run("ip", ["-n", NS, "route", "add", `${OTHER_ADDR}/32`, "dev", "v1"]);

        let venv: string;
        [pg, venv] = await Promise.all([startPostgres({ listenAddresses: ["127.0.0.1", MAIN_ADDR] }), ensureSynapseVenv()]);
        const dir = makeTempDir("monrw");
        const redisPassword = random();
        redis = await startRedis(dir, redisPassword, {
            settings: resolveRedisSettings("test", { port: await freePort(), bindAddresses: ["127.0.0.1", MAIN_ADDR] }),
        });

        const dbPassword = random();
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        // Every Synapse process dials PostgreSQL at Synapse's host's private address (the main one from that address).
        const hba = path.join(pg.dataDir, "pg_hba.conf");
        for (const a of [MAIN_ADDR, WORKER_ADDR]) fs.appendFileSync(hba, `host    all       all       ${a}/32   scram-sha-256\n`);
        await pg.runAsSuperuser("SELECT pg_reload_conf();");
        peers = { database: { host: MAIN_ADDR, port: pg.port, database: pgSettings.database, user: pgSettings.user } };

        const [port, mainMetricsPort, replicationPort] = [await freePort(), await freePort(), await freePort()];
        const hostSettings = (name: string) =>
            resolveSynapseSettings("test", {
                serverName: "matrix.test",
                publicBaseUrl: `http://127.0.0.1:${port}/`,
                installMethod: "pip",
                httpPort: port,
                metrics: { port: mainMetricsPort },
                replication: { port: replicationPort, bindAddresses: ["127.0.0.1", MAIN_ADDR] },
                paths: { configDir: `${dir}/${name}/etc`, dataDir: `${dir}/${name}/data`, venvDir: venv, user: "root" },
            });
        // The two hosts' Synapse configs, as on two VMs.
        const here = hostSettings("vm");
        there = hostSettings("w2");
        const base = await freeWorkerPorts();
        metricsPort = base + 2000;
        pool = resolveWorkerPoolSettings(
            COMPONENT,
            { instances: [{ role: "federation_reader", port: base, host: WORKER_HOST }], metricsScrapedFrom: MAIN_HOST },
            here,
            MAIN_HOST,
        );
        workerPeers = {
            privateAddresses: { [MAIN_HOST]: MAIN_ADDR, [WORKER_HOST]: WORKER_ADDR },
            redis: { host: MAIN_ADDR, port: redis.settings.port, tls: false },
            redisPassword: true,
        };

        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        const synapseSecrets = {
            macaroonSecretKey: random(),
            formSecret: random(),
            registrationSharedSecret: random(),
            signingKey: key.fileLine,
            files: [pgpassSecretFile(peers.database!, dbPassword)],
        };
        const workerSecrets = { replicationSecret: random(), redisPassword };
        // Synapse's host: Synapse's steps, then the pool's (no worker here).
        const mainSandbox = new Sandbox("vm");
        mainSandbox.setActive();
        await mainSandbox.run(synapseSecretsScript(here, synapseSecrets));
        await mainSandbox.run(synapseConfigScript(here, peers, "test"));
        await mainSandbox.run(workerSecretsScript(pool, here, MAIN_HOST, workerSecrets));
        await mainSandbox.run(workerConfigScript(pool, here, MAIN_HOST, workerPeers, { component: COMPONENT, synapsePeers: peers }));
        // The worker host's node exporter runs in its namespace (its unit there, systemd's part played by the test) with the
        // arguments the pool renders for it; the first test checks they are the ones the config script wrote.
        nodeExporter = spawnDaemon("prometheus-node-exporter", nodeExporterArgs(WORKER_ADDR), { name: "node-exporter-w2", netns: NS, cwd: dir });
        const exporter = nodeExporter;
        await waitForHttp(`http://${WORKER_ADDR}:${NODE_EXPORTER_PORT}/metrics`, {
            timeoutMs: 30_000,
            accept: (status, body) => status === 200 && body.includes("node_exporter_build_info"),
            abort: () => (exporter.hasExited() ? `the node exporter exited: ${exporter.tail(20)}` : undefined),
        });
        // The worker host: Synapse's secrets (as the pool's step there writes them), the pool's secrets and config.
        workerSandbox = new Sandbox("w2");
        workerSandbox.setActive();
        await workerSandbox.run(synapseSecretsScript(there, synapseSecrets));
        await workerSandbox.run(workerSecretsScript(pool, there, WORKER_HOST, workerSecrets));
        await workerSandbox.run(workerConfigScript(pool, there, WORKER_HOST, workerPeers, { component: COMPONENT, synapsePeers: peers }));

        const f = synapseFiles(here.paths);
        main = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `http://127.0.0.1:${port}/health`,
            cwd: here.paths.dataDir,
            name: "main",
        });
        const g = synapseFiles(there.paths);
        const w = pool.workers[0];
        worker = await startWorker({
            venv,
            configPaths: [g.homeserverYaml, g.confD + "/", workerFiles(there.paths).worker(w.name)],
            healthUrl: `http://${WORKER_ADDR}:${w.port}/health`,
            cwd: there.paths.dataDir,
            name: w.name,
            netns: NS,
        });

        // Prometheus on Synapse's host with the rendered config and alert rules.
        promPort = await freePort();
        const monitoring = resolveMonitoringSettings(
            'MonitoringServer "test"',
            { prometheusPort: promPort, alertmanagerPort: await freePort() },
            { synapse: here, host: MAIN_HOST },
        );
        const promDir = makeTempDir("monrw-prometheus");
        fs.mkdirSync(path.join(promDir, "rules"));
        fs.writeFileSync(path.join(promDir, "rules", "pulumi-matrix-alerts.yml"), renderAlertRules());
        const config = path.join(promDir, "prometheus.yml");
        fs.writeFileSync(
            config,
            renderPrometheusConfig(monitoring, here, pool, workerPeers.privateAddresses).replace(MONITORING_FILES.rulesDir, path.join(promDir, "rules")),
        );
        const check = await run("promtool", ["check", "config", config], { allowFailure: true });
        assert.equal(check.code, 0, check.stdout + check.stderr);
        prometheus = spawnDaemon(
            "prometheus",
            [`--config.file=${config}`, `--storage.tsdb.path=${promDir}/data`, `--web.listen-address=127.0.0.1:${promPort}`],
            { name: "prometheus", cwd: promDir },
        );
    });

    after(async function () {
        await prometheus?.stop("SIGTERM", 10_000);
        await nodeExporter?.stop("SIGTERM", 5000);
        await worker?.stop();
        await main?.stop();
        await redis?.daemon.stop("SIGTERM", 5000);
        await pg?.stop();
        // The namespace and its link go with the suite's cleanups (addClientNamespace registered them).
    });

    /** A probe of the worker's metrics (or the host's node exporter) from this host, from `source`: the HTTP status, or 0 when nothing answered. */
    async function probeFrom(source: string, url = `http://${WORKER_ADDR}:${metricsPort}/_synapse/metrics`): Promise<number> {
        const r = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source, "--max-time", "3", url], { allowFailure: true });
        return Number(r.stdout.trim()) || 0;
    }

    /** Prometheus's answer to an instant query. */
    async function query(q: string): Promise<Sample[]> {
        const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
        if (!r?.ok) return [];
        return ((await r.json()) as { data: { result: Sample[] } }).data.result;
    }

    /** Polls `q` until `done` holds for its samples (scrapes and rule evaluations come every 15 s); returns the last samples. */
    async function waitFor(q: string, done: (s: Sample[]) => boolean, seconds = 90): Promise<Sample[]> {
        let last: Sample[] = [];
        for (let i = 0; i < seconds; i++) {
            last = await query(q);
            if (done(last)) return last;
            await sleep(1000);
        }
        return last;
    }

    it("the worker host's files: the metrics listener binds its private address, and its fragment opens that port to Synapse's host alone", function () {
        const file = parse(fs.readFileSync(workerFiles(there.paths).worker(pool.workers[0].name), "utf8")) as {
            worker_listeners: { type: string; port: number; bind_addresses: string[] }[];
        };
        assert.deepEqual(
            file.worker_listeners.filter((l) => l.type === "metrics"),
            [{ type: "metrics", port: metricsPort, bind_addresses: [WORKER_ADDR] }],
        );
        const fragment = fs.readFileSync(workerSandbox.hostPath(firewallFragmentPath(COMPONENT)), "utf8");
        assert.match(fragment, new RegExp(`ip saddr \\{ ${MAIN_ADDR.replace(/\./g, "\\.")}/32 \\} tcp dport ${metricsPort} accept`));
        // Its node exporter: the arguments the running one has (its private address alone), opened to Synapse's host alone.
        const defaults = fs.readFileSync(workerSandbox.hostPath(`/etc/default/${NODE_EXPORTER_UNIT}`), "utf8");
        assert.deepEqual(/^ARGS="(.*)"$/m.exec(defaults)?.[1].split(" "), nodeExporterArgs(WORKER_ADDR));
        assert.match(fragment, new RegExp(`ip saddr \\{ ${MAIN_ADDR.replace(/\./g, "\\.")}/32 \\} tcp dport ${NODE_EXPORTER_PORT} accept`));
    });

    it("the worker host's ruleset with the fragment: its metrics answer Synapse's host and drop any other address of the network", async function () {
        // Without a firewall both addresses reach the listener: what follows is the ruleset's doing.
        const node = `http://${WORKER_ADDR}:${NODE_EXPORTER_PORT}/metrics`;
        assert.equal(await probeFrom(OTHER_ADDR), 200, "the listener answers before the ruleset is loaded");
        assert.equal(await probeFrom(OTHER_ADDR, node), 200, "the node exporter answers before the ruleset is loaded");
        const fw = makeTempDir("monrw-nft");
        fs.writeFileSync(path.join(fw, "ssh-ports.nft"), renderSshPorts("22"));
        fs.writeFileSync(
            path.join(fw, "firewall.nft"),
            renderFirewall([])
                .replace(SSH_PORTS_FILE, path.join(fw, "ssh-ports.nft"))
                .replace(FIREWALL_FRAGMENT_DIR, workerSandbox.hostPath(FIREWALL_FRAGMENT_DIR)),
        );
        await run("ip", ["netns", "exec", NS, "nft", "-f", path.join(fw, "firewall.nft")]);
        assert.equal(await probeFrom(MAIN_ADDR), 200);
        assert.equal(await probeFrom(OTHER_ADDR), 0, "an address other than Synapse's host's is dropped");
        assert.equal(await probeFrom(MAIN_ADDR, node), 200);
        assert.equal(await probeFrom(OTHER_ADDR, node), 0, "the node exporter: an address other than Synapse's host's is dropped");
    });

    it("Prometheus on Synapse's host scrapes the worker at its private address with the labels of every worker: up == 1", async function () {
        const samples = await waitFor(`up{job="federation_reader"}`, (s) => s.length === 1 && s[0].value[1] === "1");
        assert.equal(samples.length, 1, prometheus!.tail(20));
        const m = samples[0].metric;
        assert.deepEqual([m.job, m.index, m.instance, samples[0].value[1]], ["federation_reader", "1", "matrix.test", "1"]);
        // Where Prometheus scraped it: the worker host's private address.
        const targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets?state=active`)).json()) as {
            data: { activeTargets: { labels: Record<string, string>; scrapeUrl: string; health: string }[] };
        };
        assert.deepEqual(
            targets.data.activeTargets.filter((x) => x.labels.job === "federation_reader").map((x) => [x.scrapeUrl, x.health]),
            [[`http://${WORKER_ADDR}:${metricsPort}/_synapse/metrics`, "up"]],
        );
        // Synapse's own metrics of that process came over the network.
        const metrics = await waitFor(`synapse_build_info{job="federation_reader"}`, (s) => s.length > 0, 30);
        assert.equal(metrics.length, 1);
        const master = await waitFor(`up{job="master"}`, (s) => s.length === 1 && s[0].value[1] === "1");
        assert.equal(master[0]?.value[1], "1");
    });

    it("Prometheus scrapes the worker host's node exporter at its private address, labelled with that host: up == 1, its disks reported", async function () {
        const host = `host=${JSON.stringify(WORKER_HOST)}`;
        const up = await waitFor(`up{job="node", ${host}}`, (s) => s.length === 1 && s[0].value[1] === "1");
        assert.equal(up[0]?.value[1], "1", prometheus!.tail(20));
        assert.equal(up[0].metric.instance, "matrix.test");
        const targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets?state=active`)).json()) as {
            data: { activeTargets: { labels: Record<string, string>; scrapeUrl: string }[] };
        };
        assert.deepEqual(
            targets.data.activeTargets.filter((x) => x.labels.host === WORKER_HOST).map((x) => x.scrapeUrl),
            [`http://${WORKER_ADDR}:${NODE_EXPORTER_PORT}/metrics`],
        );
        // What DiskAlmostFull reads, for that host.
        const disks = await waitFor(`node_filesystem_size_bytes{${host}}`, (s) => s.length > 0, 30);
        assert.ok(disks.length > 0, "no filesystem of the worker host reported");
    });

    it("the worker stopped: up == 0 for it, and the TargetDown alert is pending for that worker", async function () {
        await worker!.stop();
        worker = undefined;
        const down = await waitFor(`up{job="federation_reader"}`, (s) => s.length === 1 && s[0].value[1] === "0");
        assert.equal(down[0]?.value[1], "0", prometheus!.tail(20));
        const alerts = await waitFor(`ALERTS{alertname="TargetDown", job="federation_reader"}`, (s) => s.length > 0);
        assert.equal(alerts.length, 1, JSON.stringify(alerts));
        assert.deepEqual([alerts[0].metric.alertstate, alerts[0].metric.index, alerts[0].metric.instance], ["pending", "1", "matrix.test"]);
    });

    it("metricsScrapedFrom removed: the worker host's script takes the node exporter's arguments away and stops it, once", async function () {
        const unscraped = resolveWorkerPoolSettings(
            COMPONENT,
            { instances: [{ role: "federation_reader", port: pool.workers[0].port, host: WORKER_HOST }] },
            there,
            MAIN_HOST,
        );
        const config = () => workerConfigScript(unscraped, there, WORKER_HOST, workerPeers, { component: COMPONENT, synapsePeers: peers });
        workerSandbox.reset();
        await workerSandbox.run(config());
        assert.equal(fs.existsSync(workerSandbox.hostPath(`/etc/default/${NODE_EXPORTER_UNIT}`)), false);
        assert.ok(workerSandbox.calls().includes(`disable -q --now ${NODE_EXPORTER_UNIT}.service`), workerSandbox.calls().join("\n"));
        const fragment = fs.readFileSync(workerSandbox.hostPath(firewallFragmentPath(COMPONENT)), "utf8");
        assert.doesNotMatch(fragment, new RegExp(`dport ${NODE_EXPORTER_PORT} `));
        // Nothing more to take away on the next run.
        workerSandbox.reset();
        await workerSandbox.run(config());
        assert.ok(!workerSandbox.calls().some((c) => c.includes(NODE_EXPORTER_UNIT)), workerSandbox.calls().join("\n"));
    });
});
