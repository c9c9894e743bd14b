import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

import { componentLabel, ConfigError } from "../src/model/errors";
import {
    isMultiHost,
    noRedisError,
    poolHosts,
    resolveWorkerPoolSettings,
    WorkerCounts,
    WorkerPeers,
    WorkerPoolOptions,
    WorkerPoolSettings,
    workerPortClaims,
    WorkerSpec,
    WorkerUpstream,
    workerUpstreams,
} from "../src/model/workers";
import { checkPoolPrivateAddresses, checkPoolReachable } from "../src/model/workers/hosts";
import { restartTimeout } from "../src/provision/apply";
import { synapseInstallScript, synapseSecretsScript } from "../src/provision/synapse";
import { workerConfigScript, workerSecretsScript, workerSendersStopScript } from "../src/provision/workers";
import { renderHostScrapeConfig, renderWorkerScrapeConfig } from "../src/render/prometheus";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { RedisServer } from "./RedisServer";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";

/** Workers of one role with names, ports or a host of their own (the list form of `instances`). */
export interface WorkerPoolWorker extends Omit<WorkerSpec, "host"> {
    /** The Host they run on; it and Synapse's host need a `privateAddress`. Default: Synapse's host. */
    host?: Host;
}

export interface WorkerPoolArgs extends Omit<WorkerPoolOptions, "instances" | "workers" | "metricsScrapedFrom"> {
    /** The Synapse the workers belong to: its settings, host and secrets. It needs `replication` (the main process's replication listener). */
    synapse: SynapseHomeserver;
    /** The Redis every Synapse process talks through (required with workers). Default: none. */
    redis?: RedisServer;
    /**
     * The worker instances (as Synapse's `instance_map` calls them): counts by
     * role (`{ federation_reader: 2, client_reader: 1 }`), or a list of
     * WorkerPoolWorker for names, ports and hosts of their own. Default one
     * `federation_reader` and one `federation_sender`. None (`{}`) removes what
     * an earlier pool wrote.
     */
    instances?: WorkerCounts | WorkerPoolWorker[];
    /** @deprecated Renamed `instances`; accepted for one release. Give one of the two. */
    workers?: WorkerCounts | WorkerPoolWorker[];
    /**
     * The Host whose Prometheus scrapes the workers' metrics: Synapse's Host
     * for a MonitoringServer (which runs there and refuses a pool whose
     * workers on other hosts it cannot reach). Workers on any other host then
     * bind their metrics listener (HTTP port + 2000) to their host's
     * `privateAddress`, and that host's firewall opens it to this Host's
     * `privateAddress` alone; workers on this Host keep theirs on loopback.
     * Each of the pool's hosts other than Synapse's runs Debian's node
     * exporter there too (port 9100, opened the same way), so its disks and
     * failed units are watched. Both Hosts need a `privateAddress`. Removing
     * it puts every metrics listener back on loopback, stops those node
     * exporters and closes the openings. Default: none (all on loopback,
     * nothing opened).
     */
    metricsScrapedFrom?: Host;
    /**
     * The pool's settings, already resolved from these options (MatrixStack
     * passes its plan's: see `planStack`): used as they are, so they are
     * resolved once per deployment. Default: resolved here.
     */
    resolved?: WorkerPoolSettings;
}

/**
 * Synapse's workers: each worker's config and a systemd template unit, the
 * shared worker config (instance_map, redis, stream writers, who sends
 * federation, ...) every process reads after homeserver.yaml, the
 * replication secret and Redis's password as secret files, and restarts
 * that touch only what a change affects (see src/provision/workers.ts).
 * Workers may run on other Hosts over a private network: Synapse is
 * installed there too, and replication is opened only to the pool's hosts.
 */
export class WorkerPool extends pulumi.ComponentResource {
    /** How errors name the pool: `WorkerPool "<name>"`. */
    readonly label: string;
    /** The pool's settings as plain values (names, roles, hosts, ports). */
    readonly settings: WorkerPoolSettings;
    /** Depend on this to run once every worker answers /health. */
    readonly ready: pulumi.Resource;
    /** Each host's private address by host label: the pool's hosts and the one its metrics are scraped from (hosts without one are left out). */
    readonly privateAddresses: pulumi.Output<Record<string, string>>;
    /** The workers that serve requests and where, for a reverse proxy (see WORKER_ROUTES). */
    readonly upstreams: pulumi.Output<WorkerUpstream[]>;
    /**
     * Prometheus scrape files for the workers' metrics listeners, by host label, as written to
     * /etc/pulumi-matrix/prometheus/synapse-workers.yml on each host (they bind its loopback, or its private address with
     * `metricsScrapedFrom`). No entry for a host without workers.
     */
    readonly prometheusScrapeConfigs: pulumi.Output<Record<string, string>>;
    /**
     * Synapse's host's scrape jobs in one file: the main process and the workers it reaches (those there, and with
     * `metricsScrapedFrom` set to Synapse's host those on other hosts; workers it cannot reach are named in a comment).
     */
    readonly prometheusScrapeConfig: pulumi.Output<string>;

    constructor(name: string, args: WorkerPoolArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("WorkerPool"), name, {}, opts);
        const component = componentLabel("WorkerPool", name);
        this.label = component;
        const synapse = args.synapse;
        const mainHost = synapse.host;
        const hosts = new Map<string, Host>([[mainHost.label, mainHost]]);
        const specs = (given: WorkerCounts | WorkerPoolWorker[] | undefined) =>
            Array.isArray(given)
                ? given.map(({ host, ...w }): WorkerSpec => {
                      if (host) hosts.set(host.label, host);
                      return { ...w, ...(host ? { host: host.label } : {}) };
                  })
                : given;
        const scraper = args.metricsScrapedFrom;
        if (scraper && !hosts.has(scraper.label)) hosts.set(scraper.label, scraper);
        const options = {
            basePort: args.basePort,
            instances: specs(args.instances),
            workers: specs(args.workers),
            ...(scraper ? { metricsScrapedFrom: scraper.label } : {}),
        };
        const s = args.resolved ?? resolveWorkerPoolSettings(component, options, synapse.settings, mainHost.label);
        this.settings = s;
        const active = s.workers.length > 0;
        if (active && !args.redis) throw noRedisError(component);
        if (s.metricsScrapedFrom !== undefined && !hosts.has(s.metricsScrapedFrom))
            throw new ConfigError(
                component,
                "metricsScrapedFrom",
                s.metricsScrapedFrom,
                "the resolved settings name a host the pool was not given: pass that Host as metricsScrapedFrom",
            );
        checkPoolPrivateAddresses(component, s, (label) => hosts.get(label)!.privateAddress !== undefined);
        for (const label of poolHosts(s)) hosts.get(label)!.claimPorts(component, workerPortClaims(s, label));

        if (isMultiHost(s))
            pulumi.log.warn(
                `${component}: workers on other hosts than Synapse's talk to it over the private network in cleartext HTTP (replication, authenticated by worker_replication_secret; the requests the proxy routes to them): keep that network private. Redis and PostgreSQL installed by the library are reached over TLS.`,
                this,
            );
        const labels = poolHosts(s);
        // The pool's hosts, and the host its metrics are scraped from (when it is not one of them).
        const addressed = [...new Set([...labels, ...(s.metricsScrapedFrom !== undefined ? [s.metricsScrapedFrom] : [])])];
        const addresses = pulumi.all(addressed.map((l) => hosts.get(l)!.privateAddress ?? pulumi.output(undefined)));
        this.privateAddresses = addresses.apply((addrs) =>
            Object.fromEntries(addressed.flatMap((l, i) => (addrs[i] !== undefined ? [[l, addrs[i] as string]] : []))),
        );
        const peers: pulumi.Output<WorkerPeers | undefined> = !active
            ? pulumi.output(undefined)
            : pulumi.all([this.privateAddresses, args.redis!.connection, synapse.peers]).apply(([privateAddresses, redis, synapsePeers]) => {
                  checkPoolReachable(component, s, {
                      privateAddresses,
                      replicationBindAddresses: synapse.settings.replication?.bindAddresses ?? [],
                      redisHost: redis.host,
                      redisElsewhere: args.redis!.host !== undefined && args.redis!.host.label !== s.mainHost,
                      databaseHost: synapsePeers.database?.host,
                  });
                  return { privateAddresses, redis, redisPassword: args.redis!.password !== undefined };
              });

        const redisPassword = args.redis?.password ?? pulumi.output(undefined);
        // Only a pool with workers has secrets (one without only removes an earlier pool's files).
        const replicationSecret = active
            ? new random.RandomPassword(childName(name, "replication-secret"), { length: 48, special: false }, { parent: this }).result
            : pulumi.output("");
        // Steps that restart this host's workers one by one (each waits for its health check) get a timeout that fits them.
        const workersOn = (label: string) => s.workers.filter((w) => w.host === label).length;
        const secretsOn = (label: string, host: Host, after: pulumi.Resource[]) =>
            hostScript(
                childName(name, label === mainHost.label ? "secrets" : `${host.name}-secrets`),
                {
                    host,
                    script: pulumi
                        .all([replicationSecret, redisPassword])
                        .apply(([secret, pw]) =>
                            workerSecretsScript(s, synapse.settings, label, { replicationSecret: secret, ...(pw !== undefined ? { redisPassword: pw } : {}) }),
                        ),
                    secret: true,
                    after,
                    timeout: restartTimeout(workersOn(label)),
                },
                { parent: this },
            );
        const configOn = (label: string, host: Host, after: pulumi.Resource[]) =>
            hostScript(
                childName(name, label === mainHost.label ? "config" : `${host.name}-config`),
                {
                    host,
                    script: pulumi
                        .all([peers, synapse.peers])
                        .apply(([p, synapsePeers]) => workerConfigScript(s, synapse.settings, label, p, { component, synapsePeers })),
                    after,
                    // The main process too, where it runs.
                    timeout: restartTimeout(workersOn(label) + (label === mainHost.label ? 1 : 0)),
                },
                { parent: this },
            );

        const redisReady = args.redis ? [args.redis.ready] : [];
        // Hosts of the pool's own: Synapse installed (its main process stays off), its secrets, and the senders stopped before the list changes.
        const remote = labels.slice(1).map((label) => {
            const host = hosts.get(label)!;
            const install = hostScript(
                childName(name, `${host.name}-install`),
                { host, script: host.os.apply((os) => synapseInstallScript(synapse.settings, os, { workersOnly: true })), timeout: "40m" },
                { parent: this },
            );
            const synapseSecrets = hostScript(
                childName(name, `${host.name}-synapse-secrets`),
                { host, script: synapse.secrets.apply((v) => synapseSecretsScript(synapse.settings, v, component)), secret: true, after: [install] },
                { parent: this },
            );
            const stop = hostScript(childName(name, `${host.name}-senders`), { host, script: workerSendersStopScript(s), after: [install] }, { parent: this });
            return { label, host, synapseSecrets, stop };
        });
        const mainSecrets = active ? [secretsOn(mainHost.label, mainHost, [synapse.ready, ...redisReady])] : [];
        const mainConfig = configOn(mainHost.label, mainHost, [synapse.ready, ...mainSecrets, ...remote.map((r) => r.stop)]);
        for (const r of remote) {
            const secrets = secretsOn(r.label, r.host, [r.synapseSecrets, ...redisReady]);
            configOn(r.label, r.host, [secrets, mainConfig]);
        }
        this.ready = remote.length ? this : mainConfig;

        this.upstreams = peers.apply((p) => (p ? workerUpstreams(s, (h) => p.privateAddresses[h]) : []));
        this.prometheusScrapeConfigs = this.privateAddresses.apply((a) => {
            const scrapeFiles: Record<string, string> = {};
            for (const l of labels) {
                const file = renderWorkerScrapeConfig(s, synapse.settings, l, (h) => a[h]);
                if (file !== undefined) scrapeFiles[l] = file;
            }
            return scrapeFiles;
        });
        this.prometheusScrapeConfig = this.privateAddresses.apply((a) => renderHostScrapeConfig(synapse.settings, s, (h) => a[h]));
        this.registerOutputs({
            upstreams: this.upstreams,
            privateAddresses: this.privateAddresses,
            prometheusScrapeConfigs: this.prometheusScrapeConfigs,
            prometheusScrapeConfig: this.prometheusScrapeConfig,
        });
    }
}
