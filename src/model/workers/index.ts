import { ConfigError } from "../errors";
import { FirewallRule, PortClaim, PortRegistry } from "../host";
import { NODE_EXPORTER_PORT } from "../nodeExporter";
import { RedisConnection } from "../redis";
import { secretFilePath, SynapsePaths, SynapseSettings } from "../synapse";
import { Checker, isWildcardAddress, singleAddress } from "../validate";

/**
 * Synapse's workers: generic worker processes (`synapse.app.generic_worker`)
 * beside the main process, each with a role named as in Synapse's
 * docs/workers.md. The roles, how many instances Synapse allows of each, the
 * listeners a worker gets and the shared-config option that names it are
 * data here; the request paths each role serves are in routes.ts.
 */

/** Every role, in the order their default ports are laid out (see `workerPorts`). */
export const WORKER_ROLES = [
    "federation_reader",
    "federation_sender",
    "client_reader",
    "synchrotron",
    "event_creator",
    "event_persister",
    "media_repository",
    "pusher",
    "background",
    "user_dir",
    "appservice",
    "typing",
    "to_device",
    "account_data",
    "receipts",
    "presence",
    "push_rules",
    "device_lists",
] as const;

export type WorkerRole = (typeof WORKER_ROLES)[number];

/**
 * Every stream Synapse lets workers write (the keys of `stream_writers`, as
 * synapse/config/workers.py's WriterLocations has them) and how many writers
 * it takes: `one` exactly one, `many` any number. A stream no role writes
 * (thread_subscriptions: Synapse's docs route none of its requests to a
 * writer) stays with the main process, Synapse's default writer of each.
 */
export const WORKER_STREAMS = {
    events: "many",
    typing: "one",
    to_device: "one",
    account_data: "one",
    receipts: "many",
    presence: "one",
    push_rules: "one",
    device_lists: "many",
    thread_subscriptions: "many",
    quarantined_media_changes: "many",
} as const;

/** A stream a worker can write (a `stream_writers` key). */
export type WorkerStream = keyof typeof WORKER_STREAMS;

/** HTTP resources a worker's request listener serves. */
export type WorkerResource = "client" | "federation" | "media";

export interface WorkerRoleSpec {
    /** `many`: Synapse shares the work among every instance; `one`: Synapse takes exactly one instance for it. */
    readonly instances: "many" | "one";
    /** Resources of the request listener the reverse proxy sends this role's routes to; empty: the listener answers /health only. */
    readonly resources: readonly WorkerResource[];
    /** The streams the role writes: its workers get a replication listener and an `instance_map` entry. */
    readonly streams?: readonly WorkerStream[];
    /** The shared-config option that names the role's instances, if any. */
    readonly option?: string;
    /** What the role does. */
    readonly summary: string;
}

export const WORKER_ROLE_SPECS: Readonly<Record<WorkerRole, WorkerRoleSpec>> = {
    federation_reader: { instances: "many", resources: ["federation"], summary: "serves inbound federation requests" },
    federation_sender: {
        instances: "many",
        resources: [],
        option: "federation_sender_instances",
        summary: "sends outbound federation traffic (the main process stops sending)",
    },
    client_reader: { instances: "many", resources: ["client"], summary: "serves client API requests that read (and login, registration, keys)" },
    synchrotron: { instances: "many", resources: ["client"], summary: "serves /sync, sliding sync, /events and /initialSync" },
    event_creator: { instances: "many", resources: ["client"], summary: "serves client requests that send events (and joins, profile changes)" },
    event_persister: {
        instances: "many",
        resources: [],
        streams: ["events"],
        option: "stream_writers.events",
        summary: "persists events (sharded by room)",
    },
    media_repository: {
        instances: "many",
        resources: ["media"],
        // Synapse >= 1.152: whoever serves quarantine_media (routed here) must write this stream, or quarantining fails.
        streams: ["quarantined_media_changes"],
        option: "media_instance_running_background_jobs",
        summary: "serves the media repository (the main process stops: enable_media_repo false)",
    },
    pusher: { instances: "many", resources: [], option: "pusher_instances", summary: "sends push notifications" },
    background: { instances: "one", resources: [], option: "run_background_tasks_on", summary: "runs background tasks" },
    user_dir: { instances: "one", resources: ["client"], option: "update_user_directory_from_worker", summary: "updates and searches the user directory" },
    appservice: { instances: "one", resources: [], option: "notify_appservices_from_worker", summary: "sends traffic to application services" },
    typing: { instances: "one", resources: ["client"], streams: ["typing"], option: "stream_writers.typing", summary: "writes the typing stream" },
    to_device: { instances: "one", resources: ["client"], streams: ["to_device"], option: "stream_writers.to_device", summary: "writes the to_device stream" },
    account_data: {
        instances: "one",
        resources: ["client"],
        streams: ["account_data"],
        option: "stream_writers.account_data",
        summary: "writes the account_data stream",
    },
    receipts: { instances: "many", resources: ["client"], streams: ["receipts"], option: "stream_writers.receipts", summary: "writes the receipts stream" },
    presence: { instances: "one", resources: ["client"], streams: ["presence"], option: "stream_writers.presence", summary: "writes the presence stream" },
    push_rules: {
        instances: "one",
        resources: ["client"],
        streams: ["push_rules"],
        option: "stream_writers.push_rules",
        summary: "writes the push_rules stream",
    },
    device_lists: {
        instances: "many",
        resources: ["client"],
        streams: ["device_lists"],
        option: "stream_writers.device_lists",
        summary: "writes the device_lists stream",
    },
};

/** Whether a role's workers serve HTTP requests a proxy routes to them (then they have a request listener). */
export function servesRequests(role: WorkerRole): boolean {
    return WORKER_ROLE_SPECS[role].resources.length > 0;
}

/** How many workers of each role, e.g. `{ federation_reader: 2, federation_sender: 1 }`. */
export type WorkerCounts = Partial<Record<WorkerRole, number>>;

/** Workers of one role, named and placed (the list form of `WorkerPoolOptions.instances`). */
export interface WorkerSpec {
    /** The role, named as in Synapse's docs: `federation_reader`, `federation_sender`, `client_reader`, ... (see WORKER_ROLES). */
    role: WorkerRole;
    /** How many instances. Default 1; roles Synapse takes exactly one instance of allow 0 or 1. */
    count?: number;
    /**
     * The worker's `worker_name` (lower-case letters, digits, `_`; not `main`);
     * with `count` above 1 the instances are `<name>1`, `<name>2`, ...
     * Default: the role, numbered (`federation_reader1`, `federation_reader2`, ...).
     */
    name?: string;
    /**
     * The first instance's HTTP port; further instances take the next ports. A
     * stream writer's replication listener is on the HTTP port + 1000, metrics
     * on the HTTP port + 2000. Default: see `WorkerPoolOptions.basePort`.
     */
    port?: number;
    /** Where the workers run: a host's label (the component passes a Host). Default: Synapse's host. */
    host?: string;
}

/** The WorkerPool settings a user writes. */
export interface WorkerPoolOptions {
    /**
     * The worker instances (as Synapse's `instance_map` calls them): counts by
     * role (`{ federation_reader: 2, client_reader: 1 }`), or a list of
     * WorkerSpec for names, ports and hosts of their own. Default one
     * `federation_reader` and one `federation_sender`.
     */
    instances?: WorkerCounts | WorkerSpec[];
    /** @deprecated Renamed `instances`; accepted for one release. Give one of the two. */
    workers?: WorkerCounts | WorkerSpec[];
    /**
     * Where default ports start: instance n of a role listens on
     * basePort + 20 × (the role's place in WORKER_ROLES) + n − 1, so a role's
     * ports stay put when another role's count changes. Default 8100.
     */
    basePort?: number;
    /**
     * The host (its label; the component takes a Host) whose Prometheus
     * scrapes the workers' metrics: a MonitoringServer runs on Synapse's
     * host, so give that one for it. Workers on any other host then bind
     * their metrics listener to their host's private address (never every
     * address), and that host's firewall opens the port to this host's
     * private address alone; both hosts need a `privateAddress`. Workers on
     * this host keep theirs on loopback. Default: none: every metrics
     * listener binds loopback and nothing is opened (scrape a worker on its
     * own host, or through an SSH tunnel). Needs Synapse's metrics enabled.
     */
    metricsScrapedFrom?: string;
}

/** One worker process, every default filled in. */
export interface WorkerSettings {
    /** Its `worker_name` (also the systemd instance and file name). */
    name: string;
    role: WorkerRole;
    /** The label of the host it runs on. */
    host: string;
    /** The HTTP listener: the role's requests, or only /health. */
    port: number;
    /** The replication listener of a stream writer (port + 1000). */
    replicationPort?: number;
    /** The metrics listener when Synapse's metrics are enabled (port + 2000): on loopback, or on its host's private address for a Prometheus elsewhere (`metricsScrapedFrom`). */
    metricsPort?: number;
    /** Where it was set in the user's arguments (`instances.federation_reader`, `instances[2]`), for errors. */
    setting: string;
    /** The option its port comes from and that option's value: `instances[2].port`, or `basePort` for a default port; for errors. */
    portFrom: { setting: string; value: number };
}

export interface WorkerPoolSettings {
    basePort: number;
    /** The label of the host the main process runs on. */
    mainHost: string;
    /** Every worker, in the order of the options (roles in WORKER_ROLES order for counts). */
    workers: WorkerSettings[];
    /** The label of the host whose Prometheus scrapes the workers' metrics listeners (absent: they all stay on loopback). */
    metricsScrapedFrom?: string;
}

export const DEFAULT_WORKERS: Readonly<WorkerCounts> = { federation_reader: 1, federation_sender: 1 };

export const WORKER_DEFAULTS = { basePort: 8100 } as const;

/** Default ports: each role has a block of this many ports. */
export const ROLE_PORT_STRIDE = 20;
/** A stream writer's replication listener: its HTTP port plus this. */
export const REPLICATION_PORT_OFFSET = 1000;
/** A worker's metrics listener: its HTTP port plus this. */
export const METRICS_PORT_OFFSET = 2000;

/** Top-level options of the shared config the pool writes (conf.d); Synapse's extraConfig must not set them. */
export const WORKER_SHARED_KEYS = [
    "instance_map",
    "redis",
    "worker_replication_secret",
    "worker_replication_secret_path",
    "stream_writers",
    "federation_sender_instances",
    "pusher_instances",
    "run_background_tasks_on",
    "update_user_directory_from_worker",
    "notify_appservices_from_worker",
    "media_instance_running_background_jobs",
    "enable_media_repo",
    "send_federation",
    "start_pushers",
    "notify_appservices",
    "update_user_directory",
] as const;

const NAME = /^[a-z][a-z0-9_]{0,39}$/;
const RESERVED_NAMES = ["main", "master"];

/** The normalised list form of the options, each with where it came from. */
interface NormalSpec extends WorkerSpec {
    setting: string;
    /** From the counts-by-role form (the setting is the count itself). */
    counted?: boolean;
}

/** `option` is the name the user gave them under: `instances`, or the deprecated `workers`. */
function normalise(c: Checker, option: string, workers: WorkerCounts | WorkerSpec[]): NormalSpec[] {
    if (Array.isArray(workers)) return workers.map((w, i) => ({ ...w, setting: `${option}[${i}]` }));
    if (workers === null || typeof workers !== "object") {
        c.check(option, workers, false, `expected counts by role such as { federation_reader: 2 }, or a list of workers`);
        return [];
    }
    const specs: NormalSpec[] = [];
    for (const key of Object.keys(workers)) {
        c.check(`${option}.${key}`, key, (WORKER_ROLES as readonly string[]).includes(key), `expected a role: one of ${WORKER_ROLES.join(", ")}`);
    }
    for (const role of WORKER_ROLES) {
        if (workers[role] !== undefined) specs.push({ role, count: workers[role], setting: `${option}.${role}`, counted: true });
    }
    return specs;
}

/**
 * Fills in defaults and checks Synapse's rules: the roles exist, a role
 * Synapse takes one instance of has at most one, names are unique and
 * usable, ports fit and do not clash, media workers share one host, and
 * Synapse itself can have workers (PostgreSQL, a replication listener, no
 * extraConfig for the options the pool writes). `mainHost` is the label of
 * Synapse's host.
 */
export function resolveWorkerPoolSettings(component: string, o: WorkerPoolOptions, synapse: SynapseSettings, mainHost: string): WorkerPoolSettings {
    const c = new Checker(component);
    const basePort = o.basePort ?? WORKER_DEFAULTS.basePort;
    c.port("basePort", basePort);
    if (o.instances !== undefined && o.workers !== undefined) {
        c.check("workers", o.workers, false, "expected instances alone: workers is its former name; keep instances");
    }
    const option = o.instances === undefined && o.workers !== undefined ? "workers" : "instances";
    const specs = normalise(c, option, o.instances ?? o.workers ?? { ...DEFAULT_WORKERS });
    const counted = new Map<WorkerRole, { total: number; first: string }>();
    const nextDefault = new Map<WorkerRole, number>();
    const workers: WorkerSettings[] = [];
    for (const spec of specs) {
        const { setting } = spec;
        const at = (k: string) => (spec.counted ? setting : `${setting}.${k}`);
        if (!(WORKER_ROLES as readonly unknown[]).includes(spec.role)) {
            c.oneOf(at("role"), spec.role, WORKER_ROLES);
            continue;
        }
        const role = spec.role;
        const roleSpec = WORKER_ROLE_SPECS[role];
        const count = spec.count ?? 1;
        const max = roleSpec.instances === "one" ? 1 : 500;
        if (!(typeof count === "number" && Number.isInteger(count) && count >= 0 && count <= max)) {
            c.check(
                at("count"),
                count,
                false,
                roleSpec.instances === "one"
                    ? `expected 0 or 1: Synapse takes exactly one ${role} worker (${roleSpec.option})`
                    : `expected a whole number from 0 to ${max}`,
            );
            continue;
        }
        const seen = counted.get(role);
        if (roleSpec.instances === "one" && seen && seen.total + count > 1) {
            c.check(at("count"), count, false, `${seen.first} already has the ${role} worker; Synapse takes exactly one (${roleSpec.option})`);
            continue;
        }
        counted.set(role, { total: (seen?.total ?? 0) + count, first: seen?.first ?? setting });
        if (spec.name !== undefined)
            c.check(
                at("name"),
                spec.name,
                typeof spec.name === "string" && NAME.test(spec.name) && !RESERVED_NAMES.includes(spec.name),
                "expected a worker name of lower-case letters, digits and _ starting with a letter, at most 40 characters, other than main and master",
            );
        if (spec.port !== undefined) c.port(at("port"), spec.port);
        const host = spec.host ?? mainHost;
        for (let i = 1; i <= count; i++) {
            let port: number;
            if (spec.port !== undefined) {
                port = spec.port + i - 1;
            } else {
                const n = nextDefault.get(role) ?? 0;
                nextDefault.set(role, n + 1);
                if (n >= ROLE_PORT_STRIDE) {
                    const first = basePort + ROLE_PORT_STRIDE * WORKER_ROLES.indexOf(role);
                    c.check(
                        at("count"),
                        count,
                        false,
                        `with default ports a role has room for ${ROLE_PORT_STRIDE} workers (${first}-${first + ROLE_PORT_STRIDE - 1}); give more a port of their own (the list form of workers)`,
                    );
                    break;
                }
                port = basePort + ROLE_PORT_STRIDE * WORKER_ROLES.indexOf(role) + n;
            }
            const name = spec.name !== undefined ? (count === 1 ? spec.name : `${spec.name}${i}`) : `${role}${counted.get(role)!.total - count + i}`;
            workers.push({
                name,
                role,
                host,
                port,
                ...(roleSpec.streams?.length ? { replicationPort: port + REPLICATION_PORT_OFFSET } : {}),
                ...(synapse.metrics.enabled ? { metricsPort: port + METRICS_PORT_OFFSET } : {}),
                setting,
                portFrom: spec.port !== undefined ? { setting: at("port"), value: spec.port } : { setting: "basePort", value: basePort },
            });
        }
    }
    c.done();

    for (const w of workers) {
        const highest = Math.max(w.port, w.metricsPort ?? 0, w.replicationPort ?? 0);
        c.check(
            w.portFrom.setting,
            w.portFrom.value,
            highest <= 65535,
            `worker ${w.name}'s listeners would reach port ${highest} (its HTTP port ${w.port}; replication listens at + ${REPLICATION_PORT_OFFSET}, metrics at + ${METRICS_PORT_OFFSET}): expected ${w.portFrom.setting === "basePort" ? "a basePort that keeps" : "HTTP ports that keep"} every listener at or below 65535, e.g. ${WORKER_DEFAULTS.basePort}`,
        );
    }
    const byName = new Map<string, WorkerSettings>();
    for (const w of workers) {
        const other = byName.get(w.name);
        if (other) {
            c.check(
                w.setting,
                w.name,
                false,
                `the worker name ${w.name} is already used by ${other.setting}; worker names must be unique: give one of them another name`,
            );
        } else byName.set(w.name, w);
    }
    const mediaHosts = [...new Set(workers.filter((w) => w.role === "media_repository").map((w) => w.host))];
    if (mediaHosts.length > 1) {
        const w = workers.filter((x) => x.role === "media_repository").find((x) => x.host !== mediaHosts[0])!;
        c.check(
            `${w.setting}.host`,
            w.host,
            false,
            `media_repository workers must all run on one host (Synapse requires it); the first runs on ${mediaHosts[0]}`,
        );
    }
    if (workers.length) {
        c.check(
            option,
            new WorkersOf(workers),
            synapse.database.kind === "postgres",
            "workers need PostgreSQL, and Synapse is set to SQLite (sqlite); use a PostgresDatabase, or no workers",
        );
        c.check(
            "synapse.replication",
            synapse.replication,
            synapse.replication !== undefined,
            "workers need the main process's replication listener: set replication on the SynapseHomeserver (e.g. replication: {})",
        );
        const clash = WORKER_SHARED_KEYS.filter((k) => k in synapse.extraConfig);
        c.check(
            "synapse.extraConfig",
            clash,
            clash.length === 0,
            `${clash.join(", ")} ${clash.length > 1 ? "are" : "is"} written by the WorkerPool (conf.d, read after homeserver.yaml); remove ${clash.length > 1 ? "them" : "it"} from extraConfig`,
        );
    }
    checkOutboundRestriction(c, synapse, workers);
    const scraper = o.metricsScrapedFrom;
    if (scraper !== undefined) {
        c.check(
            "metricsScrapedFrom",
            scraper,
            typeof scraper === "string" && scraper.length > 0,
            "expected the Host whose Prometheus scrapes the workers' metrics (a MonitoringServer's: Synapse's host)",
        );
        if (!synapse.metrics.enabled)
            c.check(
                "metricsScrapedFrom",
                scraper,
                false,
                "the workers have no metrics listener while Synapse's metrics are disabled (synapse.metrics.enabled: false): enable them, or remove metricsScrapedFrom",
            );
    }
    c.done();

    const s: WorkerPoolSettings = { basePort, mainHost, workers, ...(scraper !== undefined ? { metricsScrapedFrom: scraper } : {}) };
    // Ports of the pool's own listeners must not clash with each other on one host (other components are checked by the Host).
    for (const host of poolHosts(s))
        new PortRegistry(host).claim(
            component,
            workerPortClaims(s, host, () => "*"),
        );
    return s;
}

/**
 * `outbound_federation_restricted_to` in Synapse's extraConfig: Synapse
 * sends federation only through the processes it names, and each must be
 * in instance_map (which the pool writes: the main process, as Synapse
 * calls it there `master`, and the stream writers). A name outside it
 * stops outbound federation (or Synapse refuses to start).
 */
function checkOutboundRestriction(c: Checker, synapse: SynapseSettings, workers: WorkerSettings[]): void {
    const key = "outbound_federation_restricted_to";
    const value = synapse.extraConfig[key];
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) return;
    // Without workers the pool writes no instance_map, so no name is valid.
    const valid = workers.length ? ["master", ...workers.filter((w) => w.replicationPort !== undefined).map((w) => w.name)] : [];
    const names = Array.isArray(value) ? value : [value];
    const unknown = names.filter((n) => typeof n !== "string" || !valid.includes(n));
    c.check(
        `synapse.extraConfig.${key}`,
        value,
        Array.isArray(value) && unknown.length === 0,
        `${valid.length ? `expected a list of processes in instance_map: ${valid.join(", ")} (the main process is "master" there${valid.length > 1 ? "; the others are the pool's stream writers" : ""})` : "expected it left out: without workers there is no instance_map to name processes from"}; ${unknown.length ? `${unknown.map((n) => JSON.stringify(n)).join(", ")} would stop outbound federation` : "a single name must still be a list"}`,
    );
}

/** Shows the worker names in an error instead of the whole settings. */
class WorkersOf {
    constructor(readonly workers: WorkerSettings[]) {}
    toJSON() {
        return this.workers.map((w) => w.name);
    }
}

/** Every host of the pool: the main process's first, then each worker host in order of appearance. */
export function poolHosts(s: WorkerPoolSettings): string[] {
    return [...new Set([s.mainHost, ...s.workers.map((w) => w.host)])];
}

/** Whether the pool spans hosts: then replication and Redis go over the private network. */
export function isMultiHost(s: WorkerPoolSettings): boolean {
    return poolHosts(s).length > 1;
}

/** One listener of a worker. */
export interface WorkerListener {
    /** `requests`: the role's routes (reverse proxy); `health`: only /health; `replication`: other Synapse processes; `metrics`: Prometheus. */
    purpose: "requests" | "health" | "replication" | "metrics";
    port: number;
    /** The address it binds. */
    address: string;
}

/**
 * Whether a worker's metrics listener binds its host's private address: a
 * Prometheus on another host scrapes it (`metricsScrapedFrom`).
 */
export function metricsOnPrivateAddress(s: WorkerPoolSettings, w: WorkerSettings): boolean {
    return w.metricsPort !== undefined && s.metricsScrapedFrom !== undefined && s.metricsScrapedFrom !== w.host;
}

/** A lookup of the hosts' private addresses by label; a host it lacks is an error naming it (components check they exist first). */
export function privateAddressIn(addresses: Record<string, string>): (host: string) => string {
    return (host) => {
        const a = addresses[host];
        if (a === undefined) throw new Error(`no private address for ${host}`);
        return a;
    };
}

/**
 * Whether a Prometheus on host `from` reaches a worker's metrics listener:
 * the worker runs there (loopback), or its listener binds its own host's
 * private address opened to `from` (`metricsScrapedFrom`).
 */
export function metricsReachableFrom(s: WorkerPoolSettings, w: WorkerSettings, from: string): boolean {
    return w.metricsPort !== undefined && (w.host === from || (s.metricsScrapedFrom === from && metricsOnPrivateAddress(s, w)));
}

/**
 * The pool's hosts of its own (not Synapse's) whose workers' metrics a
 * Prometheus on another host scrapes (`metricsScrapedFrom`): each runs the
 * node exporter on its private address, opened to the scraping host alone,
 * so that host's disks and failed units are watched too. Synapse's host has
 * monitoring's own node exporter (MonitoringServer).
 */
export function nodeExporterHosts(s: WorkerPoolSettings): string[] {
    return [...new Set(s.workers.filter((w) => w.host !== s.mainHost && metricsOnPrivateAddress(s, w)).map((w) => w.host))];
}

/**
 * The address a worker's metrics listener binds: loopback, or its host's
 * private address for a Prometheus on another host (never every address:
 * Synapse's metrics carry no authentication, only that host may reach them).
 */
export function workerMetricsAddress(s: WorkerPoolSettings, w: WorkerSettings, privateAddress: (host: string) => string): string {
    if (!metricsOnPrivateAddress(s, w)) return "127.0.0.1";
    const address = privateAddress(w.host);
    if (isWildcardAddress(address))
        throw new ConfigError(
            w.host,
            "privateAddress",
            address,
            `expected the host's own address on the private network, such as 10.0.0.4: worker ${w.name}'s metrics listener binds it for the Prometheus on ${s.metricsScrapedFrom}, so it must never bind every address`,
        );
    return address;
}

/**
 * The listeners of a worker. `privateAddress(host)` gives a host's private
 * address. Requests of a worker on Synapse's host are on loopback (the
 * reverse proxy runs there); on another host, on its private address.
 * Replication is on loopback while the pool has one host, on the private
 * address when it spans hosts. /health-only listeners stay on loopback;
 * metrics too, unless a Prometheus on another host scrapes them
 * (`metricsScrapedFrom`): then they bind the private address.
 */
export function workerListeners(s: WorkerPoolSettings, w: WorkerSettings, privateAddress: (host: string) => string): WorkerListener[] {
    const local = w.host === s.mainHost;
    const serves = servesRequests(w.role);
    const requestsAddress = serves && !local ? privateAddress(w.host) : "127.0.0.1";
    // The requests listener trusts X-Forwarded-For (x_forwarded): on every address, any client could forge its source address.
    if (isWildcardAddress(requestsAddress))
        throw new ConfigError(
            w.host,
            "privateAddress",
            requestsAddress,
            `expected the host's own address on the private network, such as 10.0.0.4: worker ${w.name}'s request listener binds it and trusts the X-Forwarded-For header, so it must never bind every address`,
        );
    const out: WorkerListener[] = [
        serves ? { purpose: "requests", port: w.port, address: requestsAddress } : { purpose: "health", port: w.port, address: "127.0.0.1" },
    ];
    if (w.replicationPort !== undefined)
        out.push({ purpose: "replication", port: w.replicationPort, address: isMultiHost(s) ? privateAddress(w.host) : "127.0.0.1" });
    if (w.metricsPort !== undefined) {
        const metricsAddress = workerMetricsAddress(s, w, privateAddress);
        out.push({ purpose: "metrics", port: w.metricsPort, address: metricsAddress });
    }
    return out;
}

/** The address `instance_map` gives for a process on `host`. */
export function instanceAddress(s: WorkerPoolSettings, host: string, privateAddress: (host: string) => string): string {
    return isMultiHost(s) ? privateAddress(host) : "127.0.0.1";
}

/**
 * The ports the pool's workers on `host` bind there, and its node exporter's
 * (`nodeExporterHosts`); an address not known yet is claimed as every address.
 */
export function workerPortClaims(s: WorkerPoolSettings, host: string, privateAddress: (host: string) => string = () => "*"): PortClaim[] {
    const node: PortClaim[] = nodeExporterHosts(s).includes(host)
        ? [{ port: NODE_EXPORTER_PORT, protocol: "tcp", address: privateAddress(host), owner: "node exporter (the pool's metricsScrapedFrom)" }]
        : [];
    const listeners = s.workers
        .filter((w) => w.host === host)
        .flatMap((w) =>
            workerListeners(s, w, privateAddress).map((l) => ({
                port: l.port,
                protocol: "tcp" as const,
                address: l.address,
                owner: `worker ${w.name} ${l.purpose === "requests" || l.purpose === "health" ? "http" : l.purpose} listener`,
                // A port the user wrote is named as written; default ports and the derived replication/metrics ports by their listener.
                ...((l.purpose === "requests" || l.purpose === "health") && w.portFrom.setting !== "basePort" && l.port === w.portFrom.value
                    ? { setting: w.portFrom.setting }
                    : {}),
            })),
        );
    return [...listeners, ...node];
}

/**
 * The openings the pool needs on `host`: when it spans hosts, replication
 * listeners (the main process's, given as `mainReplicationPort`, and stream
 * writers') from the pool's other hosts, and request listeners of workers
 * on another host than Synapse's from Synapse's host (where the reverse
 * proxy runs); with `metricsScrapedFrom`, the metrics listeners of workers
 * on other hosts than the scraping one, and the node exporter of a host of
 * the pool's own (`nodeExporterHosts`), from that host alone. None on one
 * host without a Prometheus elsewhere.
 */
export function workerFirewallRules(
    s: WorkerPoolSettings,
    host: string,
    privateAddress: (host: string) => string,
    mainReplicationPort: number,
): FirewallRule[] {
    const multi = isMultiHost(s);
    const others = poolHosts(s)
        .filter((h) => h !== host)
        .map((h) => singleAddress(privateAddress(h)));
    const rules: FirewallRule[] = [];
    if (multi && host === s.mainHost) rules.push({ port: mainReplicationPort, protocol: "tcp", sources: others, owner: "synapse replication" });
    for (const w of s.workers.filter((x) => x.host === host)) {
        for (const l of workerListeners(s, w, privateAddress)) {
            if (multi && l.purpose === "replication") rules.push({ port: l.port, protocol: "tcp", sources: others, owner: `worker ${w.name} replication` });
            if (multi && l.purpose === "requests" && host !== s.mainHost)
                rules.push({ port: l.port, protocol: "tcp", sources: [singleAddress(privateAddress(s.mainHost))], owner: `worker ${w.name} requests` });
            if (l.purpose === "metrics" && metricsOnPrivateAddress(s, w))
                rules.push({
                    port: l.port,
                    protocol: "tcp",
                    sources: [singleAddress(privateAddress(s.metricsScrapedFrom!))],
                    owner: `worker ${w.name} metrics`,
                });
        }
    }
    if (nodeExporterHosts(s).includes(host))
        rules.push({ port: NODE_EXPORTER_PORT, protocol: "tcp", sources: [singleAddress(privateAddress(s.metricsScrapedFrom!))], owner: "node exporter" });
    return rules;
}

/**
 * The hosts whose private address the pool needs: every host of a pool
 * that spans hosts; with `metricsScrapedFrom`, the scraping host and every
 * host whose workers' metrics it scrapes there.
 */
export function hostsNeedingPrivateAddress(s: WorkerPoolSettings): string[] {
    const scraped = s.workers.filter((w) => metricsOnPrivateAddress(s, w)).map((w) => w.host);
    return [
        ...new Set([
            ...(isMultiHost(s) ? poolHosts(s) : []),
            ...scraped,
            ...(scraped.length && s.metricsScrapedFrom !== undefined ? [s.metricsScrapedFrom] : []),
        ]),
    ];
}

/** The workers of a role, in order. */
export function workersOf(s: WorkerPoolSettings, role: WorkerRole): WorkerSettings[] {
    return s.workers.filter((w) => w.role === role);
}

/** The names in `federation_sender_instances`, in order (empty: the main process sends). */
export function federationSenders(s: WorkerPoolSettings): string[] {
    return workersOf(s, "federation_sender").map((w) => w.name);
}

/** A worker without Redis: the error for a pool that is given none. */
export function noRedisError(component: string): ConfigError {
    return new ConfigError(
        component,
        "redis",
        undefined,
        "workers talk to each other through Redis: give the WorkerPool a RedisServer (on a Host, or external)",
    );
}

/** The systemd template unit of worker processes, and one worker's instance of it. */
export const WORKER_UNIT_TEMPLATE = "matrix-synapse-worker@.service";
export function workerUnit(name: string): string {
    return `matrix-synapse-worker@${name}.service`;
}

/** The name of a worker's file set (set names take letters, digits and -). */
export function workerFileSet(name: string): string {
    return `worker-${name.replace(/_/g, "-")}`;
}

/**
 * What the pool learns from other resources, beside its settings: the
 * hosts' private addresses and how Redis is reached.
 */
export interface WorkerPeers {
    /** Each pool host's private address, by host label (used when the pool spans hosts). */
    privateAddresses: Record<string, string>;
    /** How every Synapse process reaches Redis (no password). */
    redis: RedisConnection;
    /** Redis asks for a password: it is in the secret file `redis_password` (Synapse's `redis.password_path`). */
    redisPassword: boolean;
}

/** The secret files the pool hands every Synapse process, under Synapse's secrets/. */
export const WORKER_SECRET_FILES = { replicationSecret: "worker_replication_secret", redisPassword: "redis_password" } as const;

/** Where the pool's files live, derived from Synapse's paths. */
export function workerFiles(paths: SynapsePaths) {
    const c = paths.configDir;
    return {
        /** The shared worker config: instance_map, redis, stream writers, ... (read after homeserver.yaml). */
        shared: `${c}/conf.d/40-workers.yaml`,
        /** federation_sender_instances alone: a change stops every sender before any starts. */
        senders: `${c}/conf.d/41-federation-senders.yaml`,
        /** The CA of an external Redis's certificate, when given. */
        redisCa: `${c}/redis-ca.pem`,
        workersDir: `${c}/workers`,
        worker: (name: string) => `${c}/workers/${name}.yaml`,
        replicationSecret: secretFilePath(paths, { name: WORKER_SECRET_FILES.replicationSecret, kind: "secret" }),
        redisPassword: secretFilePath(paths, { name: WORKER_SECRET_FILES.redisPassword, kind: "secret" }),
        unitTemplate: `/etc/systemd/system/${WORKER_UNIT_TEMPLATE}`,
    };
}

/** Where a worker that serves requests listens, for a reverse proxy. */
export interface WorkerUpstream {
    /** The worker's name (`worker_name`). */
    name: string;
    /** Its role: the routes of WORKER_ROUTES that name it go here. */
    role: WorkerRole;
    /** `http://<address>:<port>`, reachable from Synapse's host. */
    url: string;
}

/** Every worker's request listener, in the pool's order. */
export function workerUpstreams(s: WorkerPoolSettings, privateAddress: (host: string) => string): WorkerUpstream[] {
    return s.workers.flatMap((w) =>
        workerListeners(s, w, privateAddress)
            .filter((l) => l.purpose === "requests")
            .map((l) => ({ name: w.name, role: w.role, url: `http://${l.address.includes(":") ? `[${l.address}]` : l.address}:${l.port}` })),
    );
}

/** A worker's health URL: its first listener answers /health. */
export function workerHealthUrl(s: WorkerPoolSettings, w: WorkerSettings, privateAddress: (host: string) => string): string {
    const l = workerListeners(s, w, privateAddress)[0];
    const host = l.address.includes(":") ? `[${l.address}]` : l.address;
    return `http://${host}:${l.port}/health`;
}
