import { synapseFiles, SynapsePeers, SynapseSecretFile, SynapseSettings } from "../model/synapse";
import {
    federationSenders,
    nodeExporterHosts,
    WORKER_SECRET_FILES,
    workerFiles,
    workerFileSet,
    workerFirewallRules,
    workerHealthUrl,
    WorkerPeers,
    WorkerPoolSettings,
    WorkerSettings,
    workerUnit,
} from "../model/workers";
import { STATE_DIR } from "../render/drift";
import { PROMETHEUS_SCRAPE_FILES, renderWorkerScrapeConfig } from "../render/prometheus";
import { renderSynapseTarget } from "../render/synapse/units";
import { renderFederationSendersYaml, renderSharedWorkerYaml, renderWorkerList, renderWorkerUnit, renderWorkerYaml } from "../render/workers";
import { applyFileSet, ensureRunning, ensureStopped, Handler, handlerStep, ManagedFile, ServiceUnit, when } from "./apply";
import { firewallFragmentSet } from "./host";
import { nodeExporterStep } from "./nodeExporter";
import { indent, lines, raw, Sh, sh } from "./sh";
import { script } from "./shell";
import { requireSynapseUser, STANDBY_REASON, SYNAPSE_UNITS, synapseMainUnit, synapsePeerSecrets, synapseSharedFiles } from "./synapse";

/**
 * The scripts of a WorkerPool on one host. Restarts, as the issue of the
 * pool asks: a change to one worker's file restarts that worker only; a
 * change to the shared worker config restarts the main process, then every
 * worker, one by one, each healthy (/health) before the next; a change of
 * the federation sender list stops every sender before any starts again.
 * All of this is one mechanism: changes stop units or owe them a restart,
 * and `ensureRunning` (main first, then the workers in order) takes what is
 * owed and starts what is stopped, waiting for each one's /health.
 */

/** A worker as handlers see it: healthy once its first listener answers /health. */
export function workerServiceUnit(pool: WorkerPoolSettings, w: WorkerSettings, peers: WorkerPeers): ServiceUnit {
    return { name: workerUnit(w.name), health: { url: workerHealthUrl(pool, w, (h) => peers.privateAddresses[h]) }, healthTimeout: 300 };
}

function localWorkers(pool: WorkerPoolSettings, host: string): WorkerSettings[] {
    return pool.workers.filter((w) => w.host === host);
}

/** The secret values the pool writes on each of its hosts. */
export interface WorkerSecrets {
    /** `worker_replication_secret`: workers and the main process authenticate replication calls with it. */
    replicationSecret: string;
    /** Redis's password, when it has one. */
    redisPassword?: string;
}

/**
 * Writes the replication secret and Redis's password where every Synapse
 * process on the host reads them (secret stdin). When they change, the
 * running processes restart one by one: the main process (once it uses
 * them, i.e. once the shared worker config exists), then the workers the
 * host lists. It does not name the workers, so a change of the pool does
 * not change this script.
 */
export function workerSecretsScript(pool: WorkerPoolSettings, synapse: SynapseSettings, host: string, secrets: WorkerSecrets): string {
    const files = workerFiles(synapse.paths);
    const isMain = host === pool.mainHost;
    const restarts: Handler[] = [
        ...(isMain ? [when(sh`[ -e ${files.shared} ]`, [{ kind: "restart", unit: synapseMainUnit(synapse) }])] : []),
        { kind: "rolling-restart-listed", list: synapseFiles(synapse.paths).workerList },
    ];
    const secret = (name: string, content: string): SynapseSecretFile => ({ name, kind: "secret", content: `${content}\n` });
    return script("pulumi-matrix Synapse workers secrets", [
        synapsePeerSecrets(
            synapse,
            "workers-secrets",
            [
                secret(WORKER_SECRET_FILES.replicationSecret, secrets.replicationSecret),
                ...(secrets.redisPassword !== undefined ? [secret(WORKER_SECRET_FILES.redisPassword, secrets.redisPassword)] : []),
            ],
            restarts,
        ),
    ]);
}

/**
 * Before the federation sender list changes anywhere, stops the senders on
 * a host other than Synapse's that ran with the old list (or will run with
 * the new one), so no sender of the old list runs beside one of the new
 * list. The host's config step starts them again.
 */
export function workerSendersStopScript(pool: WorkerPoolSettings): string {
    const state = `${STATE_DIR}/workers/federation-senders`;
    const senders = federationSenders(pool);
    return script("pulumi-matrix Synapse federation senders: stop before the list changes", [
        sh`pm_old_senders=$(cat ${state} 2>/dev/null || true)`,
        applyFileSet({
            name: "workers-senders-state",
            files: [{ path: state, content: senders.map((n) => `${n}\n`).join("") }],
            onChange: [
                {
                    kind: "run",
                    command: lines([
                        sh`for pm_name in $pm_old_senders ${senders}; do`,
                        raw(`    pm_unit="matrix-synapse-worker@$pm_name.service"`),
                        sh`    if systemctl is-active -q "$pm_unit"; then echo "stopping $pm_unit"; systemctl stop "$pm_unit"; fi`,
                        sh`done`,
                    ]),
                },
            ],
        }),
    ]);
}

/** Stops, disables and removes the files of workers this host ran before and no longer runs (read from the old list). */
function removeGoneWorkers(list: string, units: string[]): Sh {
    return lines([
        sh`pm_workers_now=(${units})`,
        sh`if [ -f ${list} ]; then`,
        sh`    while read -r pm_unit _ <&3; do`,
        sh`        [ -n "$pm_unit" ] || continue`,
        raw(`        case " \${pm_workers_now[*]:-} " in *" $pm_unit "*) continue ;; esac`),
        sh`        echo "removing $pm_unit"`,
        sh`        systemctl disable --now -q "$pm_unit" 2>/dev/null || true`,
        raw(`        pm_name=\${pm_unit#matrix-synapse-worker@}; pm_name=\${pm_name%.service}`),
        raw(`        pm_prune "worker-\${pm_name//_/-}"; pm_done "worker-\${pm_name//_/-}"`),
        sh`    done 3<${list}`,
        sh`fi`,
    ]);
}

/** The file set of the node exporter on a host of the pool's own (`nodeExporterHosts`). */
export const WORKERS_NODE_EXPORTER_SET = "workers-node-exporter";

/** What a pool host's config step needs besides the pool's settings. */
export interface WorkerHostOptions {
    /** The component's name, for its firewall fragment and errors. */
    component: string;
    /** What Synapse learns from other resources: for homeserver.yaml on a host of the pool's own. */
    synapsePeers: SynapsePeers;
}

/**
 * The config step of the pool on one host: its workers' files and units,
 * the shared worker config, the federation sender list, the firewall
 * fragment, then every process started (or restarted, as owed) in order,
 * each healthy before the next. On a host other than Synapse's it also
 * writes homeserver.yaml and the log config (Synapse is installed there,
 * its main process disabled).
 */
export function workerConfigScript(
    pool: WorkerPoolSettings,
    synapse: SynapseSettings,
    host: string,
    peers: WorkerPeers | undefined,
    o: WorkerHostOptions,
): string {
    const f = synapseFiles(synapse.paths);
    const files = workerFiles(synapse.paths);
    const u = synapse.paths.user;
    const isMain = host === pool.mainHost;
    const workers = localWorkers(pool, host);
    const units = workers.map((w) => workerServiceUnit(pool, w, peers!));
    const main = synapseMainUnit(synapse);
    const owe = (list: ServiceUnit[]): Handler[] => list.map((unit) => ({ kind: "owe-restart", unit }));
    const mainIfHere = isMain ? [main] : [];
    const senders = federationSenders(pool);
    const localSenders = units.filter((_, i) => workers[i].role === "federation_sender");
    // A pool without workers removes what an earlier one wrote: the main process then runs alone again.
    const active = pool.workers.length > 0;
    const nodeExported = active && nodeExporterHosts(pool).includes(host);
    const scrape = active ? renderWorkerScrapeConfig(pool, synapse, host, (h) => peers!.privateAddresses[h]) : undefined;
    const sharedFiles: ManagedFile[] = active
        ? [
              { path: files.shared, content: renderSharedWorkerYaml(pool, synapse, peers!), mode: "0640", group: u },
              ...(peers!.redis.tls && peers!.redis.caCertificate ? [{ path: files.redisCa, content: peers!.redis.caCertificate, mode: "0644" }] : []),
          ]
        : [];
    const body: (Sh | string)[] = [
        `# ${workers.length} worker${workers.length === 1 ? "" : "s"} on this host: ${workers.map((w) => w.name).join(", ") || "none"}`,
        requireSynapseUser(synapse),
    ];
    if (!isMain) {
        body.push(
            sh`install -d -m 0750 -o ${u} -g ${u} ${[...new Set([synapse.paths.dataDir, synapse.paths.mediaStorePath])]}`,
            sh`install -d -m 0750 -o root -g ${u} ${synapse.paths.configDir} ${f.confD}`,
            // Only workers run here: the main process runs on Synapse's host.
            sh`if systemctl is-enabled -q ${SYNAPSE_UNITS.main} 2>/dev/null || systemctl is-active -q ${SYNAPSE_UNITS.main}; then systemctl disable --now -q ${SYNAPSE_UNITS.main}; echo ${`${SYNAPSE_UNITS.main} disabled: the main process runs on ${pool.mainHost}`}; fi`,
            // A restart owed to the main process here (a new version, changed secrets) is owed to the workers.
            lines([sh`if pm_take ${SYNAPSE_UNITS.main}; then`, indent(lines(owe(units).map(handlerStep))), sh`fi`]),
            applyFileSet({ name: "synapse-config", files: synapseSharedFiles(synapse, o.synapsePeers, o.component), onChange: owe(units) }),
        );
    }
    body.push(
        sh`install -d -m 0750 -o root -g ${u} ${files.workersDir}`,
        removeGoneWorkers(
            f.workerList,
            workers.map((w) => workerUnit(w.name)),
        ),
        applyFileSet({
            name: "workers-units",
            files: active
                ? [
                      { path: files.unitTemplate, content: renderWorkerUnit(synapse) },
                      ...(isMain ? [] : [{ path: `/etc/systemd/system/${SYNAPSE_UNITS.target}`, content: renderSynapseTarget() }]),
                  ]
                : [],
            onChange: [{ kind: "daemon-reload" }, ...owe(units)],
        }),
        // For a Prometheus the user runs: this host's workers' metrics listeners (issue 23); nothing restarts.
        applyFileSet({
            name: "workers-prometheus",
            files: active && scrape !== undefined ? [{ path: PROMETHEUS_SCRAPE_FILES.workers, content: scrape }] : [],
        }),
        // Read by Synapse's own scripts: after the main process they restart these, one by one.
        applyFileSet({
            name: "workers-list",
            files: active ? [{ path: f.workerList, content: renderWorkerList(pool, host, peers!), mode: "0640", group: u }] : [],
        }),
        applyFileSet({
            name: "workers-senders",
            files: active ? [{ path: files.senders, content: renderFederationSendersYaml(pool), mode: "0640", group: u }] : [],
            // Every sender stops before any starts again (ensureRunning below); the main process stops or starts sending.
            onChange: [{ kind: "stop", units: localSenders }, ...owe(mainIfHere)],
        }),
        ...workers.map((w, i) =>
            applyFileSet({
                name: workerFileSet(w.name),
                files: [{ path: files.worker(w.name), content: renderWorkerYaml(pool, w, synapse, peers!), mode: "0640", group: u }],
                onChange: owe([units[i]]),
            }),
        ),
        applyFileSet({ name: "workers-shared", files: sharedFiles, onChange: owe([...mainIfHere, ...units]) }),
        // A host of the pool's own whose workers' metrics a Prometheus elsewhere scrapes: its node is watched too (issue 23).
        ...(isMain ? [] : [nodeExporterStep(WORKERS_NODE_EXPORTER_SET, nodeExported ? peers!.privateAddresses[host] : undefined)]),
        applyFileSet(
            firewallFragmentSet(o.component, active ? workerFirewallRules(pool, host, (h) => peers!.privateAddresses[h], synapse.replication!.port) : []),
        ),
        ...(synapse.standby
            ? [
                  ensureStopped([...units.map((x) => x.name), ...(isMain ? [] : [SYNAPSE_UNITS.target])], STANDBY_REASON),
                  sh`echo ${`standby: ${workers.length} worker${workers.length === 1 ? "" : "s"} configured, stopped`}`,
              ]
            : [
                  ensureRunning([...mainIfHere, ...units], { enable: [...(isMain ? [] : [SYNAPSE_UNITS.target]), ...units.map((x) => x.name)] }),
                  sh`echo ${`${workers.length} worker${workers.length === 1 ? "" : "s"} healthy${senders.length ? `; federation sent by ${senders.join(", ")}` : ""}`}`,
              ]),
    );
    return script(`pulumi-matrix Synapse workers on ${host}`, body);
}
