/**
 * Monitoring's files: Prometheus's config (every scrape job inline: Debian
 * bookworm's Prometheus 2.42 predates `scrape_config_files`), the library's
 * alert rules, Alertmanager's config, blackbox's modules, the exporters'
 * arguments (Debian's units read `ARGS` from /etc/default/<unit>), the
 * root-only environment files with their credentials, and nginx's
 * stub_status on loopback.
 */
import { BACKUP_METRIC } from "../model/backup";
import { ALERT_THRESHOLDS, EXPORTER_PORTS, MONITORING_FILES, MonitoringSettings, MonitoringUnit } from "../model/monitoring";
import { FAILED_UNIT_REGEX } from "../model/nodeExporter";
import { REDIS_EXPORTER_USER, REDIS_FILES } from "../model/redis";
import { SynapseSettings } from "../model/synapse";
import { dialAddress } from "../model/validate";
import { metricsReachableFrom, privateAddressIn, WorkerPoolSettings } from "../model/workers";
import { nodeExporterArgs } from "./nodeExporter";
import { poolNodeTargets, reachableWorkerTargets, SYNAPSE_METRICS_PATH, synapseMainTargets } from "./prometheus";
import { envLine, renderArgsDefaults, UNIT_HEADER } from "./systemd";
import { MANAGED_HEADER, renderYaml } from "./yaml";

type StaticConfig = { targets: string[]; labels?: Record<string, string> };
type Job = Record<string, unknown> & { job_name: string };

const local = (port: number) => `127.0.0.1:${port}`;

/**
 * The exporters' scrape jobs, for what runs on this host; the node job also
 * scrapes `otherNodes` (the node exporters of a WorkerPool's hosts, at their
 * private addresses). Node targets carry the `host` they watch.
 */
export function exporterJobs(s: MonitoringSettings, otherNodes: StaticConfig[] = []): Job[] {
    const job = (name: string, port: number, more: StaticConfig[] = []): Job => ({
        job_name: name,
        scrape_interval: "15s",
        static_configs: [{ targets: [local(port)], labels: { instance: s.serverName, ...(name === "node" ? { host: s.host } : {}) } }, ...more],
    });
    return [
        job("node", EXPORTER_PORTS.node, otherNodes),
        ...(s.postgres ? [job("postgres", EXPORTER_PORTS.postgres)] : []),
        ...(s.redis ? [job("redis", EXPORTER_PORTS.redis)] : []),
        ...(s.proxy ? [job("nginx", EXPORTER_PORTS.nginx)] : []),
    ];
}

/** The probes blackbox makes: Synapse's /health, and with the proxy the HTTPS answer (and its certificate's expiry). */
export function probeJobs(s: MonitoringSettings): Job[] {
    const probe = (name: string, module: string, target: string): Job => ({
        job_name: name,
        scrape_interval: "30s",
        metrics_path: "/probe",
        params: { module: [module] },
        static_configs: [{ targets: [target], labels: { server: s.serverName } }],
        relabel_configs: [
            { source_labels: ["__address__"], target_label: "__param_target" },
            { source_labels: ["__param_target"], target_label: "instance" },
            { target_label: "__address__", replacement: local(EXPORTER_PORTS.blackbox) },
        ],
    });
    return [
        probe("synapse_health", "synapse_health", s.healthUrl),
        ...(s.proxy ? [probe("https", "https_certificate", `https://${dialAddress(s.proxy.address, 443)}/_matrix/client/versions`)] : []),
    ];
}

/**
 * Synapse's jobs as the user's scrape files have them: the main process and
 * the workers this host reaches (those on it, and those on other hosts whose
 * metrics are scraped from it, at the private addresses `privateAddresses`
 * gives by host label).
 */
function synapseJobs(synapse: SynapseSettings, pool: WorkerPoolSettings | undefined, privateAddresses: Record<string, string>): Job[] {
    const statics = (ts: ReturnType<typeof synapseMainTargets>): StaticConfig[] => ts.map((t) => ({ targets: [t.target], labels: { ...t.labels } }));
    const main = synapseMainTargets(synapse);
    const workers = pool ? reachableWorkerTargets(pool, synapse, pool.mainHost, privateAddressIn(privateAddresses)) : [];
    const job = (name: string, ts: ReturnType<typeof synapseMainTargets>): Job => ({
        job_name: name,
        scrape_interval: "15s",
        metrics_path: SYNAPSE_METRICS_PATH,
        static_configs: statics(ts),
    });
    return [...(main.length ? [job("synapse", main)] : []), ...(workers.length ? [job("synapse_workers", workers)] : [])];
}

/**
 * The node exporters of the pool's hosts of its own that this host's
 * Prometheus scrapes (`nodeExporterHosts`, opened to it: `metricsScrapedFrom`
 * is Synapse's host), at their private addresses, labelled with their host.
 */
function poolNodes(s: MonitoringSettings, pool: WorkerPoolSettings | undefined, privateAddresses: Record<string, string>): StaticConfig[] {
    if (!pool) return [];
    return poolNodeTargets(pool, s.serverName, privateAddressIn(privateAddresses)).map((t) => ({ targets: [t.target], labels: t.labels }));
}

/** Workers on other hosts this host's Prometheus scrapes (their metrics opened to it: `metricsScrapedFrom`). */
export function remoteScrapedWorkers(pool: WorkerPoolSettings | undefined): string[] {
    if (!pool) return [];
    return pool.workers.filter((w) => w.host !== pool.mainHost && metricsReachableFrom(pool, w, pool.mainHost)).map((w) => w.name);
}

/**
 * Prometheus's config: Synapse and its workers (on this host, and on other
 * hosts whose metrics are opened to it: `privateAddresses` by host label),
 * the exporters, the probes, Prometheus and Alertmanager themselves; the
 * rule files; Alertmanager on loopback.
 */
export function renderPrometheusConfig(
    s: MonitoringSettings,
    synapse: SynapseSettings,
    pool?: WorkerPoolSettings,
    privateAddresses: Record<string, string> = {},
): string {
    const self = (name: string, port: number): Job => ({ job_name: name, static_configs: [{ targets: [local(port)], labels: { instance: s.serverName } }] });
    const remote = remoteScrapedWorkers(pool);
    return renderYaml(
        {
            global: { scrape_interval: "15s", evaluation_interval: "15s" },
            alerting: { alertmanagers: [{ static_configs: [{ targets: [local(s.alertmanagerPort)] }] }] },
            rule_files: [`${MONITORING_FILES.rulesDir}/*.yml`],
            scrape_configs: [
                ...synapseJobs(synapse, pool, privateAddresses),
                ...exporterJobs(s, poolNodes(s, pool, privateAddresses)),
                ...probeJobs(s),
                self("prometheus", s.prometheusPort),
                self("alertmanager", s.alertmanagerPort),
            ],
        },
        [
            MANAGED_HEADER,
            remote.length
                ? `Prometheus's config (pulumi-matrix monitoring). Every target is on this host's loopback, except the workers on other hosts (${remote.join(", ")}): their metrics listeners bind their hosts' private addresses, opened to this host alone.`
                : "Prometheus's config (pulumi-matrix monitoring). Every target is on this host's loopback.",
        ].join("\n"),
    );
}

/** The exporters' scrape jobs for a Prometheus of the user's own (the same jobs as the stack's own Prometheus has). */
export function renderExportersScrapeConfig(s: MonitoringSettings): string {
    return renderYaml(
        { scrape_configs: [...exporterJobs(s), ...probeJobs(s)] },
        [
            MANAGED_HEADER,
            "Prometheus scrape jobs for the exporters pulumi-matrix's monitoring runs on this host (all on loopback):",
            "paste them under scrape_configs in prometheus.yml, or include this file with scrape_config_files (Prometheus 2.43 and later).",
            "The probes need the blackbox exporter's modules in " + MONITORING_FILES.blackbox + ".",
        ].join("\n"),
    );
}

/** One alert: its name, expression, how long it must hold, and what it means. */
export interface AlertRule {
    alert: string;
    expr: string;
    for: string;
    severity: "critical" | "warning";
    summary: string;
    description: string;
}

/** The library's alerts (README: Maintenance and monitoring, what each one means). */
export function alertRules(): AlertRule[] {
    const t = ALERT_THRESHOLDS;
    return [
        {
            alert: "TargetDown",
            expr: "up == 0",
            for: "5m",
            severity: "critical",
            summary: "{{ $labels.job }} at {{ $labels.instance }} does not answer",
            description: "Prometheus could not scrape {{ $labels.job }} (index {{ $labels.index }}) for 5 minutes: the process is down or hangs.",
        },
        {
            alert: "RedisDown",
            expr: "redis_up == 0",
            for: "5m",
            severity: "critical",
            summary: "Redis at {{ $labels.instance }} does not answer its exporter",
            description:
                "The Redis exporter runs but has not reached Redis for 5 minutes: Synapse's workers lose their replication stream (see journalctl -u redis-server).",
        },
        {
            alert: "ProbeFailed",
            expr: "probe_success == 0",
            for: "5m",
            severity: "critical",
            summary: "{{ $labels.job }} probe of {{ $labels.instance }} fails",
            description:
                "synapse_health: Synapse's /health does not answer OK. https: the homeserver does not answer over HTTPS through nginx with a valid certificate.",
        },
        {
            alert: "BackupTooOld",
            expr: `time() - ${BACKUP_METRIC} > ${t.backupAgeHours} * 3600`,
            for: "10m",
            severity: "critical",
            summary: `The last successful backup is more than ${t.backupAgeHours} hours old`,
            description: `${BACKUP_METRIC} (written by the backup service) is older than the nightly backup allows.`,
        },
        {
            alert: "DiskAlmostFull",
            expr: `100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|squashfs|overlay"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|squashfs|overlay"}) > ${t.diskPercent}`,
            for: "15m",
            severity: "warning",
            summary: `{{ $labels.mountpoint }} on {{ $labels.host }} is more than ${t.diskPercent}% full`,
            description: "Media, the database and the journal grow here; Synapse and PostgreSQL stop working when it is full.",
        },
        {
            alert: "SynapseFederationSendQueue",
            expr: `sum by (instance) (synapse_federation_transaction_queue_pending_pdus) > ${t.federationPendingPdus}`,
            for: "15m",
            severity: "warning",
            summary: "Events wait to be sent to other servers",
            description: `More than ${t.federationPendingPdus} PDUs wait in the federation senders' queues for 15 minutes: remote servers are unreachable or the senders are overloaded.`,
        },
        {
            alert: "SynapseEventProcessingLag",
            expr: `max by (instance) (synapse_event_persisted_position) - on (instance) max by (instance) (synapse_event_processing_positions{name="federation_sender"}) > ${t.federationSenderEventsBehind}`,
            for: "15m",
            severity: "warning",
            summary: "The federation sender falls behind the persisted events",
            description: `More than ${t.federationSenderEventsBehind} persisted events have not been handled by the federation sender for 15 minutes.`,
        },
        {
            alert: "SystemdUnitFailed",
            expr: `node_systemd_unit_state{state="failed", name=~"${FAILED_UNIT_REGEX}"} == 1`,
            for: "1m",
            severity: "critical",
            summary: "{{ $labels.name }} failed on {{ $labels.host }}",
            description:
                "A unit of the homeserver (Synapse, a worker, a backup or maintenance timer's service) is in the failed state: see journalctl -u {{ $labels.name }} on that host.",
        },
        {
            alert: "CertificateExpiresSoon",
            expr: `probe_ssl_earliest_cert_expiry - time() < ${t.certificateDays} * 86400`,
            for: "1h",
            severity: "warning",
            summary: `The certificate of {{ $labels.instance }} expires within ${t.certificateDays} days`,
            description: "certbot renews 30 days before expiry: its renewals fail (see journalctl -u certbot).",
        },
    ];
}

/** The library's alert rules as a Prometheus rule file. */
export function renderAlertRules(): string {
    return renderYaml(
        {
            groups: [
                {
                    name: "pulumi-matrix",
                    rules: alertRules().map((r) => ({
                        alert: r.alert,
                        expr: r.expr,
                        for: r.for,
                        labels: { severity: r.severity },
                        annotations: { summary: r.summary, description: r.description },
                    })),
                },
            ],
        },
        [MANAGED_HEADER, "pulumi-matrix's alerts (README: Maintenance and monitoring)."].join("\n"),
    );
}

/**
 * Alertmanager's config: one receiver with e-mail through Synapse's SMTP
 * server when `alertEmail` is set and the alert room's relay when
 * `alertRoom` is; without either, alerts are only shown.
 */
export function renderAlertmanagerConfig(s: MonitoringSettings): string {
    const e = s.alertEmail;
    const room = s.alertRoom;
    const receiver = e && room ? "email-and-room" : e ? "email" : room ? "room" : "none";
    const says = [...(e ? ["by e-mail"] : []), ...(room ? [`into the Matrix room ${room.room} (the relay on 127.0.0.1:${room.port})`] : [])];
    return renderYaml(
        {
            ...(e
                ? {
                      global: {
                          smtp_smarthost: `${e.smtp.host}:${e.smtp.port}`,
                          smtp_from: e.from,
                          smtp_require_tls: e.smtp.requireTls,
                          ...(e.smtp.user !== undefined ? { smtp_auth_username: e.smtp.user } : {}),
                      },
                  }
                : {}),
            route: { receiver, group_by: ["alertname", "instance"], group_wait: "30s", group_interval: "5m", repeat_interval: "4h" },
            receivers: [
                {
                    name: receiver,
                    ...(e
                        ? {
                              email_configs: [
                                  {
                                      to: e.to.join(", "),
                                      send_resolved: true,
                                      ...(e.smtp.user !== undefined ? { auth_password_file: MONITORING_FILES.smtpPassword } : {}),
                                  },
                              ],
                          }
                        : {}),
                    ...(room
                        ? {
                              webhook_configs: [
                                  {
                                      url: `http://127.0.0.1:${room.port}/alerts`,
                                      send_resolved: true,
                                      http_config: { authorization: { type: "Bearer", credentials_file: MONITORING_FILES.alertRoomWebhookToken } },
                                  },
                              ],
                          }
                        : {}),
                },
            ],
        },
        [
            MANAGED_HEADER,
            says.length
                ? `Alertmanager: alerts ${says.join(" and ")}.`
                : "Alertmanager: no receiver (monitoring.alertEmail is not set); alerts show on its page only.",
        ].join("\n"),
    );
}

/** blackbox's modules: Synapse's /health, and the homeserver over HTTPS through nginx (its certificate's expiry). */
export function renderBlackboxConfig(s: MonitoringSettings): string {
    return renderYaml(
        {
            modules: {
                synapse_health: {
                    prober: "http",
                    timeout: "5s",
                    http: { valid_status_codes: [200], fail_if_body_not_matches_regexp: ["^OK$"], ip_protocol_fallback: true },
                },
                ...(s.proxy
                    ? {
                          https_certificate: {
                              prober: "http",
                              timeout: "10s",
                              http: {
                                  valid_status_codes: [200],
                                  fail_if_not_ssl: true,
                                  headers: { Host: s.proxy.domain },
                                  tls_config: { server_name: s.proxy.domain, insecure_skip_verify: !s.proxy.verify },
                                  ip_protocol_fallback: true,
                              },
                          },
                      }
                    : {}),
            },
        },
        MANAGED_HEADER,
    );
}

/** /etc/default/<unit>: the arguments Debian's unit passes (`$ARGS`); loopback only. */
export function renderExporterDefaults(s: MonitoringSettings, unit: MonitoringUnit): string {
    const f = MONITORING_FILES;
    const args: Record<MonitoringUnit, string[]> = {
        prometheus: [`--config.file=${f.prometheus}`, `--web.listen-address=${local(s.prometheusPort)}`, `--storage.tsdb.retention.time=${s.retention}`],
        alertmanager: [
            `--config.file=${f.alertmanager}`,
            `--web.listen-address=${local(s.alertmanagerPort)}`,
            // One instance: no cluster port (9094 on every address otherwise).
            "--cluster.listen-address=",
        ],
        node: nodeExporterArgs("127.0.0.1"),
        postgres: [`--web.listen-address=${local(EXPORTER_PORTS.postgres)}`],
        nginx: [`-web.listen-address=${local(EXPORTER_PORTS.nginx)}`, `-nginx.scrape-uri=http://${local(s.proxy?.statusPort ?? 0)}/stub_status`],
        blackbox: [`--config.file=${f.blackbox}`, `--web.listen-address=${local(EXPORTER_PORTS.blackbox)}`],
        // The user and password come from the root-only environment file (REDIS_USER, REDIS_PASSWORD); its ACL user may not set a client name.
        redis: [
            `-web.listen-address=${local(EXPORTER_PORTS.redis)}`,
            `-redis.addr=${s.redis?.tls ? "rediss" : "redis"}://${local(s.redis?.port ?? 0)}`,
            ...(s.redis?.tls ? [`-tls-ca-cert-file=${REDIS_FILES.tlsCa}`] : []),
            "-set-client-name=false",
        ],
    };
    return renderArgsDefaults(args[unit]);
}

/** A drop-in that gives an exporter's unit its root-only environment file (systemd reads it as root; the exporter gets the values). */
export function renderExporterEnvDropIn(envFile: string): string {
    return `${UNIT_HEADER}
[Service]
EnvironmentFile=${envFile}
`;
}

/**
 * The PostgreSQL exporter's connection: the local socket as the
 * `prometheus` role, authenticated as the `prometheus` system user (peer),
 * so there is no password to keep.
 */
export function renderPostgresExporterEnv(s: MonitoringSettings): string {
    const pg = s.postgres!;
    return `${envLine("DATA_SOURCE_NAME", `host=/var/run/postgresql port=${pg.port} user=prometheus dbname=${pg.database} sslmode=disable`)}\n`;
}

/**
 * The Redis exporter's login: its own ACL user (`REDIS_EXPORTER_USER`) and
 * password, as the environment the exporter reads them from.
 */
export function renderRedisExporterEnv(password: string): string {
    return `${envLine("REDIS_USER", REDIS_EXPORTER_USER.name)}\n${envLine("REDIS_PASSWORD", password)}\n`;
}

/** nginx's stub_status on loopback only, for the nginx exporter. */
export function renderNginxStatus(s: MonitoringSettings): string {
    const p = s.proxy!;
    return `${UNIT_HEADER}
# nginx's connection counters for the nginx exporter (loopback only).
server {
    listen 127.0.0.1:${p.statusPort};
    server_name localhost;
    access_log off;
    location = /stub_status {
        stub_status;
    }
    location / {
        return 404;
    }
}
`;
}
