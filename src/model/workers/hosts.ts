import { ConfigError, throwIfAny } from "../errors";
import { isLoopback } from "../redis";
import { hostsNeedingPrivateAddress, isMultiHost, poolHosts, WorkerPoolSettings } from ".";

/**
 * A pool that spans hosts: what its hosts must have so that every Synapse
 * process reaches the others. Checked once by the model, whoever builds the
 * pool (a WorkerPool in MatrixStack or in a user's own stack).
 */

/**
 * Every host of a pool that spans hosts needs a private address, and so do
 * the host whose Prometheus scrapes the workers (`metricsScrapedFrom`) and
 * the hosts whose workers' metrics it scrapes there; each host without one
 * is reported.
 */
export function checkPoolPrivateAddresses(component: string, s: WorkerPoolSettings, hasPrivateAddress: (hostLabel: string) => boolean): void {
    const errors: ConfigError[] = [];
    for (const label of hostsNeedingPrivateAddress(s)) {
        if (hasPrivateAddress(label)) continue;
        if (isMultiHost(s) && poolHosts(s).includes(label)) {
            const w = s.workers.find((x) => x.host === label);
            errors.push(
                new ConfigError(
                    component,
                    w ? `${w.setting}.host` : "synapse",
                    label,
                    `workers on other hosts than Synapse's reach each other over a private network: give ${label} a privateAddress (every host of the pool needs one)`,
                ),
            );
        } else if (label === s.metricsScrapedFrom) {
            errors.push(
                new ConfigError(
                    component,
                    "metricsScrapedFrom",
                    label,
                    `the workers' metrics listeners on other hosts are opened to this host's private address alone: give ${label} a privateAddress (or remove metricsScrapedFrom to keep every metrics listener on loopback)`,
                ),
            );
        } else {
            const names = s.workers.filter((w) => w.host === label && w.metricsPort !== undefined).map((w) => w.name);
            errors.push(
                new ConfigError(
                    component,
                    "metricsScrapedFrom",
                    s.metricsScrapedFrom,
                    `the metrics listeners of ${names.join(", ")} on ${label} bind its private address for the Prometheus on ${s.metricsScrapedFrom}: give ${label} a privateAddress`,
                ),
            );
        }
    }
    throwIfAny(errors);
}

/** What a pool's processes dial, once the addresses are known. */
export interface PoolPeersReach {
    /** Each pool host's private address, by host label. */
    privateAddresses: Record<string, string>;
    /** The addresses the main process's replication listener binds. */
    replicationBindAddresses: string[];
    /** The address Synapse's processes dial Redis at. */
    redisHost: string;
    /** Redis is installed on another host than Synapse's. */
    redisElsewhere: boolean;
    /** The address Synapse's processes dial PostgreSQL at (absent with SQLite). */
    databaseHost?: string;
}

/**
 * With processes on several hosts (or Redis on another host), everything
 * they dial must be reachable from each: the main process's replication
 * listener on its private address, Redis and PostgreSQL not on loopback.
 * Checked once the addresses are known, before any script is built.
 */
export function checkPoolReachable(component: string, s: WorkerPoolSettings, r: PoolPeersReach): void {
    const errors: ConfigError[] = [];
    if (isLoopback(r.redisHost) && (isMultiHost(s) || r.redisElsewhere))
        errors.push(
            new ConfigError(
                component,
                "redis",
                r.redisHost,
                "Synapse processes on other hosts than Redis's cannot reach it on loopback: give the RedisServer reachableAt (its private address, also in bindAddresses)",
            ),
        );
    if (isMultiHost(s)) {
        const main = r.privateAddresses[s.mainHost];
        if (!r.replicationBindAddresses.includes(main))
            errors.push(
                new ConfigError(
                    component,
                    "synapse.replication.bindAddresses",
                    r.replicationBindAddresses,
                    `workers on other hosts call the main process at ${main}: add it to the SynapseHomeserver's replication.bindAddresses`,
                ),
            );
        if (r.databaseHost !== undefined && isLoopback(r.databaseHost))
            errors.push(
                new ConfigError(
                    component,
                    "synapse.database",
                    r.databaseHost,
                    "workers on other hosts cannot reach PostgreSQL on loopback: give the PostgresDatabase reachableAt (its private address) and allowedClients",
                ),
            );
    }
    throwIfAny(errors);
}
