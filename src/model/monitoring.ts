import { ConfigError, Described } from "./errors";
import { PortClaim } from "./host";
import { NODE_EXPORTER_PORT, NODE_EXPORTER_TEXTFILE_DIR, NODE_EXPORTER_UNIT } from "./nodeExporter";
import { AcmeSettings, LETS_ENCRYPT } from "./proxy/acme";
import { synapseFiles, SynapsePaths, SynapseSettings } from "./synapse";
import { Checker, dialAddress, isEmail, isLocalpart, isPlainUrl, isServerName } from "./validate";
import { metricsReachableFrom, WorkerPoolSettings } from "./workers";

/**
 * Monitoring on Synapse's host (issue 23): Prometheus, Alertmanager and the
 * node, PostgreSQL, Redis, nginx and blackbox exporters, all Debian's
 * packages, all listening on 127.0.0.1 only; Synapse's recording rules
 * pinned and verified; alert rules of the library's own; alerts by e-mail
 * through the stack's SMTP server and into a Matrix room (the alert room:
 * a relay of the library's own that Alertmanager calls on loopback and
 * that posts as a bot account of the homeserver). Grafana is not in Debian and is not part
 * of it. Reached through an SSH tunnel (README: Maintenance and monitoring).
 *
 * With Redis installed on the host, the Redis exporter logs in as an ACL
 * user of its own (`REDIS_EXPORTER_USER`: statistics only, no keys), with a
 * password the RedisServer makes; Synapse's user is denied INFO (`@dangerous`).
 */

/** The alert room relay's unit (named so a failure of it alerts, as every `pulumi-matrix-*` unit's). */
export const ALERT_ROOM_UNIT = "pulumi-matrix-alert-room";

/** Where monitoring's files live on the host. */
const DIR = "/etc/pulumi-matrix/monitoring";
export const MONITORING_FILES = {
    /** Readable: Prometheus's, Alertmanager's and blackbox's configs and the rules. */
    dir: DIR,
    prometheus: `${DIR}/prometheus.yml`,
    rulesDir: `${DIR}/rules`,
    /** The library's own alert rules. */
    alertRules: `${DIR}/rules/pulumi-matrix-alerts.yml`,
    /** Synapse's recording rules, downloaded on the host and verified against their SHA-256. */
    synapseRules: `${DIR}/rules/synapse-v2.rules.yml`,
    alertmanager: `${DIR}/alertmanager.yml`,
    blackbox: `${DIR}/blackbox.yml`,
    /** Root-only files: the PostgreSQL exporter's DSN (EnvironmentFile=), the SMTP password. */
    secretDir: `${DIR}/private`,
    postgresEnv: `${DIR}/private/postgres-exporter.env`,
    /** The Redis exporter's ACL user and password (EnvironmentFile=), 0600 root. */
    redisEnv: `${DIR}/private/redis-exporter.env`,
    /** The SMTP password Alertmanager reads (`auth_password_file`), 0640 root:prometheus. */
    smtpPassword: `${DIR}/private/smtp-password`,
    /** The alert room's relay: its program and its settings (room, homeserver URL; nothing secret). */
    alertRoomProgram: `${DIR}/alert-room.py`,
    alertRoomConfig: `${DIR}/alert-room.json`,
    alertRoomUnit: `/etc/systemd/system/${ALERT_ROOM_UNIT}.service`,
    /** The token Alertmanager shows the relay (`credentials_file`), 0640 root:prometheus; made on the host. */
    alertRoomWebhookToken: `${DIR}/private/alert-room-webhook-token`,
    /** The bot's access token (the relay reads it through LoadCredential=), 0600 root; made on the host. */
    alertRoomAccessToken: `${DIR}/private/alert-room-access-token`,
    /** Where earlier releases kept the bot's password (now `alertRoomPasswordFile`): moved from here once. */
    alertRoomPasswordFormer: `${DIR}/private/alert-room-password`,
    /** nginx's stub_status on loopback, for the nginx exporter. */
    nginxStatus: "/etc/nginx/conf.d/pulumi-matrix-status.conf",
    /** The scrape jobs of the exporters, for a Prometheus of the user's own. */
    exportersScrape: "/etc/pulumi-matrix/prometheus/exporters.yml",
    /** node_exporter's textfile collector directory (Debian's default); the backup service writes matrix_backup.prom here. */
    textfileDir: NODE_EXPORTER_TEXTFILE_DIR,
} as const;

/**
 * The alert room's bot's password, 0600 root, made on the host: among
 * Synapse's secret files, as the account lives in Synapse's database. So a
 * backup carries it, a restore (a move to a new VM) puts it back, and
 * turning the alert room off and on again finds the account's password.
 */
export function alertRoomPasswordFile(paths: SynapsePaths): string {
    return `${synapseFiles(paths).secretsDir}/alert_room_bot_password`;
}

/** The Debian packages and their units. */
export const MONITORING_UNITS = {
    prometheus: "prometheus",
    alertmanager: "prometheus-alertmanager",
    node: NODE_EXPORTER_UNIT,
    postgres: "prometheus-postgres-exporter",
    nginx: "prometheus-nginx-exporter",
    blackbox: "prometheus-blackbox-exporter",
    redis: "prometheus-redis-exporter",
} as const;
export type MonitoringUnit = keyof typeof MONITORING_UNITS;

/**
 * Synapse's recording rules (`contrib/prometheus/synapse-v2.rules`, which
 * its Grafana dashboard needs), fetched on the host from the release's git
 * tag and checked against this SHA-256 before Prometheus sees them. The
 * PyPI sdist does not carry contrib/. The file has not changed since
 * v1.143.0; v1.157.1 is the newest tag whose file was checked here.
 */
export const SYNAPSE_RULES = {
    since: "1.143.0",
    tag: "v1.157.1",
    url: "https://raw.githubusercontent.com/element-hq/synapse/v1.157.1/contrib/prometheus/synapse-v2.rules",
    sha256: "5fa1873940c83146aded1ff221fac874ef1e8689988b00c115edd35106170d64",
} as const;

/** The monitoring settings a user writes. */
export interface MonitoringOptions {
    /** Whether monitoring runs: `false` takes away what an earlier deployment set up. Default true (monitoring given). */
    enabled?: boolean;
    /** How long Prometheus keeps samples (`--storage.tsdb.retention.time`), a whole number with h, d, w or y, such as `30d`. Default `30d`. */
    retention?: string;
    /** Prometheus's port on 127.0.0.1 (`--web.listen-address`). Default 9090. */
    prometheusPort?: number;
    /** Alertmanager's port on 127.0.0.1. Default 9193 (its usual 9093 is Synapse's replication listener). */
    alertmanagerPort?: number;
    /** The port of nginx's stub_status on 127.0.0.1, read by the nginx exporter (only with the reverse proxy). Default 8088. */
    nginxStatusPort?: number;
    /**
     * Alerts by e-mail through Synapse's SMTP server (`synapse.email`:
     * host, port, user, TLS, and the SMTP password). `to`: the addresses
     * (required, at least one); `from`: the sender, default Synapse's
     * `notifFrom`. Default: no e-mail (alerts show in Prometheus's and
     * Alertmanager's pages only).
     */
    alertEmail?: { to?: string[]; from?: string };
    /**
     * Alerts also posted into a Matrix room: `room`, its ID
     * (`!abc:example.com`) or alias (`#ops:example.com`), required; `user`,
     * the localpart of the bot account that posts them (registered on this
     * homeserver with the shared secret, not an admin), default
     * `pulumi-matrix-alerts`. The bot joins by itself: a public room at
     * once, a private one once someone invites it. Default: no room.
     */
    alertRoom?: { room?: string; user?: string };
    /**
     * Where the host fetches Synapse's recording rules (`synapse-v2.rules`,
     * which Synapse's Grafana dashboard reads; the library's alerts do not
     * need them): an http(s) URL serving that file, checked against the
     * pinned SHA-256 (`SYNAPSE_RULES.sha256`) whatever the URL, such as a
     * mirror for a host that cannot reach GitHub; or `"none"`: no recording
     * rules (an earlier deployment's file is removed). Default the file of
     * the pinned tag on GitHub (`SYNAPSE_RULES.url`).
     */
    synapseRulesUrl?: string;
}

/** The exporters' ports on 127.0.0.1 (their packages' defaults). */
export const EXPORTER_PORTS = { node: NODE_EXPORTER_PORT, postgres: 9187, nginx: 9113, blackbox: 9115, redis: 9121 } as const;

export const MONITORING_DEFAULTS = {
    retention: "30d",
    prometheusPort: 9090,
    alertmanagerPort: 9193,
    nginxStatusPort: 8088,
    alertRoomUser: "pulumi-matrix-alerts",
    /** The alert room relay's port on 127.0.0.1 (Alertmanager calls it). */
    alertRoomPort: 9194,
} as const;

/** Thresholds of the library's alerts (README: what each alert means). */
export const ALERT_THRESHOLDS = {
    /** Hours since the last successful backup. */
    backupAgeHours: 36,
    /** Used share of a filesystem, percent. */
    diskPercent: 85,
    /** Days a certificate has left. */
    certificateDays: 14,
    /** PDUs waiting for remote servers, summed over the federation senders. */
    federationPendingPdus: 1000,
    /** Events persisted but not yet handled by the federation sender. */
    federationSenderEventsBehind: 1000,
} as const;

/** What the stack around monitoring gives it, from the other components' settings. */
export interface MonitoringContext {
    synapse: SynapseSettings;
    /** The Host monitoring runs on (Synapse's), as errors name it: the `host` label of its node exporter's target. */
    host: string;
    /** PostgreSQL installed on this host (its port); absent: external, on another host, or SQLite. */
    postgres?: { port: number; database: string };
    /** Redis installed on this host (its port; `tls`: it speaks TLS only, with the library's CA); absent: external, or no workers. */
    redis?: { port: number; tls: boolean };
    /** The reverse proxy on this host: the name its certificate is for, the address it listens on, its CA. */
    proxy?: { domain: string; address: string; acme: AcmeSettings };
}

/** Monitoring with every default filled in and what it watches. */
export interface MonitoringSettings {
    retention: string;
    prometheusPort: number;
    alertmanagerPort: number;
    /** The homeserver's name: the `instance` label of every target. */
    serverName: string;
    /** The Host it runs on (Synapse's), as errors name it: the `host` label of its node exporter's target (a worker host's has its own). */
    host: string;
    alertEmail?: {
        to: string[];
        from: string;
        smtp: { host: string; port: number; user?: string; requireTls: boolean };
    };
    /**
     * The alert room: the room, the bot's localpart, the relay's port, the
     * homeserver's client API on loopback and the shared-secret file the
     * bot is registered with; its password file (`alertRoomPasswordFile`);
     * `synapseStandby`: Synapse does not run here (a move to a new VM), so
     * the bot's setup waits for it.
     */
    alertRoom?: {
        room: string;
        user: string;
        port: number;
        homeserverUrl: string;
        sharedSecretFile: string;
        passwordFile: string;
        synapseStandby: boolean;
    };
    postgres?: { port: number; database: string };
    /** Redis on this host, scraped by the Redis exporter as its own ACL user. */
    redis?: { port: number; tls: boolean };
    /**
     * nginx's stub_status and the certificate probe; absent without the
     * proxy. `verify`: the certificate is checked against the system's CAs
     * (Let's Encrypt's); another CA's (a test CA) is only read for its expiry.
     */
    proxy?: { statusPort: number; domain: string; address: string; verify: boolean };
    /** Synapse's /health on its HTTP listener (probed by blackbox). */
    healthUrl: string;
    /** Where Synapse's recording rules are fetched from (their SHA-256 is SYNAPSE_RULES.sha256); absent: no recording rules. */
    synapseRulesUrl?: string;
}

/** A retention as Prometheus takes it: a whole number and a unit. */
function isRetention(v: unknown): boolean {
    return typeof v === "string" && /^[1-9]\d{0,5}(h|d|w|y)$/.test(v);
}

/** Fills in the defaults and validates; every problem is reported at once. */
export function resolveMonitoringSettings(component: string, o: MonitoringOptions, ctx: MonitoringContext): MonitoringSettings {
    const c = new Checker(component);
    const s = ctx.synapse;
    const retention = o.retention ?? MONITORING_DEFAULTS.retention;
    c.check("retention", retention, isRetention(retention), "expected a whole number with h, d, w or y, such as 30d (how long Prometheus keeps samples)");
    const prometheusPort = o.prometheusPort ?? MONITORING_DEFAULTS.prometheusPort;
    const alertmanagerPort = o.alertmanagerPort ?? MONITORING_DEFAULTS.alertmanagerPort;
    const statusPort = o.nginxStatusPort ?? MONITORING_DEFAULTS.nginxStatusPort;
    c.port("prometheusPort", prometheusPort);
    c.port("alertmanagerPort", alertmanagerPort);
    c.port("nginxStatusPort", statusPort);
    if (o.nginxStatusPort !== undefined && !ctx.proxy)
        c.check("nginxStatusPort", o.nginxStatusPort, false, "nginx's status page exists only with the reverse proxy on this host: remove nginxStatusPort");
    const rulesUrl = o.synapseRulesUrl ?? SYNAPSE_RULES.url;
    c.check(
        "synapseRulesUrl",
        rulesUrl,
        typeof rulesUrl === "string" && (rulesUrl === "none" || isPlainUrl(rulesUrl)),
        `expected an http(s) URL of Synapse's synapse-v2.rules (SHA-256 ${SYNAPSE_RULES.sha256}, the file of ${SYNAPSE_RULES.tag}), such as ${SYNAPSE_RULES.url}, or none (no recording rules)`,
    );
    if (rulesUrl !== "none" && compareVersions(s.version, SYNAPSE_RULES.since) < 0)
        c.errors.push(
            new ConfigError(
                component,
                "synapse.version",
                s.version,
                `Synapse's recording rules are pinned for ${SYNAPSE_RULES.since} and later (${SYNAPSE_RULES.tag}): use Synapse ${SYNAPSE_RULES.since} or later with monitoring, or set synapseRulesUrl to none`,
            ),
        );
    if (!s.metrics.enabled)
        c.errors.push(
            new ConfigError(
                component,
                "synapse.metrics.enabled",
                false,
                "monitoring scrapes Synapse's metrics listener: enable Synapse's metrics (the default), or leave monitoring out",
            ),
        );
    let alertEmail: MonitoringSettings["alertEmail"];
    if (o.alertEmail !== undefined) {
        const to = o.alertEmail.to;
        if (!Array.isArray(to) || to.length === 0)
            c.check(
                "alertEmail.to",
                to === undefined ? undefined : new Described(Array.isArray(to) ? "empty" : JSON.stringify(to)),
                false,
                "an e-mail receiver needs its addresses: at least one, such as [ops@example.com]",
            );
        else for (const a of to) c.check("alertEmail.to", a, typeof a === "string" && isEmail(a), "expected e-mail addresses such as ops@example.com");
        const from = o.alertEmail.from ?? s.email?.notifFrom;
        if (o.alertEmail.from !== undefined)
            c.check(
                "alertEmail.from",
                o.alertEmail.from,
                typeof o.alertEmail.from === "string" && isEmail(senderAddress(o.alertEmail.from)),
                'expected a sender such as "Matrix alerts <alerts@example.com>"',
            );
        if (!s.email)
            c.check(
                "alertEmail",
                new Described("set"),
                false,
                "alerts are sent through Synapse's SMTP server, and synapse.email is not set: set synapse.email (smtpHost, notifFrom), or remove alertEmail",
            );
        else if (Array.isArray(to) && to.length > 0 && from !== undefined)
            alertEmail = {
                to: [...to],
                from,
                smtp: {
                    host: s.email.smtpHost,
                    port: s.email.smtpPort,
                    ...(s.email.smtpUser !== undefined ? { user: s.email.smtpUser } : {}),
                    requireTls: s.email.requireTransportSecurity,
                },
            };
    }
    const alertRoom = o.alertRoom === undefined ? undefined : resolveAlertRoom(c, o.alertRoom, s);
    c.done();
    return {
        retention,
        prometheusPort,
        alertmanagerPort,
        serverName: s.serverName,
        host: ctx.host,
        ...(alertEmail ? { alertEmail } : {}),
        ...(alertRoom ? { alertRoom } : {}),
        ...(ctx.postgres ? { postgres: { ...ctx.postgres } } : {}),
        ...(ctx.redis ? { redis: { ...ctx.redis } } : {}),
        ...(ctx.proxy
            ? {
                  proxy: {
                      statusPort,
                      domain: ctx.proxy.domain,
                      address: ctx.proxy.address,
                      verify: ctx.proxy.acme.directoryUrl === LETS_ENCRYPT,
                  },
              }
            : {}),
        healthUrl: `http://${dialAddress(s.httpBindAddresses[0] ?? "127.0.0.1", s.httpPort)}/health`,
        ...(rulesUrl !== "none" ? { synapseRulesUrl: rulesUrl } : {}),
    };
}

/**
 * A room ID or alias. An alias is `#name:server`; an ID is `!` and an
 * opaque part, with `:server` before room version 12 and without it since
 * (MSC4291). Only characters that need no quoting in JSON, a URL path
 * segment or a log line.
 */
export function isRoomIdOrAlias(v: string): boolean {
    const m = /^([!#])([A-Za-z0-9._=\-/+]{1,255})(?::(.+))?$/.exec(v);
    if (!m) return false;
    if (m[3] === undefined) return m[1] === "!";
    return isServerName(m[3]);
}

function resolveAlertRoom(c: Checker, o: NonNullable<MonitoringOptions["alertRoom"]>, s: SynapseSettings): MonitoringSettings["alertRoom"] {
    const user = o.user ?? MONITORING_DEFAULTS.alertRoomUser;
    c.check(
        "alertRoom.room",
        o.room,
        typeof o.room === "string" && isRoomIdOrAlias(o.room),
        "expected the room's ID (!abc, or !abc:example.com in rooms before version 12) or alias (#ops:example.com) that alerts are posted to",
    );
    c.check(
        "alertRoom.user",
        user,
        typeof user === "string" && isLocalpart(user),
        "expected the bot's localpart: lower-case letters, digits and ._=-/+, such as pulumi-matrix-alerts",
    );
    if (typeof o.room !== "string" || typeof user !== "string") return undefined;
    return {
        room: o.room,
        user,
        port: MONITORING_DEFAULTS.alertRoomPort,
        homeserverUrl: `http://${dialAddress(s.httpBindAddresses[0] ?? "127.0.0.1", s.httpPort)}`,
        sharedSecretFile: synapseFiles(s.paths).registrationSharedSecret,
        passwordFile: alertRoomPasswordFile(s.paths),
        synapseStandby: s.standby,
    };
}

/** The address in `Name <address>` (or the text itself). */
function senderAddress(v: string): string {
    const m = /<([^>]*)>\s*$/.exec(v);
    return (m ? m[1] : v).trim();
}

/** Orders two MAJOR.MINOR.PATCH versions (a release candidate's suffix ignored). */
function compareVersions(a: string, b: string): number {
    const parts = (v: string) => v.split(/[.rc]+/).map((p) => Number(p) || 0);
    const [x, y] = [parts(a), parts(b)];
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
}

/** The units monitoring runs on its host: the exporters for what is there. */
export function monitoringUnits(s: MonitoringSettings): MonitoringUnit[] {
    return [
        "prometheus",
        "alertmanager",
        "node",
        "blackbox",
        ...(s.postgres ? (["postgres"] as const) : []),
        ...(s.redis ? (["redis"] as const) : []),
        ...(s.proxy ? (["nginx"] as const) : []),
    ];
}

/** The ports monitoring's daemons take on 127.0.0.1. */
export function monitoringPortClaims(s: MonitoringSettings): PortClaim[] {
    const at = (port: number, owner: string, setting?: string): PortClaim => ({
        port,
        protocol: "tcp",
        address: "127.0.0.1",
        owner,
        ...(setting ? { setting } : {}),
    });
    return [
        at(s.prometheusPort, "prometheus", "prometheusPort"),
        at(s.alertmanagerPort, "alertmanager", "alertmanagerPort"),
        at(EXPORTER_PORTS.node, "node exporter"),
        at(EXPORTER_PORTS.blackbox, "blackbox exporter"),
        ...(s.alertRoom ? [at(s.alertRoom.port, "alert room relay")] : []),
        ...(s.postgres ? [at(EXPORTER_PORTS.postgres, "postgres exporter")] : []),
        ...(s.redis ? [at(EXPORTER_PORTS.redis, "redis exporter")] : []),
        ...(s.proxy ? [at(EXPORTER_PORTS.nginx, "nginx exporter"), at(s.proxy.statusPort, "nginx status page", "nginxStatusPort")] : []),
    ];
}

/**
 * Monitoring's Prometheus (on Synapse's host, `monitoringHost`) scrapes every
 * worker of the pool: those on other hosts only when their metrics listeners
 * are opened to it (the pool's `metricsScrapedFrom`). A pool whose workers on
 * other hosts keep their metrics on loopback (or opened to another host) is
 * an error naming the workers and what to set, not a silent gap in alerts.
 */
export function checkMonitoredWorkers(component: string, pool: WorkerPoolSettings, poolLabel: string, monitoringHost: string): void {
    const unreachable = pool.workers.filter((w) => w.metricsPort !== undefined && !metricsReachableFrom(pool, w, monitoringHost));
    if (!unreachable.length) return;
    const hosts = [...new Set(unreachable.map((w) => w.host))];
    throw new ConfigError(
        component,
        "workers",
        new Described(`${poolLabel}${pool.metricsScrapedFrom !== undefined ? ` with metricsScrapedFrom ${pool.metricsScrapedFrom}` : ""}`),
        `this Prometheus runs on ${monitoringHost} and scrapes every worker, and ${unreachable.map((w) => w.name).join(", ")} on ${hosts.join(", ")} ${unreachable.length > 1 ? "have their" : "has its"} metrics ${pool.metricsScrapedFrom !== undefined ? `opened to ${pool.metricsScrapedFrom} only` : "on that host's loopback"}: construct the WorkerPool with metricsScrapedFrom: ${monitoringHost} (Synapse's host), so their metrics listeners bind their private addresses, opened to it alone`,
    );
}
