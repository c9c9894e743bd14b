import { synapseFiles, SynapseSettings } from "../model/synapse";
import {
    federationSenders,
    instanceAddress,
    privateAddressIn,
    WORKER_ROLE_SPECS,
    WORKER_ROLES,
    workerFiles,
    workerHealthUrl,
    workerListeners,
    WorkerPeers,
    WorkerPoolSettings,
    WorkerRole,
    WorkerSettings,
    workersOf,
    WorkerStream,
    workerUnit,
} from "../model/workers";
import { WORKER_ROUTES, WorkerRoute } from "../model/workers/routes";
import { renderSynapseProcessUnit } from "./synapse/units";
import { MANAGED_HEADER, renderYaml } from "./yaml";

/**
 * The files of Synapse's workers: each worker's own YAML, the systemd
 * template unit, the shared worker config (a conf.d fragment every process
 * reads after homeserver.yaml), the federation sender list (a fragment of
 * its own, so its change is seen apart), the list of a host's worker
 * processes that Synapse's scripts restart, and the route table as text.
 */

/** A pool host's private address, or an error naming the host (the component checks they exist first). */
function addressOf(peers: WorkerPeers): (host: string) => string {
    return privateAddressIn(peers.privateAddresses);
}

/** A worker's own config: its name, listeners and log config; everything else is shared. */
export function workerConfig(pool: WorkerPoolSettings, w: WorkerSettings, synapse: SynapseSettings, peers: WorkerPeers): Record<string, unknown> {
    const spec = WORKER_ROLE_SPECS[w.role];
    const listeners = workerListeners(pool, w, addressOf(peers)).map((l) => {
        switch (l.purpose) {
            case "requests":
                return {
                    type: "http",
                    port: l.port,
                    bind_addresses: [l.address],
                    x_forwarded: true,
                    resources: [{ names: [...spec.resources], compress: false }],
                };
            case "health":
                return { type: "http", port: l.port, bind_addresses: [l.address], resources: [{ names: ["health"] }] };
            case "replication":
                return { type: "http", port: l.port, bind_addresses: [l.address], resources: [{ names: ["replication"] }] };
            case "metrics":
                return { type: "metrics", port: l.port, bind_addresses: [l.address] };
        }
    });
    return {
        worker_app: "synapse.app.generic_worker",
        worker_name: w.name,
        worker_listeners: listeners,
        worker_log_config: synapseFiles(synapse.paths).logConfig,
        // The shared config turns the media repository off for every other process.
        ...(w.role === "media_repository" ? { enable_media_repo: true } : {}),
    };
}

/** `<configDir>/workers/<name>.yaml`. */
export function renderWorkerYaml(pool: WorkerPoolSettings, w: WorkerSettings, synapse: SynapseSettings, peers: WorkerPeers): string {
    return renderYaml(
        workerConfig(pool, w, synapse, peers),
        `${MANAGED_HEADER}\nWorker ${w.name} (${w.role}: ${WORKER_ROLE_SPECS[w.role].summary}); read after homeserver.yaml and conf.d/.`,
    );
}

/** The streams with writers, in the order of their roles in WORKER_ROLES, with their writers' names. */
function streamWriters(pool: WorkerPoolSettings): [WorkerStream, string[]][] {
    const out = new Map<WorkerStream, string[]>();
    for (const role of WORKER_ROLES) {
        const names = workersOf(pool, role).map((w) => w.name);
        if (!names.length) continue;
        for (const stream of WORKER_ROLE_SPECS[role].streams ?? []) out.set(stream, [...(out.get(stream) ?? []), ...names]);
    }
    return [...out];
}

function single(pool: WorkerPoolSettings, role: WorkerRole): string | undefined {
    return workersOf(pool, role)[0]?.name;
}

/**
 * The shared worker config every Synapse process reads (conf.d/40-workers.yaml):
 * instance_map (main and every stream writer), redis, the replication
 * secret's path and who does what. No secret in it.
 */
export function sharedWorkerConfig(pool: WorkerPoolSettings, synapse: SynapseSettings, peers: WorkerPeers): Record<string, unknown> {
    const address = addressOf(peers);
    const files = workerFiles(synapse.paths);
    const r = peers.redis;
    const writers = pool.workers.filter((w) => w.replicationPort !== undefined);
    const config: Record<string, unknown> = {
        instance_map: Object.fromEntries([
            ["main", { host: instanceAddress(pool, pool.mainHost, address), port: synapse.replication!.port }],
            ...writers.map((w) => [w.name, { host: instanceAddress(pool, w.host, address), port: w.replicationPort }]),
        ]),
        redis: {
            enabled: true,
            host: r.host,
            port: r.port,
            ...(r.user ? { username: r.user } : {}),
            ...(peers.redisPassword ? { password_path: files.redisPassword } : {}),
            ...(r.tls ? { use_tls: true } : {}),
            ...(r.tls && r.caCertificate ? { ca_file: files.redisCa } : {}),
        },
        worker_replication_secret_path: files.replicationSecret,
    };
    const streams = streamWriters(pool);
    if (streams.length) config.stream_writers = Object.fromEntries(streams);
    const pushers = workersOf(pool, "pusher").map((w) => w.name);
    if (pushers.length) config.pusher_instances = pushers;
    const duties: [WorkerRole, string][] = [
        ["background", "run_background_tasks_on"],
        ["user_dir", "update_user_directory_from_worker"],
        ["appservice", "notify_appservices_from_worker"],
        ["media_repository", "media_instance_running_background_jobs"],
    ];
    for (const [role, option] of duties) {
        const name = single(pool, role);
        if (name) config[option] = name;
    }
    if (single(pool, "media_repository")) config.enable_media_repo = false;
    return config;
}

/** conf.d/40-workers.yaml. */
export function renderSharedWorkerYaml(pool: WorkerPoolSettings, synapse: SynapseSettings, peers: WorkerPeers): string {
    return renderYaml(
        sharedWorkerConfig(pool, synapse, peers),
        `${MANAGED_HEADER}\nThe shared config of Synapse's workers, read by the main process and every worker after homeserver.yaml.\nThe Redis password and the replication secret are in ${synapseFiles(synapse.paths).secretsDir}/ (not shown here).`,
    );
}

/**
 * conf.d/41-federation-senders.yaml: the workers that send federation (the
 * main process then sends none). Empty of settings without senders.
 */
export function renderFederationSendersYaml(pool: WorkerPoolSettings): string {
    const senders = federationSenders(pool);
    return renderYaml(
        senders.length ? { federation_sender_instances: senders } : {},
        `${MANAGED_HEADER}\nWho sends federation traffic; a change stops every sender before any starts again (Synapse requires it).${senders.length ? "" : "\nNo federation_sender workers: the main process sends."}`,
    );
}

/** The template unit of every worker process: `matrix-synapse-worker@<name>.service`, part of matrix-synapse.target. */
export function renderWorkerUnit(s: SynapseSettings): string {
    return renderSynapseProcessUnit(s, {
        description: "worker %i",
        after: ["matrix-synapse.service"],
        app: "synapse.app.generic_worker",
        extraConfigPaths: [`${synapseFiles(s.paths).workersDir}/%i.yaml`],
        startTimeout: "TimeoutStartSec=5min",
        syslogIdentifier: "matrix-synapse-%i",
    });
}

/** The worker processes on `host` as Synapse's scripts restart them: `<unit> <health URL>` per line. */
export function renderWorkerList(pool: WorkerPoolSettings, host: string, peers: WorkerPeers): string {
    return pool.workers
        .filter((w) => w.host === host)
        .map((w) => `${workerUnit(w.name)} ${workerHealthUrl(pool, w, addressOf(peers))}\n`)
        .join("");
}

/** The route table as text (one route a line: regex, methods, roles in order of preference, stickiness), for review and golden files. */
export function renderRouteTable(routes: readonly WorkerRoute[] = WORKER_ROUTES): string {
    const rows = routes.map((r) => {
        const targets = r.targets.map((t) => `${t.role}${t.methods ? `(${t.methods.join(",")})` : ""}`).join(" > ");
        return `${r.pattern}\t${targets} > main\t${r.sticky}`;
    });
    return `# regex\troles, first with workers wins (main otherwise)\tstickiness\n${rows.join("\n")}\n`;
}
