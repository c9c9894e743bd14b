import { AdoptOptions, AdoptSettings, resolveAdoptSettings } from "./adopt";
import { BackupOptions, BackupSettings, resolveBackupSettings } from "./backup";
import { certificateNamesFor, DnsOptions, DnsSettings, resolveDnsSettings, serverNameWellKnownFor, StackDerivedDnsOption, ZoneFileOptions } from "./dns";
import { ElementWebOptions, ElementWebSettings, resolveElementWebSettings } from "./element";
import { componentLabel, ConfigError, ConfigErrors, Described, throwIfAny } from "./errors";
import { ExternalServer } from "./external";
import { HostOptions, hostPortClaims, HostSettings, PortClaim, PortRegistry, resolveHostSettings } from "./host";
import { MaintenanceOptions, MaintenanceSettings, NO_MAINTENANCE, resolveMaintenanceSettings } from "./maintenance";
import { MonitoringContext, MonitoringOptions, monitoringPortClaims, MonitoringSettings, resolveMonitoringSettings } from "./monitoring";
import {
    ExternalPostgresOptions,
    PostgresExternalSettings,
    PostgresLocalSettings,
    PostgresOptions,
    postgresPortClaims,
    resolveExternalPostgres,
    resolvePostgresSettings,
} from "./postgres";
import { ProxyNeed, proxyPortClaims, resolveReverseProxySettings, ReverseProxyOptions, ReverseProxySettings, withProxyNeeds } from "./proxy";
import { checkAcmeCredentials } from "./proxy/acme";
import {
    ExternalRedisOptions,
    RedisExternalSettings,
    RedisLocalSettings,
    RedisOptions,
    redisOptionsSet,
    redisPortClaims,
    redisServesOtherHosts,
    resolveExternalRedis,
    resolveRedisSettings,
} from "./redis";
import { resolveRtcSettings, RTC_SHA256_HOWTO, RtcOptions, rtcPortClaims, RtcSettings, rtcSite } from "./rtc";
import { resolveSynapseSettings, SynapseOptions, synapsePortClaims, SynapseSettings } from "./synapse";
import { resolveTurnSettings, TurnOptions, turnPortClaims, TurnSettings } from "./turn";
import { isHostname } from "./validate";
import { resolveWorkerPoolSettings, WorkerCounts, WorkerPoolSettings, workerPortClaims, WorkerSpec } from "./workers";

/**
 * The whole stack as a pure plan: MatrixStack's arguments in, every child's
 * settings resolved once, the parts they imply, the rules where they meet,
 * the ports claimed on each host, and the DNS the stack publishes. Nothing
 * here knows Pulumi: a value another resource gives later (a cloud VM's
 * address, a managed database's host) is of the type `L` and only passed
 * along or stood in for; its own checks run once it is known.
 */

/** The DNS options of the stack (the host names and ports come from the other parts). */
export type StackDnsOptions<L = never> = Omit<
    DnsOptions,
    "serverName" | "publicBaseUrl" | "ipv4" | "ipv6" | "stack" | StackDerivedDnsOption | "acmeDirectoryUrl"
> & {
    /** The VM's public IPv4 address. */
    ipv4: string | L;
    /** The VM's public IPv6 address. Default none. */
    ipv6?: string | L;
    /** Create the records in Cloudflare. Default false: only the zone file. */
    cloudflare?: boolean;
    /** The stack named in the records' comments. Default the deployment's stack. */
    stack?: string;
    /** SOA and NS of the zone file. */
    zoneFile?: Omit<ZoneFileOptions, "origin">;
};

/** What the plan reads of MatrixStack's arguments (MatrixStackArgs fits it, with `L` the Pulumi values not known yet). */
export interface StackPlanArgs<L = never> {
    host: HostOptions;
    synapse: SynapseOptions;
    postgres?: PostgresOptions & { external?: ExternalPostgresOptions<L>; host?: HostOptions; reachableAt?: string | L };
    workers?: {
        instances?: WorkerCounts | Omit<WorkerSpec, "host">[];
        /** @deprecated Renamed `instances`. */
        workers?: WorkerCounts | Omit<WorkerSpec, "host">[];
        basePort?: number;
    };
    redis?: RedisOptions & { external?: ExternalRedisOptions<L> };
    /** The proxy's options; `cloudflareApiToken` is only looked at for whether it is given. */
    proxy: (ReverseProxyOptions & { cloudflareApiToken?: unknown }) | false;
    element?: ElementWebOptions;
    turn?: TurnOptions;
    /** MatrixRTC; left out, it is on whenever the proxy is (and then needs the releases pinned); false: none. */
    rtc?: RtcOptions | false;
    dns?: StackDnsOptions<L>;
    monitoring?: MonitoringOptions;
    /** Backups (SynapseBackup); its secret inputs are only looked at for whether they are given. */
    backup?: BackupOptions & { password?: unknown; sftpPrivateKey?: unknown; s3AccessKeyId?: unknown; s3SecretAccessKey?: unknown };
    /** The maintenance timers (SynapseMaintenance); absent: none (an earlier deployment's are taken away). */
    maintenance?: MaintenanceOptions;
    /** Adopting an existing Synapse on the host (SynapseAdoption); absent: none. */
    adopt?: AdoptOptions;
}

/** The labels of a stack's children, as their errors and port claims name them (`SynapseHomeserver "dev-synapse"`). */
export interface StackLabels {
    host: string;
    databaseHost: string;
    postgres: string;
    synapse: string;
    workers: string;
    redis: string;
    proxy: string;
    element: string;
    turn: string;
    rtc: string;
    dns: string;
    monitoring: string;
    backup: string;
    maintenance: string;
    adopt: string;
}

/** The component each service of the stack becomes (its kind, as its errors' labels name it). */
export const STACK_COMPONENTS = {
    host: "Host",
    synapse: "SynapseHomeserver",
    postgres: "PostgresDatabase",
    workers: "WorkerPool",
    redis: "RedisServer",
    proxy: "ReverseProxy",
    element: "ElementWeb",
    turn: "TurnServer",
    rtc: "RtcServer",
    dns: "CloudflareDns",
    monitoring: "MonitoringServer",
    backup: "SynapseBackup",
    maintenance: "SynapseMaintenance",
    adopt: "SynapseAdoption",
} as const;

/** The children's names: `<stack>-<role>` (components/naming.ts's childName), the role being the MatrixStack argument (`dev-synapse`). */
export const STACK_ROLES = {
    host: "host",
    databaseHost: "db-host",
    postgres: "postgres",
    synapse: "synapse",
    workers: "workers",
    redis: "redis",
    proxy: "proxy",
    element: "element",
    turn: "turn",
    turnRemoval: "turn-removal",
    rtc: "rtc",
    rtcRemoval: "rtc-removal",
    dns: "dns",
    monitoring: "monitoring",
    monitoringRemoval: "monitoring-removal",
    backup: "backup",
    backupRemoval: "backup-removal",
    maintenance: "maintenance",
    adopt: "adopt",
} as const;

/** Where PostgreSQL is: installed (on the main host or a database host), an existing server, or none (SQLite). */
export type PlannedPostgres =
    | { kind: "local"; settings: PostgresLocalSettings; onDatabaseHost: boolean }
    | { kind: "external"; /** Its settings: now when its host is a plain value, once known otherwise. */ server: ExternalServer<PostgresExternalSettings> }
    | { kind: "sqlite" };

/** Redis for the workers: installed on the main host, or an existing server. */
export type PlannedRedis =
    | { kind: "local"; settings: RedisLocalSettings }
    | { kind: "external"; /** Its settings: now when its host is a plain value, once known otherwise. */ server: ExternalServer<RedisExternalSettings> };

/** The stack's DNS: the record set (with stand-in addresses while the real ones are not known) and where it goes. */
export interface PlannedDns {
    /** The records' settings. The addresses are the real ones when given as plain values, stand-ins otherwise (put in with `withAddresses`). */
    settings: DnsSettings;
    /** Whether the addresses in `settings` are stand-ins. */
    addressesLater: boolean;
    /** Create the records in Cloudflare (CloudflareDns); otherwise only the zone file. */
    cloudflare: boolean;
    /** SOA and NS of the zone file. */
    zoneFile: Omit<ZoneFileOptions, "origin">;
    /** What the delegation needs of the proxy. */
    need: ProxyNeed;
}

/** The plan of a MatrixStack: what to construct, with what settings. */
export interface StackPlan {
    labels: StackLabels;
    host: HostSettings;
    /** The database VM's settings, with `postgres.host`. */
    databaseHost?: HostSettings;
    postgres: PlannedPostgres;
    /** Synapse's settings, with the replication listener the workers imply. */
    synapse: SynapseSettings;
    /** The pool (empty: it only removes an earlier pool's files); absent with SQLite and no `workers`. */
    workers?: WorkerPoolSettings;
    /** Redis, when the pool has workers. */
    redis?: PlannedRedis;
    /** nginx's options with what DNS and TURN need added, and its settings; absent with `proxy: false`. */
    proxy?: { options: ReverseProxyOptions; settings: ReverseProxySettings };
    element?: ElementWebSettings;
    /** coturn, or the removal of an earlier deployment's coturn when `turn` is left out. */
    turn: { kind: "server"; settings: TurnSettings } | { kind: "removal" };
    /** MatrixRTC, or the removal of an earlier deployment's when the stack has none (`rtc: false`, or no proxy). */
    rtc: { kind: "server"; settings: RtcSettings } | { kind: "removal" };
    dns?: PlannedDns;
    /** Prometheus, Alertmanager and the exporters on the main host, or the removal of an earlier deployment's when `monitoring` is left out. */
    monitoring: { kind: "server"; settings: MonitoringSettings } | { kind: "removal" };
    /** Backups and the restore, with `backup`. */
    backup?: BackupSettings;
    /** The maintenance timers; every one off without `maintenance` (which takes away an earlier deployment's). */
    maintenance: MaintenanceSettings;
    /** The adoption of an existing Synapse, with `adopt`. */
    adopt?: AdoptSettings;
    /** The ports claimed on each host, by host label (every claim checked against the others). */
    ports: Record<string, PortRegistry>;
}

/** The addresses DNS plans with while the real ones are not known (documentation ranges). */
export const DNS_STAND_IN = { ipv4: "192.0.2.1", ipv6: "2001:db8::1" } as const;

/**
 * Turns MatrixStack's arguments into its plan. `stack` is the deployment's
 * stack (named in DNS records' comments unless `dns.stack` is given).
 * Every problem is reported at once (one ConfigErrors), each naming the
 * component and the setting the user wrote; a part that depends on one that
 * failed is not checked further.
 */
export function planStack<L>(name: string, args: StackPlanArgs<L>, context: { stack: string }): StackPlan {
    const stack = componentLabel("MatrixStack", name);
    const label = (kind: string, role: string) => componentLabel(kind, `${name}-${role}`);
    const labels: StackLabels = {
        host: label(STACK_COMPONENTS.host, STACK_ROLES.host),
        databaseHost: label(STACK_COMPONENTS.host, STACK_ROLES.databaseHost),
        postgres: label(STACK_COMPONENTS.postgres, STACK_ROLES.postgres),
        synapse: label(STACK_COMPONENTS.synapse, STACK_ROLES.synapse),
        workers: label(STACK_COMPONENTS.workers, STACK_ROLES.workers),
        redis: label(STACK_COMPONENTS.redis, STACK_ROLES.redis),
        proxy: label(STACK_COMPONENTS.proxy, STACK_ROLES.proxy),
        element: label(STACK_COMPONENTS.element, STACK_ROLES.element),
        turn: label(STACK_COMPONENTS.turn, STACK_ROLES.turn),
        rtc: label(STACK_COMPONENTS.rtc, STACK_ROLES.rtc),
        dns: label(STACK_COMPONENTS.dns, STACK_ROLES.dns),
        monitoring: label(STACK_COMPONENTS.monitoring, STACK_ROLES.monitoring),
        backup: label(STACK_COMPONENTS.backup, STACK_ROLES.backup),
        maintenance: label(STACK_COMPONENTS.maintenance, STACK_ROLES.maintenance),
        adopt: label(STACK_COMPONENTS.adopt, STACK_ROLES.adopt),
    };
    const errors: ConfigError[] = [];
    const attempt = <T>(f: () => T): T | undefined => {
        try {
            return f();
        } catch (e) {
            if (e instanceof ConfigErrors) errors.push(...e.errors);
            else if (e instanceof ConfigError) errors.push(e);
            else throw e;
            return undefined;
        }
    };
    const fail = (setting: string, value: unknown, expected: string) => errors.push(new ConfigError(stack, setting, value, expected));

    // Where PostgreSQL is.
    const { host: dbHostArgs, reachableAt, external, ...pg } = args.postgres ?? {};
    const sqlite = args.synapse.sqlite !== undefined;
    if (dbHostArgs && reachableAt === undefined)
        fail("postgres.reachableAt", undefined, "with postgres.host it must be the database VM's private address that Synapse dials, e.g. 10.0.0.5");
    if (external && dbHostArgs)
        fail(
            "postgres.host",
            new Described("set together with postgres.external"),
            "choose one: host installs PostgreSQL on a second VM, external uses an existing server",
        );
    if (sqlite && (external || dbHostArgs))
        fail(
            external ? "postgres.external" : "postgres.host",
            new Described("set together with synapse.sqlite"),
            "choose one: SQLite (tiny test servers), or PostgreSQL",
        );

    const host = attempt(() => resolveHostSettings(labels.host, args.host));
    const databaseHost = dbHostArgs ? attempt(() => resolveHostSettings(labels.databaseHost, dbHostArgs)) : undefined;
    let postgres: PlannedPostgres | undefined;
    if (sqlite) postgres = { kind: "sqlite" };
    else if (external) {
        const server = attempt(() => resolveExternalPostgres(labels.postgres, pg, external));
        if (server) postgres = { kind: "external", server };
    } else {
        const settings = attempt(() => resolvePostgresSettings(labels.postgres, pg));
        if (settings) postgres = { kind: "local", settings, onDatabaseHost: dbHostArgs !== undefined };
    }

    // Workers by default, except with SQLite (which they cannot use); a pool without workers removes an earlier pool's.
    const wantPool = args.workers?.instances !== undefined || args.workers?.workers !== undefined || !sqlite;
    // The pool is checked against Synapse with the replication listener workers imply; without workers it is left out again.
    const synapseWithReplication = attempt(() =>
        resolveSynapseSettings(
            labels.synapse,
            // An upgrade takes a backup first when the stack has one.
            {
                ...args.synapse,
                upgradeBackup: args.synapse.upgradeBackup ?? args.backup !== undefined,
                ...(wantPool ? { replication: args.synapse.replication ?? {} } : {}),
            },
        ),
    );
    const workers =
        synapseWithReplication && wantPool
            ? attempt(() => resolveWorkerPoolSettings(labels.workers, args.workers ?? {}, synapseWithReplication, labels.host))
            : undefined;
    const hasWorkers = (workers?.workers.length ?? 0) > 0;
    const synapse = synapseWithReplication && !hasWorkers && !args.synapse.replication ? withoutReplication(synapseWithReplication) : synapseWithReplication;

    // Redis serves the workers only.
    const { external: redisExternal, ...redisOptions } = args.redis ?? {};
    const redisSet = [...(redisExternal ? ["external"] : []), ...redisOptionsSet(redisOptions)];
    let redis: PlannedRedis | undefined;
    if (redisSet.length && workers && !hasWorkers) {
        fail(
            redisSet.map((k) => `redis.${k}`).join(", "),
            new Described("set"),
            "Redis serves only Synapse's workers, and there are none (workers.instances is {}, or synapse.sqlite is set): remove the redis settings, or add workers",
        );
    } else if (hasWorkers && redisExternal) {
        const server = attempt(() => resolveExternalRedis(labels.redis, redisOptions, redisExternal));
        if (server) redis = { kind: "external", server };
    } else if (hasWorkers) {
        const settings = attempt(() => resolveRedisSettings(labels.redis, redisOptions));
        if (settings) redis = { kind: "local", settings };
    }

    if (args.element && args.proxy === false)
        fail(
            "element",
            new Described("set together with proxy: false"),
            "Element is served by the stack's nginx: remove proxy: false, or serve Element yourself (ElementWeb in your own stack)",
        );
    const element = args.element && synapse ? attempt(() => resolveElementWebSettings(labels.element, args.element!, synapse)) : undefined;

    // MatrixRTC: calls in Element X and Element Call. On by default wherever the stack's nginx can serve it.
    let rtcSettings: RtcSettings | undefined;
    if (args.rtc && args.proxy === false)
        fail(
            "rtc",
            new Described("set together with proxy: false"),
            "MatrixRTC is served through the stack's nginx: remove proxy: false, or set rtc: false (or run an RtcServer in your own stack)",
        );
    else if (args.rtc === undefined && args.proxy !== false)
        fail(
            "rtc",
            undefined,
            "calls default to MatrixRTC (livekit-server and lk-jwt-service, pinned release binaries): give rtc: { livekit: { sha256 }, jwtService: { sha256 } } " +
                `(${RTC_SHA256_HOWTO}), or rtc: false for a stack without it (coturn stays available through turn)`,
        );
    else if (args.rtc && synapse)
        rtcSettings = attempt(() =>
            resolveRtcSettings(labels.rtc, args.rtc as RtcOptions, {
                serverName: synapse.serverName,
                publicBaseUrl: synapse.publicBaseUrl,
                ...(args.element ? { elementDomain: args.element.domain } : {}),
            }),
        );

    const dns =
        args.dns && synapse
            ? attempt(() =>
                  args.dns!.cloudflare
                      ? planDns(labels.dns, args, synapse, context.stack, rtcSettings)
                      : asStackDnsErrors(stack, () => planDns(stack, args, synapse, context.stack, rtcSettings)),
              )
            : undefined;
    if (dns?.need.serverNameWellKnown && args.proxy === false)
        fail(
            "dns.delegation",
            args.dns!.delegation,
            `${dns.need.by} needs the stack's nginx to answer on the server_name's domain, and proxy is false: use wellKnownVia "worker" or delegation "srv", or remove proxy: false`,
        );

    // What DNS delegation (well-known on the server_name's domain, or its name for SRV) needs of the proxy (coturn's TLS has a lineage of its own).
    let proxy: StackPlan["proxy"];
    if (args.proxy !== false && synapse && (!args.dns || dns) && (!args.element || element)) {
        // coturn's own certificate validates through this nginx's webroot (HTTP-01): port 80 answers for its name.
        const turnChallenge: ProxyNeed[] =
            typeof args.turn?.domain === "string" && isHostname(args.turn.domain)
                ? [{ by: "turn", setting: "turn.domain", challengeNames: [args.turn.domain] }]
                : [];
        const needs: ProxyNeed[] = [...(dns ? [dns.need] : []), ...turnChallenge];
        const { cloudflareApiToken, ...proxyOptions } = args.proxy;
        const options = attempt(() => withProxyNeeds(stack, proxyOptions, synapse, needs));
        const settings = options
            ? attempt(() => resolveReverseProxySettings(labels.proxy, options, synapse, element, rtcSettings ? rtcSite(rtcSettings) : undefined))
            : undefined;
        if (options && settings) {
            attempt(() => checkAcmeCredentials(labels.proxy, settings.acme, cloudflareApiToken !== undefined));
            proxy = { options, settings };
        }
    }

    let turn: StackPlan["turn"] = { kind: "removal" };
    if (args.turn && (args.proxy === false || proxy)) {
        // coturn's certificate comes from the proxy's CA, as a lineage of its own (only the TURN name).
        const certificate = proxy ? { acme: proxy.settings.acme } : undefined;
        const settings = attempt(() => resolveTurnSettings(labels.turn, args.turn!, certificate));
        if (settings) turn = { kind: "server", settings };
    }

    // Monitoring watches what runs on the main host: the PostgreSQL exporter only for a server installed there.
    let monitoring: StackPlan["monitoring"] = { kind: "removal" };
    if (args.monitoring && args.monitoring.enabled !== false && synapse && (args.proxy === false || proxy)) {
        const context: MonitoringContext = {
            synapse,
            host: labels.host,
            ...(postgres?.kind === "local" && !postgres.onDatabaseHost
                ? { postgres: { port: postgres.settings.port, database: postgres.settings.database } }
                : {}),
            ...(proxy
                ? { proxy: { domain: proxy.settings.homeserverDomain, address: proxy.settings.listenAddresses[0] ?? "127.0.0.1", acme: proxy.settings.acme } }
                : {}),
            // Redis installed on the main host: its exporter logs in as a user of its own (MatrixStack sets the RedisServer's monitoringUser).
            ...(redis?.kind === "local" ? { redis: { port: redis.settings.port, tls: redisServesOtherHosts(redis.settings) } } : {}),
        };
        // What monitoring needs of Synapse (a release the recording rules fit, its metrics) is Synapse's setting: its errors name it.
        const settings = attempt(() => asSynapseVersionError(labels.synapse, () => resolveMonitoringSettings(labels.monitoring, args.monitoring!, context)));
        if (settings) monitoring = { kind: "server", settings };
    }

    // Backups dump the database on Synapse's host: PostgreSQL installed there.
    let backup: BackupSettings | undefined;
    if (args.backup && synapse && postgres) {
        const { password, sftpPrivateKey, s3AccessKeyId, s3SecretAccessKey, ...backupOptions } = args.backup;
        const database = postgres.kind === "local" && !postgres.onDatabaseHost ? postgres.settings : undefined;
        if (!database) {
            const where =
                postgres.kind === "sqlite"
                    ? "SQLite (synapse.sqlite)"
                    : postgres.kind === "external"
                      ? "an external server (postgres.external)"
                      : "a database VM (postgres.host)";
            fail(
                "backup",
                new Described(`set together with ${where}`),
                `backups need PostgreSQL installed on Synapse's host (pg_dump and pg_restore run there), not ${where}: remove backup, or install PostgreSQL on the VM`,
            );
        } else
            backup = attempt(() =>
                resolveBackupSettings(labels.backup, backupOptions, {
                    synapse,
                    database,
                    credentials: {
                        password: password !== undefined,
                        sftpPrivateKey: sftpPrivateKey !== undefined,
                        s3AccessKeyId: s3AccessKeyId !== undefined,
                        s3SecretAccessKey: s3SecretAccessKey !== undefined,
                    },
                }),
            );
    }
    // Standby is a step of a move through the backup repository: the final backup goes there, the new VM restores from there.
    if (args.synapse.standby && !args.backup)
        fail(
            "synapse.standby",
            true,
            "a standby is one step of a move to a new VM through the backup repository (the old server's final backup, the new one's restore): set backup (backupRepository), or remove standby",
        );
    // Adoption: its database is ported into the stack's PostgreSQL, and a restore would bring another copy of the server.
    let adopt: AdoptSettings | undefined;
    if (args.adopt) {
        if (args.backup?.restoreFrom !== undefined)
            fail(
                "adopt",
                new Described(`set together with backup.restoreFrom ${JSON.stringify(args.backup.restoreFrom)}`),
                "expected one source for the server's data: adopt the existing Synapse, or restore a backup (remove one of them)",
            );
        if (sqlite)
            fail(
                "adopt",
                new Described("set together with synapse.sqlite"),
                "expected PostgreSQL: the adopted SQLite database is ported into the stack's PostgreSQL database (remove synapse.sqlite)",
            );
        else if (synapse) {
            // The stack's PostgreSQL on the adopted server's host: what in-place takes over, and what a dump must not collide with.
            const local = postgres?.kind === "local" && !postgres.onDatabaseHost ? postgres.settings : undefined;
            adopt = attempt(() => resolveAdoptSettings(labels.adopt, args.adopt!, { ...synapse, sqlite: false }, local));
        }
    }
    // The compressor connects through the socket of a PostgreSQL on Synapse's host; with SQLite, compressor and purges are refused.
    const maintenance =
        synapse && postgres
            ? attempt(() =>
                  resolveMaintenanceSettings(labels.maintenance, args.maintenance ?? NO_MAINTENANCE, {
                      synapse,
                      ...(postgres!.kind === "local" && !postgres!.onDatabaseHost
                          ? { localPostgres: { database: postgres!.settings.database, port: postgres!.settings.port } }
                          : {}),
                  }),
              )
            : undefined;

    const rtc: StackPlan["rtc"] = rtcSettings && proxy ? { kind: "server", settings: rtcSettings } : { kind: "removal" };

    // The ports on each host, before anything is built: the proxy's fixed ports first, so a clash names the setting that can move.
    const ports: Record<string, PortRegistry> = {};
    if (host) {
        const main = (ports[labels.host] = new PortRegistry(labels.host));
        const chosen = (setting: string | undefined) => setting !== undefined && setting.includes(".") && valueAt(args, setting) !== undefined;
        const claim = (registry: PortRegistry, component: string, claims: PortClaim[]) => {
            for (const c of claims) attempt(() => claimNamingChoice(registry, component, c, chosen));
        };
        claim(main, labels.host, named(hostPortClaims(host), { sshd: "host.firewall.sshPort" }));
        if (databaseHost)
            claim(
                (ports[labels.databaseHost] = new PortRegistry(labels.databaseHost)),
                labels.databaseHost,
                named(hostPortClaims(databaseHost), { sshd: "postgres.host.firewall.sshPort" }),
            );
        if (proxy) claim(main, labels.proxy, named(proxyPortClaims(proxy.settings), { nginx: (c) => (c.port === 8448 ? "proxy.federationPort" : "proxy") }));
        if (postgres?.kind === "local") {
            const registry = postgres.onDatabaseHost ? (ports[labels.databaseHost] ??= new PortRegistry(labels.databaseHost)) : main;
            claim(registry, labels.postgres, named(postgresPortClaims(postgres.settings), { postgresql: "postgres.port" }));
        }
        if (redis?.kind === "local") claim(main, labels.redis, named(redisPortClaims(redis.settings), { redis: "redis.port" }));
        if (synapse)
            claim(
                main,
                labels.synapse,
                named(synapsePortClaims(synapse), {
                    "synapse http listener": "synapse.httpPort",
                    "synapse metrics listener": "synapse.metrics.port",
                    "synapse replication listener": "synapse.replication.port",
                }),
            );
        if (workers)
            for (const w of workers.workers) {
                const given = args.workers?.instances ?? args.workers?.workers;
                const list = Array.isArray(given) ? given : undefined;
                const own = /^(?:instances|workers)\[(\d+)\]$/.exec(w.setting);
                const claims = workerPortClaims({ ...workers, workers: [w] }, labels.host);
                if (own && list?.[Number(own[1])]?.port !== undefined) {
                    claim(
                        main,
                        labels.workers,
                        claims.map((c) => ({ ...c, setting: `workers.${w.setting}.port` })),
                    );
                    continue;
                }
                // A port derived from the base: the error names the base the user set, and the worker's port it led to.
                const before = errors.length;
                claim(
                    main,
                    labels.workers,
                    claims.map((c) => ({ ...c, setting: "workers.basePort" })),
                );
                for (let i = before; i < errors.length; i++) {
                    const e = errors[i];
                    // Only this pool's own error: a clash blamed on the other side (its setting was the user's) stays as it is.
                    const c = e.component === labels.workers && e.setting === "workers.basePort" ? claims.find((c) => c.port === e.value) : undefined;
                    if (!c) continue;
                    errors[i] = new ConfigError(
                        labels.workers,
                        "workers.basePort",
                        workers.basePort,
                        `it puts the ${c.owner} at port ${c.port}, where ${e.expected}`,
                    );
                }
            }
        if (turn.kind === "server")
            claim(
                main,
                labels.turn,
                named(turnPortClaims(turn.settings), { coturn: "turn.port", "coturn TLS/DTLS": "turn.tlsPort", "coturn relay": "turn.relayPorts" }),
            );
        if (monitoring.kind === "server")
            claim(
                main,
                labels.monitoring,
                named(monitoringPortClaims(monitoring.settings), {
                    prometheus: "monitoring.prometheusPort",
                    alertmanager: "monitoring.alertmanagerPort",
                    "nginx status page": "monitoring.nginxStatusPort",
                }),
            );
        if (rtc.kind === "server")
            claim(
                main,
                labels.rtc,
                rtcPortClaims(rtc.settings).map((c) => ({ ...c, setting: `rtc.${c.setting}` })),
            );
    }

    throwIfAny(errors);
    return {
        labels,
        host: host!,
        ...(databaseHost ? { databaseHost } : {}),
        postgres: postgres!,
        synapse: synapse!,
        ...(workers ? { workers } : {}),
        ...(redis ? { redis } : {}),
        ...(proxy ? { proxy } : {}),
        ...(element ? { element } : {}),
        turn,
        rtc,
        ...(dns ? { dns } : {}),
        monitoring,
        ...(backup ? { backup } : {}),
        maintenance: maintenance!,
        ...(adopt ? { adopt } : {}),
        ports,
    };
}

/**
 * Claims one port. When it clashes with a port the user chose while this
 * one is a default, the error is the other way round: it names the user's
 * setting (the one to change), as if that claim had come second.
 */
function claimNamingChoice(registry: PortRegistry, component: string, c: PortClaim, chosen: (setting: string | undefined) => boolean): void {
    const other = registry.clashing(component, c);
    if (!other) return registry.claim(component, [c]);
    // The user's setting is the one to change: name it, as if its claim had come second.
    if (!chosen(c.setting) && chosen(other.setting)) throw registry.clashError(other.component, other, { ...c, component });
    throw registry.clashError(component, c, other);
}

/** The value at a MatrixStack argument path such as `redis.port` or `workers.instances[0].port`. */
function valueAt(args: unknown, path: string): unknown {
    let v: unknown = args;
    for (const key of path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== "")) {
        if (v === null || typeof v !== "object") return undefined;
        v = (v as Record<string, unknown>)[key];
    }
    return v;
}

/** Monitoring's errors about Synapse's settings (its release, its metrics), restated as Synapse's own: the setting to change. */
function asSynapseVersionError<T>(synapse: string, f: () => T): T {
    return restatingErrors(f, (e) =>
        e.setting.startsWith("synapse.") ? new ConfigError(synapse, e.setting.slice("synapse.".length), e.value, e.expected) : e,
    );
}

/** Runs `f`; every ConfigError it throws (alone or in ConfigErrors) is rethrown as `restate` makes it. */
function restatingErrors<T>(f: () => T, restate: (e: ConfigError) => ConfigError): T {
    try {
        return f();
    } catch (e) {
        if (e instanceof ConfigErrors) throw new ConfigErrors(e.errors.map(restate));
        if (e instanceof ConfigError) throw restate(e);
        throw e;
    }
}

/** Synapse's settings without the replication listener the plan added for a pool that turned out to have no workers. */
function withoutReplication(s: SynapseSettings): SynapseSettings {
    const { replication: _replication, ...rest } = s;
    return rest;
}

/** Claims with the MatrixStack argument that chose each port (by the claim's owner), for clash errors. */
function named(claims: PortClaim[], settings: Record<string, string | ((c: PortClaim) => string)>): PortClaim[] {
    return claims.map((c) => {
        const s = settings[c.owner];
        return s === undefined ? c : { ...c, setting: typeof s === "string" ? s : s(c) };
    });
}

/**
 * Where a DNS setting the plan hands `resolveDnsSettings` came from in
 * MatrixStack's args; the rest are the user's own `dns.<option>`.
 */
const DNS_INPUTS_FROM: Record<string, string> = {
    serverName: "synapse.serverName",
    publicBaseUrl: "synapse.publicBaseUrl",
    elementDomain: "element.domain",
    turnHost: "turn.domain",
    turnPort: "turn.port",
    turnTlsPort: "turn.tlsPort",
    rtcDomain: "rtc.domain",
    rtcTurnDomain: "rtc.turn.domain",
    federationPort: "proxy.federationPort",
    acmeDirectoryUrl: "proxy.acme.directoryUrl",
};

/**
 * Without Cloudflare there is no CloudflareDns component: DNS errors name
 * what the user wrote, MatrixStack's `dns.<option>` (or the argument a
 * handed-in value came from).
 */
function asStackDnsErrors<T>(stack: string, f: () => T): T {
    return restatingErrors(f, (e) => new ConfigError(stack, DNS_INPUTS_FROM[e.setting] ?? `dns.${e.setting}`, e.value, e.expected));
}

/**
 * The stack's record set: the delegation mode the user chose, the host
 * names of the other parts, and addresses that may be known only later
 * (then stand-ins: which records exist never depends on their values).
 */
function planDns<L>(component: string, args: StackPlanArgs<L>, synapse: SynapseSettings, stack: string, rtc?: RtcSettings): PlannedDns {
    const { cloudflare, zoneFile, ipv4, ipv6, stack: dnsStack, ...dns } = args.dns!;
    const addressesLater = typeof ipv4 !== "string" || (ipv6 !== undefined && typeof ipv6 !== "string");
    const settings = resolveDnsSettings(component, {
        ...dns,
        ...(addressesLater
            ? { ipv4: DNS_STAND_IN.ipv4, ...(ipv6 !== undefined ? { ipv6: DNS_STAND_IN.ipv6 } : {}) }
            : { ipv4: ipv4 as string, ...(ipv6 !== undefined ? { ipv6: ipv6 as string } : {}) }),
        serverName: synapse.serverName,
        publicBaseUrl: synapse.publicBaseUrl,
        ...(args.element ? { elementDomain: args.element.domain } : {}),
        ...(args.turn ? { turnHost: args.turn.domain, turnPort: args.turn.port, turnTlsPort: args.turn.tlsPort } : {}),
        // MatrixRTC: its own domain's records, and the focus in a Worker's well-known (nginx serves its own).
        ...(rtc && args.proxy !== false
            ? { ...(rtc.ownDomain ? { rtcDomain: rtc.domain } : {}), ...(rtc.turn ? { rtcTurnDomain: rtc.turn.domain } : {}), rtcServiceUrl: rtc.serviceUrl }
            : {}),
        ...(args.proxy !== false && args.proxy.federationPort !== undefined ? { federationPort: args.proxy.federationPort } : {}),
        // The CA the certificates come from: CAA names it.
        ...(args.proxy !== false && args.proxy.acme?.directoryUrl !== undefined ? { acmeDirectoryUrl: args.proxy.acme.directoryUrl } : {}),
        stack: dnsStack ?? stack,
    });
    return {
        settings,
        addressesLater,
        cloudflare: cloudflare ?? false,
        zoneFile: zoneFile ?? {},
        need: {
            by: `dns.delegation "${settings.delegation}"${settings.wellKnownVia ? ` served by ${settings.wellKnownVia}` : ""}`,
            serverNameWellKnown: serverNameWellKnownFor(settings),
            names: certificateNamesFor(settings),
            setting: "synapse.serverName",
        },
    };
}
