/**
 * Prometheus scrape files for Synapse's processes, for users who bring their
 * own Prometheus: the main process's metrics listener, and each worker's.
 * Every listener binds loopback (or the address the user gave the main
 * process's, or, for workers scraped from another host, their host's private
 * address), so a file lists the targets as they are reached from the host
 * it is written on; a Prometheus elsewhere needs an SSH tunnel, or the
 * pool's `metricsScrapedFrom` (README: Maintenance and monitoring).
 */
import { SynapseSettings } from "../model/synapse";
import { dialAddress } from "../model/validate";
import {
    metricsOnPrivateAddress,
    metricsReachableFrom,
    nodeExporterHosts,
    privateAddressIn,
    WORKER_ROLES,
    workerMetricsAddress,
    WorkerPoolSettings,
    WorkerSettings,
} from "../model/workers";
import { nodeExporterEndpoint } from "./nodeExporter";
import { MANAGED_HEADER, renderYaml } from "./yaml";

/** Where the scrape files are, readable by anyone on the host (they hold addresses and ports, nothing secret). */
export const PROMETHEUS_SCRAPE_DIR = "/etc/pulumi-matrix/prometheus";
export const PROMETHEUS_SCRAPE_FILES = {
    /** The main process, written by SynapseHomeserver. */
    synapse: `${PROMETHEUS_SCRAPE_DIR}/synapse.yml`,
    /** The workers on that host, written there by the WorkerPool. */
    workers: `${PROMETHEUS_SCRAPE_DIR}/synapse-workers.yml`,
} as const;

/** Synapse serves its metrics here on a `metrics` listener. */
export const SYNAPSE_METRICS_PATH = "/_synapse/metrics";

/**
 * One process to scrape. Labels as Synapse's metrics guide (docs/metrics-howto)
 * and its Grafana dashboard use them: `instance` (the homeserver),
 * `job` (`master` for the main process, the worker's role) and `index`
 * (the process's number within its job, from 1).
 */
export interface ScrapeTarget {
    /** `host:port` as reached from the host the file is on. */
    target: string;
    labels: { instance: string; job: string; index: string };
}

/** A scrape job: its `job_name`, targets and path (default Synapse's). */
export interface ScrapeJob {
    name: string;
    targets: { target: string; labels: Record<string, string> }[];
    metricsPath?: string;
}

/** The main process's metrics listener; none when Synapse's metrics are disabled. */
export function synapseMainTargets(s: SynapseSettings): ScrapeTarget[] {
    if (!s.metrics.enabled) return [];
    return [{ target: dialAddress(s.metrics.bindAddress, s.metrics.port), labels: { instance: s.serverName, job: "master", index: "1" } }];
}

/** No private address given: the component checks every address exists before rendering. */
const noPrivateAddress = privateAddressIn({});

/**
 * The metrics listeners of the pool's workers that `include` keeps, each at
 * the address its listener binds; `index` counts a role's workers across the
 * whole pool, so two hosts' files never give two processes the same labels.
 */
function poolTargets(
    pool: WorkerPoolSettings,
    synapse: SynapseSettings,
    include: (w: WorkerSettings) => boolean,
    privateAddress: (host: string) => string,
): ScrapeTarget[] {
    const seen = new Map<string, number>();
    const out: ScrapeTarget[] = [];
    const ordered = [...pool.workers].sort((a, b) => WORKER_ROLES.indexOf(a.role) - WORKER_ROLES.indexOf(b.role));
    for (const w of ordered) {
        const index = (seen.get(w.role) ?? 0) + 1;
        seen.set(w.role, index);
        if (!include(w)) continue;
        if (w.metricsPort === undefined) continue;
        out.push({
            target: dialAddress(workerMetricsAddress(pool, w, privateAddress), w.metricsPort),
            labels: { instance: synapse.serverName, job: w.role, index: String(index) },
        });
    }
    return out;
}

/**
 * The metrics listeners of the pool's workers on `host`: on 127.0.0.1, or
 * on the host's private address when a Prometheus on another host scrapes
 * them (`metricsScrapedFrom`; `privateAddress` gives it).
 */
export function workerTargets(
    pool: WorkerPoolSettings,
    synapse: SynapseSettings,
    host: string,
    privateAddress: (host: string) => string = noPrivateAddress,
): ScrapeTarget[] {
    return poolTargets(pool, synapse, (w) => w.host === host, privateAddress);
}

/**
 * What a Prometheus on `from` can scrape of the pool: the workers on
 * `from`, and, when the pool's metrics are scraped from there
 * (`metricsScrapedFrom`), every worker on another host at its private
 * address (opened to `from` alone). Labels as every other worker target's.
 */
export function reachableWorkerTargets(
    pool: WorkerPoolSettings,
    synapse: SynapseSettings,
    from: string,
    privateAddress: (host: string) => string = noPrivateAddress,
): ScrapeTarget[] {
    return poolTargets(pool, synapse, (w) => metricsReachableFrom(pool, w, from), privateAddress);
}

/**
 * The pool's hosts of its own whose workers Synapse's host scrapes at their
 * private addresses (`metricsScrapedFrom` is Synapse's host): each also runs
 * the node exporter there (`nodeExporterHosts`).
 */
function scrapedPoolHosts(pool: WorkerPoolSettings): string[] {
    return pool.metricsScrapedFrom === pool.mainHost ? nodeExporterHosts(pool) : [];
}

/** The node exporters Synapse's host scrapes on the pool's hosts of its own, at their private addresses, labelled with their host. */
export function poolNodeTargets(
    pool: WorkerPoolSettings,
    serverName: string,
    privateAddress: (host: string) => string,
): { target: string; labels: { instance: string; host: string } }[] {
    return scrapedPoolHosts(pool).map((host) => ({ target: nodeExporterEndpoint(privateAddress(host)), labels: { instance: serverName, host } }));
}

/** Hosts of the pool with workers whose metrics a Prometheus on `from` cannot reach (on their loopback). */
function hostsOutOfReach(pool: WorkerPoolSettings, from: string): string[] {
    return [...new Set(pool.workers.filter((w) => w.metricsPort !== undefined && !metricsReachableFrom(pool, w, from)).map((w) => w.host))];
}

/**
 * A Prometheus configuration fragment: `scrape_configs` with one job per
 * entry, as `scrape_config_files` includes it (or to paste into
 * prometheus.yml). `notes` are comment lines under the header.
 */
export function renderScrapeConfig(jobs: ScrapeJob[], notes: string[] = []): string {
    const header = [
        MANAGED_HEADER,
        "Prometheus scrape jobs for Synapse: paste them under scrape_configs in prometheus.yml,",
        "or include this file with scrape_config_files (Prometheus 2.43 and later).",
        "Targets are as reached from this host (Synapse's metrics listeners bind loopback).",
        ...notes,
    ].join("\n");
    return renderYaml(
        {
            scrape_configs: jobs.map((j) => ({
                job_name: j.name,
                scrape_interval: "15s",
                metrics_path: j.metricsPath ?? SYNAPSE_METRICS_PATH,
                static_configs: j.targets.map((t) => ({ targets: [t.target], labels: t.labels })),
            })),
        },
        header,
    );
}

/** The main process's scrape file (job `synapse`); no job when metrics are disabled. */
export function renderSynapseScrapeConfig(s: SynapseSettings): string {
    const targets = synapseMainTargets(s);
    return renderScrapeConfig(
        targets.length ? [{ name: "synapse", targets }] : [],
        targets.length ? [] : ["Synapse's metrics are disabled (metrics.enabled: false)."],
    );
}

/** The scrape file of the workers on `host` (job `synapse_workers`); none when they have no metrics listeners. */
export function renderWorkerScrapeConfig(
    pool: WorkerPoolSettings,
    synapse: SynapseSettings,
    host: string,
    privateAddress: (host: string) => string = noPrivateAddress,
): string | undefined {
    const targets = workerTargets(pool, synapse, host, privateAddress);
    const opened = pool.workers.some((w) => w.host === host && metricsOnPrivateAddress(pool, w));
    return targets.length
        ? renderScrapeConfig(
              [{ name: "synapse_workers", targets }],
              opened
                  ? [`This host's workers bind its private address instead, opened to ${pool.metricsScrapedFrom} alone (the WorkerPool's metricsScrapedFrom).`]
                  : [],
          )
        : undefined;
}

/**
 * Both jobs of Synapse's host in one file, for a stack output to copy: the
 * main process and the workers it reaches: those on its host, and those on
 * other hosts when their metrics are scraped from it (`metricsScrapedFrom`:
 * at their private addresses). Other workers are named in a note: their
 * listeners bind those hosts' loopback, so their targets are in the workers
 * file on each of those hosts.
 */
export function renderHostScrapeConfig(
    synapse: SynapseSettings,
    pool?: WorkerPoolSettings,
    privateAddress: (host: string) => string = noPrivateAddress,
): string {
    const main = synapseMainTargets(synapse);
    const workers = pool ? reachableWorkerTargets(pool, synapse, pool.mainHost, privateAddress) : [];
    const elsewhere = pool ? hostsOutOfReach(pool, pool.mainHost) : [];
    const remote = pool ? scrapedPoolHosts(pool) : [];
    const nodes = pool ? poolNodeTargets(pool, synapse.serverName, privateAddress) : [];
    const jobs: ScrapeJob[] = [
        ...(main.length ? [{ name: "synapse", targets: main }] : []),
        ...(workers.length ? [{ name: "synapse_workers", targets: workers }] : []),
        ...(nodes.length ? [{ name: "node", targets: nodes, metricsPath: "/metrics" }] : []),
    ];
    const notes = [
        ...(main.length ? [] : ["Synapse's metrics are disabled (metrics.enabled: false)."]),
        ...remote.map(
            (h) => `Workers on ${h} and its node exporter are reached at its private address, opened to this host alone (the WorkerPool's metricsScrapedFrom).`,
        ),
        ...elsewhere.map(
            (h) =>
                `Workers on ${h} listen on its loopback: scrape them there (${PROMETHEUS_SCRAPE_FILES.workers} on that host), or give the WorkerPool metricsScrapedFrom.`,
        ),
    ];
    return renderScrapeConfig(jobs, notes);
}
