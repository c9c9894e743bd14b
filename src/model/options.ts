import { DatabaseConnection, POSTGRES_DEFAULTS, PostgresLocalSettings } from "./postgres";
import {
    DEFAULT_MAX_UPLOAD_SIZE, DEFAULT_SYNAPSE_PATHS, DEFAULT_SYNAPSE_VERSION, DEFAULT_URL_PREVIEW_BLACKLIST,
    EmailSettings, InstallMethod, OldSigningKey, RegistrationMode, SynapsePaths, SynapseSettings, validateSynapse,
} from "./synapse";
import { validatePostgres } from "./postgres";

/**
 * The Synapse settings a user writes. Everything is optional except
 * serverName; `resolveSynapseSettings` fills in the defaults and validates.
 */
export interface SynapseOptions {
    /** The domain of your Matrix IDs (`@alice:example.com` -> `example.com`). Can never change after the first start. */
    serverName: string;
    /** URL clients use to reach Synapse. Default `https://<serverName>/`. */
    publicBaseUrl?: string;
    /** Synapse release to install; changing it upgrades in place (downgrades are refused). Default: the release this library is tested with. */
    version?: string;
    /** `apt` (matrix.org Debian repository, amd64) or `pip` (a virtualenv from PyPI). Default `apt`. */
    installMethod?: InstallMethod;
    /** Port of the client/federation listener on loopback, behind the reverse proxy. Default 8008. */
    httpPort?: number;
    /** Addresses the client/federation listener binds. Default `["127.0.0.1"]`. */
    httpBindAddresses?: string[];
    /** Prometheus metrics listener on loopback. Default enabled on 127.0.0.1:9000. */
    metrics?: { enabled?: boolean; port?: number; bindAddress?: string };
    /** Largest upload Synapse accepts, like `50M` (K, M or G). Default `50M`; the reverse proxy follows it. */
    maxUploadSize?: string;
    /** `shared-secret` (default: no public sign-up; the operator creates accounts) or `token` (sign-up with registration tokens). */
    registration?: RegistrationMode;
    /** Allow guest accounts. Default false. */
    allowGuestAccess?: boolean;
    /** URL previews; when enabled they never fetch from the ranges in `ipRangeBlacklist` (default: private, loopback, link-local and special ranges). Default off. */
    urlPreviews?: { enabled?: boolean; ipRangeBlacklist?: string[] };
    /** Presence (online/offline status). Costs CPU on busy servers. Default true. */
    presence?: boolean;
    /** `caches.global_factor`: scales all of Synapse's caches. Default 0.5. */
    cacheFactor?: number;
    /** Servers trusted to vouch for other servers' keys. Default `["matrix.org"]`. */
    trustedKeyServers?: string[];
    /** Only federate with these servers. Default: federate with everyone. */
    federationDomainWhitelist?: string[];
    /** SMTP for notification mails; the password is a separate secret argument. Default: no email. */
    email?: Partial<EmailSettings> & { smtpHost: string; notifFrom: string };
    /** Send anonymous usage statistics to matrix.org. Default false. */
    reportStats?: boolean;
    /** Previous signing keys, keyed `ed25519:<key_id>`, so other servers can still verify old events. */
    oldSigningKeys?: Record<string, OldSigningKey>;
    /** Log level of Synapse's journal output. Default `INFO`. */
    logLevel?: SynapseSettings["logLevel"];
    /** Extra top-level homeserver.yaml options, merged last. Keys the library manages are refused unless listed in `allowOverride`. */
    extraConfig?: Record<string, unknown>;
    /** Managed top-level keys that `extraConfig` may replace. Default none. */
    allowOverride?: string[];
    /** Where Synapse lives on the host; defaults follow the matrix.org package. Only `dataDir` and `mediaStorePath` may change with the apt method. */
    paths?: Partial<SynapsePaths>;
}

/** Fills in defaults and validates; `database` comes from the PostgresDatabase (or SQLite). */
export function resolveSynapseSettings(component: string, o: SynapseOptions, database: SynapseSettings["database"]): SynapseSettings {
    const paths: SynapsePaths = { ...DEFAULT_SYNAPSE_PATHS, ...o.paths };
    if (o.paths?.dataDir && !o.paths.mediaStorePath) paths.mediaStorePath = `${o.paths.dataDir}/media`;
    const s: SynapseSettings = {
        serverName: o.serverName,
        publicBaseUrl: o.publicBaseUrl ?? `https://${o.serverName}/`,
        version: o.version ?? DEFAULT_SYNAPSE_VERSION,
        installMethod: o.installMethod ?? "apt",
        httpPort: o.httpPort ?? 8008,
        httpBindAddresses: o.httpBindAddresses ?? ["127.0.0.1"],
        metrics: { enabled: o.metrics?.enabled ?? true, port: o.metrics?.port ?? 9000, bindAddress: o.metrics?.bindAddress ?? "127.0.0.1" },
        maxUploadSize: o.maxUploadSize ?? DEFAULT_MAX_UPLOAD_SIZE,
        registration: o.registration ?? "shared-secret",
        allowGuestAccess: o.allowGuestAccess ?? false,
        urlPreviews: { enabled: o.urlPreviews?.enabled ?? false, ipRangeBlacklist: o.urlPreviews?.ipRangeBlacklist ?? DEFAULT_URL_PREVIEW_BLACKLIST },
        presence: o.presence ?? true,
        cacheFactor: o.cacheFactor ?? 0.5,
        trustedKeyServers: o.trustedKeyServers ?? ["matrix.org"],
        federationDomainWhitelist: o.federationDomainWhitelist,
        email: o.email ? {
            smtpHost: o.email.smtpHost,
            smtpPort: o.email.smtpPort ?? 587,
            smtpUser: o.email.smtpUser,
            notifFrom: o.email.notifFrom,
            requireTransportSecurity: o.email.requireTransportSecurity ?? true,
            enableNotifs: o.email.enableNotifs ?? true,
            appName: o.email.appName ?? "Matrix",
        } : undefined,
        reportStats: o.reportStats ?? false,
        database,
        oldSigningKeys: o.oldSigningKeys ?? {},
        logLevel: o.logLevel ?? "INFO",
        extraConfig: o.extraConfig ?? {},
        allowOverride: o.allowOverride ?? [],
        paths,
    };
    validateSynapse(component, s);
    return s;
}

/** The PostgreSQL settings a user writes for a server the library installs. */
export interface PostgresOptions {
    /** Database name. Default `synapse`. */
    database?: string;
    /** Role owning the database. Default `synapse`. */
    user?: string;
    /** Port. Default 5432. */
    port?: number;
    /** Memory (MiB) PostgreSQL may plan with: shared_buffers = 1/4, effective_cache_size = 3/4, work_mem and maintenance_work_mem follow. Default 1024. */
    memoryMb?: number;
    /** Addresses to listen on. Default `["127.0.0.1"]`; add a private address for Synapse on another host. */
    listenAddresses?: string[];
    /** Networks (CIDR) of other hosts that may connect; pg_hba and the firewall allow only these. Default none. */
    allowedClients?: string[];
    /** Nightly pg_dump. Default enabled, 7 dumps kept in /var/backups/pulumi-matrix/postgres at 03:30. */
    backup?: { enabled?: boolean; directory?: string; retention?: number; schedule?: string };
}

export function resolvePostgresSettings(component: string, o: PostgresOptions): PostgresLocalSettings {
    const d = POSTGRES_DEFAULTS;
    const s: PostgresLocalSettings = {
        mode: "local",
        database: o.database ?? d.database,
        user: o.user ?? d.user,
        port: o.port ?? d.port,
        memoryMb: o.memoryMb ?? d.memoryMb,
        listenAddresses: o.listenAddresses ?? [...d.listenAddresses],
        allowedClients: o.allowedClients ?? [],
        backup: {
            enabled: o.backup?.enabled ?? d.backup.enabled,
            directory: o.backup?.directory ?? d.backup.directory,
            retention: o.backup?.retention ?? d.backup.retention,
            schedule: o.backup?.schedule ?? d.backup.schedule,
        },
    };
    validatePostgres(component, s);
    return s;
}

export type { DatabaseConnection };
