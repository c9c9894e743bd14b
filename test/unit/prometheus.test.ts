import * as assert from "node:assert/strict";

import { parse } from "yaml";

import { resolveSynapseSettings } from "../../src/model/synapse";
import { synapseConfigScript } from "../../src/provision/synapse";
import { workerConfigScript } from "../../src/provision/workers";
import {
    PROMETHEUS_SCRAPE_FILES,
    renderHostScrapeConfig,
    renderSynapseScrapeConfig,
    renderWorkerScrapeConfig,
    synapseMainTargets,
    workerTargets,
} from "../../src/render/prometheus";
import { golden } from "../support/golden";
import {
    GOLDEN_PEERS,
    GOLDEN_REMOTE_WORKER_PEERS,
    goldenRemoteWorkerPool,
    goldenScrapedRemoteWorkerPool,
    goldenSynapseSettings,
    goldenWorkerPool,
    goldenWorkerSynapse,
} from "../support/unit/fixtures";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { valueOf } from "../support/unit/mocks";
import { runProgram } from "../support/unit/programRun";

type Scrape = { scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[]; labels: Record<string, string> }[] }[] };
const targetsOf = (yaml: string): { job_name: string; target: string; instance: string; job: string; index: string }[] =>
    (parse(yaml) as Scrape).scrape_configs.flatMap((j) =>
        j.static_configs.map((c) => ({ job_name: j.job_name, target: c.targets[0], instance: c.labels.instance, job: c.labels.job, index: c.labels.index })),
    );

describe("Prometheus scrape files for Synapse and its workers (issue 23)", () => {
    it("the main process: its metrics listener, labelled as Synapse's metrics guide does", () => {
        const yaml = renderSynapseScrapeConfig(goldenSynapseSettings());
        const doc = parse(yaml) as Scrape;
        assert.equal(doc.scrape_configs[0].metrics_path, "/_synapse/metrics");
        assert.deepEqual(targetsOf(yaml), [{ job_name: "synapse", target: "127.0.0.1:9000", instance: "example.com", job: "master", index: "1" }]);
    });

    it("a main process bound elsewhere is dialed where it listens (a wildcard on loopback, IPv6 in brackets)", () => {
        const at = (bindAddress: string) => synapseMainTargets(resolveSynapseSettings("t", { serverName: "example.com", metrics: { bindAddress } }))[0].target;
        assert.equal(at("10.0.0.4"), "10.0.0.4:9000");
        assert.equal(at("0.0.0.0"), "127.0.0.1:9000");
        assert.equal(at("::1"), "[::1]:9000");
    });

    it("no job when Synapse's metrics are disabled, and the file says why", () => {
        const yaml = renderSynapseScrapeConfig(resolveSynapseSettings("t", { serverName: "example.com", metrics: { enabled: false } }));
        assert.deepEqual((parse(yaml) as Scrape).scrape_configs, []);
        assert.match(yaml, /metrics are disabled/);
    });

    it("every worker's metrics listener (HTTP port + 2000, loopback), indexed within its role", () => {
        const pool = goldenWorkerPool();
        const targets = workerTargets(pool, goldenWorkerSynapse(), pool.mainHost);
        assert.equal(targets.length, pool.workers.length);
        for (const w of pool.workers) {
            const t = targets.find((x) => x.target === `127.0.0.1:${w.port + 2000}`);
            assert.ok(t, `${w.name} has no target`);
            assert.equal(t.labels.job, w.role);
            assert.equal(t.labels.instance, "example.com");
        }
        assert.deepEqual(
            targets.filter((t) => t.labels.job === "federation_reader").map((t) => t.labels.index),
            ["1", "2"],
        );
    });

    it("workers on another host are in that host's file, never as unreachable targets in Synapse's host's", () => {
        const pool = goldenRemoteWorkerPool();
        const s = goldenWorkerSynapse();
        const here = renderHostScrapeConfig(s, pool);
        assert.deepEqual(
            targetsOf(here).map((t) => `${t.job}${t.index}@${t.target}`),
            ["master1@127.0.0.1:9000", `federation_sender1@127.0.0.1:${pool.workers[0].port + 2000}`],
        );
        assert.match(
            here,
            /Workers on Host "w2" listen on its loopback: scrape them there \(\/etc\/pulumi-matrix\/prometheus\/synapse-workers\.yml on that host\)/,
        );
        const there = targetsOf(renderWorkerScrapeConfig(pool, s, 'Host "w2"')!);
        assert.deepEqual(
            there.map((t) => `${t.job}${t.index}`),
            ["federation_reader1", "federation_reader2", "event_persister1"],
        );
        assert.ok(there.every((t) => t.target.startsWith("127.0.0.1:")));
    });

    it("with metricsScrapedFrom Synapse's host: its file reaches every worker, each host's file lists its own at the address they bind", () => {
        const pool = goldenScrapedRemoteWorkerPool();
        const s = goldenWorkerSynapse();
        const addr = (h: string) => GOLDEN_REMOTE_WORKER_PEERS.privateAddresses[h];
        const here = renderHostScrapeConfig(s, pool, addr);
        assert.deepEqual(
            targetsOf(here).map((t) => `${t.job ?? t.job_name}${t.index ?? ""}@${t.target}`),
            [
                "master1@127.0.0.1:9000",
                "federation_reader1@10.0.0.6:10100",
                "federation_reader2@10.0.0.6:10101",
                "federation_sender1@127.0.0.1:10120",
                "event_persister1@10.0.0.6:10200",
                // The worker host's node exporter, on the same address (its disks and failed units).
                "node@10.0.0.6:9100",
            ],
        );
        const node = (parse(here) as Scrape).scrape_configs.find((j) => j.job_name === "node")!;
        assert.equal(node.metrics_path, "/metrics");
        assert.deepEqual(node.static_configs[0].labels, { instance: "example.com", host: 'Host "w2"' });
        assert.match(here, /Workers on Host "w2" and its node exporter are reached at its private address, opened to this host alone/);
        assert.doesNotMatch(here, /listen on its loopback/);
        const there = renderWorkerScrapeConfig(pool, s, 'Host "w2"', addr)!;
        assert.deepEqual(
            targetsOf(there).map((t) => t.target),
            ["10.0.0.6:10100", "10.0.0.6:10101", "10.0.0.6:10200"],
        );
        assert.match(there, /workers bind its private address instead, opened to Host "vm" alone/);
    });

    it("Synapse's config step writes the main file; each host's worker step writes its workers' file, and removes it when the pool is empty", () => {
        const synapse = synapseConfigScript(goldenSynapseSettings(), GOLDEN_PEERS, "golden");
        assert.match(synapse, /pm_write synapse-prometheus \/etc\/pulumi-matrix\/prometheus\/synapse\.yml 0644 root root readable/);
        const pool = goldenRemoteWorkerPool();
        const s = { ...goldenWorkerSynapse(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } };
        const remote = workerConfigScript(pool, s, 'Host "w2"', GOLDEN_REMOTE_WORKER_PEERS, { component: "golden", synapsePeers: GOLDEN_PEERS });
        assert.match(remote, new RegExp(`pm_write workers-prometheus ${PROMETHEUS_SCRAPE_FILES.workers.replace(/[./]/g, "\\$&")} 0644`));
        const empty = workerConfigScript({ ...goldenWorkerPool(), workers: [] }, goldenWorkerSynapse(), 'Host "vm"', undefined, {
            component: "golden",
            synapsePeers: GOLDEN_PEERS,
        });
        assert.doesNotMatch(empty, /pm_write workers-prometheus/);
        assert.match(empty, /pm_prune workers-prometheus/);
    });

    it("the stack exports prometheusScrapeConfig: the main process and the VM's workers", async () => {
        const { program } = await runProgram(
            {
                sshHost: "203.0.113.10",
                sshPrivateKey: TEST_SSH_KEY,
                sshHostKey: TEST_HOST_KEY,
                serverName: "example.com",
                acmeEmail: "admin@example.com",
                rtc: "none",
            },
            ["sshPrivateKey"],
        );
        const targets = targetsOf(String(await valueOf(program.prometheusScrapeConfig)));
        assert.deepEqual(
            targets.map((t) => `${t.job_name}/${t.job}${t.index}`),
            ["synapse/master1", "synapse_workers/federation_reader1", "synapse_workers/federation_sender1"],
        );
    });

    golden("prometheus", "synapse.yml", () => renderSynapseScrapeConfig(goldenSynapseSettings()));
    golden("prometheus", "synapse-workers.yml", () => renderWorkerScrapeConfig(goldenWorkerPool(), goldenWorkerSynapse(), goldenWorkerPool().mainHost)!);
    golden("prometheus", "host-remote-workers.yml", () => renderHostScrapeConfig(goldenWorkerSynapse(), goldenRemoteWorkerPool()));
    golden("prometheus", "host-remote-workers-scraped.yml", () =>
        renderHostScrapeConfig(goldenWorkerSynapse(), goldenScrapedRemoteWorkerPool(), (h) => GOLDEN_REMOTE_WORKER_PEERS.privateAddresses[h]),
    );
    golden("prometheus", "synapse-workers-private.yml", () =>
        renderWorkerScrapeConfig(goldenScrapedRemoteWorkerPool(), goldenWorkerSynapse(), 'Host "w2"', (h) => GOLDEN_REMOTE_WORKER_PEERS.privateAddresses[h])!,
    );
});
