import { ConfigError } from "../errors";
import { PortClaim } from "../host";
import { DatabaseConnection } from "../postgres";
import {
    Checker,
    isAbsolutePath,
    isCidr,
    isEmail,
    isHostname,
    isIpAddress,
    isLocalpart,
    isServerName,
    isVersion,
    isWildcardAddress,
    parseSize,
} from "../validate";
import { SYNAPSE_CONSTRAINTS } from "./constraints";
import { AptRepository, InstallMethod, InstallOptions, resolveInstall, UpgradeRollback, UpgradeSettings, validateInstall, validateUpgrade } from "./install";
import { extraConfigSecretErrors } from "./secrets";

/** The Synapse release the library is tested with and installs by default. */
export const DEFAULT_SYNAPSE_VERSION = "1.163.2";

export type { InstallMethod, UpgradeRollback, UpgradeSettings } from "./install";

/**
 * The requirements file with hashes the pip method installs `version` from:
 * matrix-synapse and every dependency pinned, each with the hash of every
 * file PyPI has of it (src/model/synapse/constraints/, made by `npm run
 * synapse:constraints -- <version>`). Undefined for a release the library
 * has none of; the pip method refuses it.
 */
export function synapseRequirements(version: string): string | undefined {
    return Object.prototype.hasOwnProperty.call(SYNAPSE_CONSTRAINTS, version) ? SYNAPSE_CONSTRAINTS[version] : undefined;
}

/** The extras the pip method installs: the Debian package carries the same features. */
export const SYNAPSE_PIP_EXTRAS = "postgres,redis,url-preview";

/** How new accounts come to be. */
export type RegistrationMode =
    /** No public registration; accounts are made by the operator through the shared-secret admin API. */
    | "shared-secret"
    /** Public registration, but only with a registration token issued through the admin API. */
    | "token";

/** Where Synapse's files live on the host; the defaults follow the matrix.org Debian package. */
export interface SynapsePaths {
    configDir: string;
    dataDir: string;
    mediaStorePath: string;
    /** The Python virtualenv Synapse runs from (the Debian package's own, or the one the pip method builds). */
    venvDir: string;
    /** Unix user Synapse runs as. */
    user: string;
}

/**
 * Synapse's host layout by default. Not a fixed SYNAPSE_FILES like the other
 * services' `<SERVICE>_FILES`: these are the defaults of the user's `paths`
 * option, so the paths in effect are `settings.paths` (every layer reads them
 * there, never this constant).
 */
export const DEFAULT_SYNAPSE_PATHS: SynapsePaths = {
    configDir: "/etc/matrix-synapse",
    dataDir: "/var/lib/matrix-synapse",
    mediaStorePath: "/var/lib/matrix-synapse/media",
    venvDir: "/opt/venvs/matrix-synapse",
    user: "matrix-synapse",
};

/** SMTP settings for notification emails (the password is a separate secret). */
export interface EmailSettings {
    smtpHost: string;
    smtpPort: number;
    smtpUser?: string;
    /** Sender, e.g. "Matrix <noreply@example.com>". */
    notifFrom: string;
    /** Require STARTTLS / TLS to the SMTP server (default true). */
    requireTransportSecurity: boolean;
    /** Send notification mails for unread messages (default true). */
    enableNotifs: boolean;
    /** Name shown in mails (default "Matrix"). */
    appName: string;
}

/** A previous signing key other servers may still need to verify old events. */
export interface OldSigningKey {
    /** Public key in unpadded base64, as `/_matrix/key/v2/server` published it. */
    key: string;
    /** When the key stopped being used, in milliseconds since the epoch. */
    expiredTs: number;
}

/** Everything that shapes homeserver.yaml, as plain values (secrets are files referenced by path). */
export interface SynapseSettings {
    serverName: string;
    publicBaseUrl: string;
    /** Set when publicBaseUrl was left out and is `https://<serverName>/`: errors about it then name serverName, which the user wrote. */
    publicBaseUrlDerived?: true;
    version: string;
    installMethod: InstallMethod;
    /** The Debian repository of the apt method (absent with pip). */
    aptRepository?: AptRepository;
    /** The http listener for client and federation traffic (behind the reverse proxy). */
    httpPort: number;
    httpBindAddresses: string[];
    metrics: { enabled: boolean; port: number; bindAddress: string };
    /** The main process's HTTP replication listener, which workers call; absent without workers. */
    replication?: { port: number; bindAddresses: string[] };
    maxUploadSize: string;
    registration: RegistrationMode;
    allowGuestAccess: boolean;
    /** `ipRangeBlacklist`: the user's ranges, rendered after BLOCKED_IP_RANGES (see blockedIpRanges). */
    urlPreviews: { enabled: boolean; ipRangeBlacklist: string[] };
    /** The user's ranges Synapse's outbound requests must not reach, rendered after BLOCKED_IP_RANGES. */
    ipRangeBlacklist: string[];
    presence: boolean;
    /** Synapse's `forgotten_room_retention_period`, a Synapse duration such as `28d`. */
    forgottenRoomRetentionPeriod: string;
    /** Synapse's `media_retention`; each lifetime absent keeps that media for ever. */
    mediaRetention: { localMediaLifetime?: string; remoteMediaLifetime?: string };
    cacheFactor: number;
    trustedKeyServers: string[];
    federationDomainWhitelist?: string[];
    email?: EmailSettings;
    reportStats: boolean;
    /** PostgreSQL (its address comes from the database: see SynapsePeers), or an SQLite file for tiny test servers. */
    database: { kind: "postgres" } | { kind: "sqlite"; path: string };
    oldSigningKeys: Record<string, OldSigningKey>;
    /** Keep Pulumi from deleting the signing key it generated (`protect`). */
    protectSigningKey: boolean;
    /** Let the secrets script replace a differing signing key the host already has. */
    allowSigningKeyReplacement: boolean;
    /** The host holds the server without running it (a move to a new VM): every Synapse process stays stopped. */
    standby: boolean;
    /** What a change of `version` does around the switch (see `src/provision/synapse/upgrade.ts`). */
    upgrade: UpgradeSettings;
    logLevel: "DEBUG" | "INFO" | "WARNING" | "ERROR";
    extraConfig: Record<string, unknown>;
    /** Top-level keys of homeserver.yaml that extraConfig may replace. */
    allowOverride: string[];
    paths: SynapsePaths;
}

/**
 * The Synapse settings a user writes. Everything is optional except
 * serverName; `resolveSynapseSettings` fills in the defaults and validates.
 */
export interface SynapseOptions extends InstallOptions {
    /** The domain of your Matrix IDs (`@alice:example.com` -> `example.com`). Can never change after the first start. */
    serverName: string;
    /** URL clients use to reach Synapse. Default `https://<serverName>/`. */
    publicBaseUrl?: string;
    /** Synapse release to install; changing it upgrades in place (downgrades are refused). Default: the release this library is tested with. */
    version?: string;
    /** Port of the client/federation listener on loopback, behind the reverse proxy. Default 8008. */
    httpPort?: number;
    /** Addresses the client/federation listener binds; never 0.0.0.0 or :: (it trusts X-Forwarded-For from whoever connects). Default `["127.0.0.1"]`. */
    httpBindAddresses?: string[];
    /** Prometheus metrics listener on loopback. Default enabled on 127.0.0.1:9000. */
    metrics?: { enabled?: boolean; port?: number; bindAddress?: string };
    /**
     * The main process's HTTP replication listener, which workers call (a
     * WorkerPool needs it; never expose it publicly). `{}` takes the defaults:
     * port 9093 on 127.0.0.1; add this host's private address to
     * `bindAddresses` for workers on other hosts. Default: none (no workers).
     */
    replication?: { port?: number; bindAddresses?: string[] };
    /** Largest upload Synapse accepts, like `50M` (K, M or G). Default `50M`; the reverse proxy follows it. */
    maxUploadSize?: string;
    /** `shared-secret` (default: no public sign-up; the operator creates accounts) or `token` (sign-up with registration tokens). */
    registration?: RegistrationMode;
    /** Allow guest accounts. Default false. */
    allowGuestAccess?: boolean;
    /**
     * URL previews. Default off. When enabled they never fetch from BLOCKED_IP_RANGES (private, loopback,
     * link-local, NAT64, Teredo, 6to4 and other special ranges) nor from the CIDR networks in `ipRangeBlacklist`
     * (Synapse's `url_preview_ip_range_blacklist`), which are added to that list, never replace it. Default none added.
     */
    urlPreviews?: { enabled?: boolean; ipRangeBlacklist?: string[] };
    /**
     * More CIDR networks Synapse's outbound requests (federation, push, identity servers, key servers) must never
     * reach, added to BLOCKED_IP_RANGES, which is always Synapse's `ip_range_blacklist`. Default none added.
     */
    ipRangeBlacklist?: string[];
    /** Presence (online/offline status). Costs CPU on busy servers. Default true. */
    presence?: boolean;
    /**
     * How long a room every local user has left and forgotten is kept before Synapse purges it from the database
     * (Synapse's `forgotten_room_retention_period`): a Synapse duration, a whole number with s, m, h, d, w or y,
     * at least one day, such as `28d`. Default `28d` (Synapse's own default keeps such rooms for ever).
     */
    forgottenRoomRetentionPeriod?: string;
    /**
     * Deletes media nobody has accessed for a while (Synapse's `media_retention`). Each lifetime is a Synapse
     * duration of at least one day, such as `90d`; a lifetime left out keeps that media for ever. Default off (both
     * left out): local media (`localMediaLifetime`) is what your users uploaded and cannot be fetched again once
     * deleted; remote media (`remoteMediaLifetime`) is a cache of other servers' media, fetched again when needed.
     */
    mediaRetention?: { localMediaLifetime?: string; remoteMediaLifetime?: string };
    /** `caches.global_factor`: scales all of Synapse's caches. Default 0.5. */
    cacheFactor?: number;
    /** Servers trusted to vouch for other servers' keys. Default `["matrix.org"]`. */
    trustedKeyServers?: string[];
    /**
     * Only federate with these servers. Default (and an empty list, which is what the stack's
     * declared default `[]` gives): federate with everyone. Synapse itself reads an empty
     * `federation_domain_whitelist` as "nobody", so an empty list is never rendered.
     */
    federationDomainWhitelist?: string[];
    /** SMTP for notification mails; the password is a separate secret argument. Default: no email. */
    email?: Partial<EmailSettings> & { smtpHost: string; notifFrom: string };
    /** Send anonymous usage statistics to matrix.org. Default false. */
    reportStats?: boolean;
    /** Previous signing keys, keyed `ed25519:<key_id>`, so other servers can still verify old events. */
    oldSigningKeys?: Record<string, OldSigningKey>;
    /**
     * Protect the signing key Pulumi generates (Pulumi's `protect`): `pulumi destroy`
     * then fails until this is set to false and applied with `pulumi up`. Losing the
     * key changes the server's identity for federation. No effect with an imported
     * `signingKey`. Default true.
     */
    protectSigningKey?: boolean;
    /**
     * Allow replacing a signing key the host already has (one pulumi-matrix wrote
     * for an earlier stack, or one Synapse may have used) with this deployment's
     * key. Without it, the secrets step fails before changing anything and says
     * how to import the host's key instead. The replaced key is kept in
     * `<configDir>/secrets/keys-replaced/`. Default false.
     */
    allowSigningKeyReplacement?: boolean;
    /**
     * Hold the server on this host without running it, for a move to a new
     * VM (README: "Moving to a new VM"). Synapse and its workers are
     * installed and configured but stopped and disabled, and nothing calls
     * Synapse's API (the admin account, the alert room). With a
     * SynapseBackup, a live server going into standby is backed up once
     * more after it stopped (the move's final backup), a restored one
     * (`restoreFrom`) is restored again from a newer snapshot, and the
     * nightly backup and the maintenance timers stay off. Default false.
     */
    standby?: boolean;
    /**
     * When an upgrade fails after the new release migrated the database further
     * than the old release can read: `stop` (default) stops Synapse and names the
     * pre-upgrade backup to restore by hand; `restore` restores that backup
     * (the migrated database is kept, renamed) and starts the old release again.
     * `restore` needs `upgradeBackup`. See the README's "Upgrading and rolling back".
     */
    rollback?: UpgradeRollback;
    /**
     * Take a backup (a SynapseBackup's `pulumi-matrix-backup run`, tagged with the
     * old release) before switching to a new release. Default: true in a
     * MatrixStack with `backup`, else false (the upgrade then runs without one,
     * and says so).
     */
    upgradeBackup?: boolean;
    /** Log level of Synapse's journal output. Default `INFO`. */
    logLevel?: SynapseSettings["logLevel"];
    /** Extra top-level homeserver.yaml options, merged last. Keys the library manages are refused unless listed in `allowOverride`. */
    extraConfig?: Record<string, unknown>;
    /** Managed top-level keys that `extraConfig` may replace. Default none. */
    allowOverride?: string[];
    /** Where Synapse lives on the host; defaults follow the matrix.org package. Only `dataDir` and `mediaStorePath` may change with the apt method. */
    paths?: Partial<SynapsePaths>;
    /** Use an SQLite file instead of PostgreSQL: for tiny test servers only. Default: off (PostgreSQL). */
    sqlite?: { path?: string };
}

/** Default of `forgottenRoomRetentionPeriod`: four weeks, as issue 23 asks; long enough to undo a mistaken "forget". */
export const DEFAULT_FORGOTTEN_ROOM_RETENTION = "28d";

const DAY_MS = 24 * 3600 * 1000;
/** Synapse's duration units (its `parse_duration`), in milliseconds. */
const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS, y: 365 * DAY_MS };

/** A Synapse duration string (`28d`, `36h`) in milliseconds; undefined when it is not one this library writes. */
export function synapseDurationMs(v: unknown): number | undefined {
    if (typeof v !== "string") return undefined;
    const m = /^([1-9]\d{0,8})(s|m|h|d|w|y)$/.exec(v);
    return m ? Number(m[1]) * DURATION_UNITS[m[2]] : undefined;
}

/** Fills in defaults and validates. */
export function resolveSynapseSettings(component: string, o: SynapseOptions): SynapseSettings {
    const paths: SynapsePaths = { ...DEFAULT_SYNAPSE_PATHS, ...o.paths };
    if (o.paths?.dataDir && !o.paths.mediaStorePath) paths.mediaStorePath = `${o.paths.dataDir}/media`;
    const s: SynapseSettings = {
        serverName: o.serverName,
        publicBaseUrl: o.publicBaseUrl ?? `https://${o.serverName}/`,
        ...(o.publicBaseUrl === undefined ? { publicBaseUrlDerived: true as const } : {}),
        version: o.version ?? DEFAULT_SYNAPSE_VERSION,
        ...resolveInstall(o),
        httpPort: o.httpPort ?? 8008,
        httpBindAddresses: o.httpBindAddresses ?? ["127.0.0.1"],
        metrics: { enabled: o.metrics?.enabled ?? true, port: o.metrics?.port ?? 9000, bindAddress: o.metrics?.bindAddress ?? "127.0.0.1" },
        ...(o.replication
            ? { replication: { port: o.replication.port ?? DEFAULT_REPLICATION_PORT, bindAddresses: o.replication.bindAddresses ?? ["127.0.0.1"] } }
            : {}),
        maxUploadSize: o.maxUploadSize ?? DEFAULT_MAX_UPLOAD_SIZE,
        registration: o.registration ?? "shared-secret",
        allowGuestAccess: o.allowGuestAccess ?? false,
        urlPreviews: { enabled: o.urlPreviews?.enabled ?? false, ipRangeBlacklist: o.urlPreviews?.ipRangeBlacklist ?? [] },
        ipRangeBlacklist: o.ipRangeBlacklist ?? [],
        presence: o.presence ?? true,
        forgottenRoomRetentionPeriod: o.forgottenRoomRetentionPeriod ?? DEFAULT_FORGOTTEN_ROOM_RETENTION,
        mediaRetention: {
            ...(o.mediaRetention?.localMediaLifetime !== undefined ? { localMediaLifetime: o.mediaRetention.localMediaLifetime } : {}),
            ...(o.mediaRetention?.remoteMediaLifetime !== undefined ? { remoteMediaLifetime: o.mediaRetention.remoteMediaLifetime } : {}),
        },
        cacheFactor: o.cacheFactor ?? 0.5,
        trustedKeyServers: o.trustedKeyServers ?? ["matrix.org"],
        federationDomainWhitelist: o.federationDomainWhitelist?.length ? o.federationDomainWhitelist : undefined,
        email: o.email
            ? {
                  smtpHost: o.email.smtpHost,
                  smtpPort: o.email.smtpPort ?? 587,
                  smtpUser: o.email.smtpUser,
                  notifFrom: o.email.notifFrom,
                  requireTransportSecurity: o.email.requireTransportSecurity ?? true,
                  enableNotifs: o.email.enableNotifs ?? true,
                  appName: o.email.appName ?? "Matrix",
              }
            : undefined,
        reportStats: o.reportStats ?? false,
        database: o.sqlite ? { kind: "sqlite", path: o.sqlite.path ?? `${paths.dataDir}/homeserver.db` } : { kind: "postgres" },
        oldSigningKeys: o.oldSigningKeys ?? {},
        protectSigningKey: o.protectSigningKey ?? true,
        allowSigningKeyReplacement: o.allowSigningKeyReplacement ?? false,
        standby: o.standby ?? false,
        upgrade: { rollback: o.rollback ?? "stop", backup: o.upgradeBackup ?? false },
        logLevel: o.logLevel ?? "INFO",
        extraConfig: o.extraConfig ?? {},
        allowOverride: o.allowOverride ?? [],
        paths,
    };
    validateSynapse(component, s);
    return s;
}

/**
 * What Synapse learns from other resources (a database's address), carried
 * beside the settings so the settings stay plain values other components can
 * read.
 */
export interface SynapsePeers {
    /** How to reach PostgreSQL (without the password); absent with SQLite. */
    database?: DatabaseConnection;
}

/** The ports Synapse's main process binds on its host. */
export function synapsePortClaims(s: SynapseSettings): PortClaim[] {
    const claims: PortClaim[] = s.httpBindAddresses.map((address) => ({
        port: s.httpPort,
        protocol: "tcp",
        address,
        owner: "synapse http listener",
        setting: "httpPort",
    }));
    if (s.metrics.enabled)
        claims.push({ port: s.metrics.port, protocol: "tcp", address: s.metrics.bindAddress, owner: "synapse metrics listener", setting: "metrics.port" });
    for (const address of s.replication?.bindAddresses ?? [])
        claims.push({ port: s.replication!.port, protocol: "tcp", address, owner: "synapse replication listener", setting: "replication.port" });
    return claims;
}

/** Settings that work but that a user should hear about. */
export function synapseWarnings(s: SynapseSettings): string[] {
    const warnings: string[] = [];
    const url = new URL(s.publicBaseUrl);
    const local = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) || url.hostname.endsWith(".localhost") || url.hostname.endsWith(".test");
    if (url.protocol === "http:" && !local) {
        warnings.push(
            `publicBaseUrl is ${JSON.stringify(s.publicBaseUrl)}: clients would send passwords and access tokens unencrypted; use https:// behind a TLS reverse proxy`,
        );
    }
    if (s.database.kind === "sqlite") warnings.push("SQLite is for tiny test servers only; use a PostgresDatabase for anything real");
    return warnings;
}

/**
 * A secret file Synapse reads: of Synapse's own inputs (the database
 * passfile, the SMTP fragment), written by its secrets script, or of a
 * service built after it (coturn's shared secret, the pool's replication
 * secret), written by that service's own step (`synapsePeerSecrets`).
 */
export interface SynapseSecretFile {
    /** File name: under secrets/ for a value read through a `*_path` option (or libpq), under conf.d/ for a fragment. */
    name: string;
    /** `secret`: secrets/<name>; `fragment`: conf.d/<name>, YAML Synapse merges at the top level (for options without a `*_path` variant). */
    kind: "secret" | "fragment";
    content: string;
    /** `group` (default): root-owned, mode 0640, readable by Synapse's group; `user`: owned by Synapse's user, mode 0600 (libpq demands it of a passfile). */
    access?: "group" | "user";
}

/** A secret file's name: one path component of letters, digits and `._-`, not starting with a dot (no `/`, no `..`, no hidden file). */
export function isSecretFileName(name: unknown): name is string {
    return typeof name === "string" && /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name);
}

/**
 * Where a secret file is written. The name is checked here, where every
 * writer's path is made: a name with `/` or `..` would write (as root)
 * outside Synapse's secrets/ or conf.d/ directory; a conf.d fragment must end
 * in `.yaml`, the only files Synapse reads there.
 */
export function secretFilePath(paths: SynapsePaths, f: Pick<SynapseSecretFile, "name" | "kind">): string {
    if (!isSecretFileName(f.name))
        throw new ConfigError(
            "SynapseSecretFile",
            "name",
            f.name,
            "expected a plain file name of letters, digits and ._- (not starting with a dot; no / and no ..), such as turn_shared_secret",
        );
    if (f.kind === "fragment" && !f.name.endsWith(".yaml"))
        throw new ConfigError("SynapseSecretFile", "name", f.name, "expected a conf.d fragment's name ending in .yaml, such as 50-email-secret.yaml");
    if (f.kind !== "secret" && f.kind !== "fragment") throw new ConfigError("SynapseSecretFile", "kind", f.kind, 'expected "secret" or "fragment"');
    return `${paths.configDir}/${f.kind === "secret" ? SECRETS_DIR : "conf.d"}/${f.name}`;
}

/**
 * Address ranges Synapse must never connect to, for URL previews and for every outbound request (federation,
 * push, identity servers): a name resolving into one would let a remote user reach the host itself or the
 * private network behind it. Synapse's own default list, plus the ranges it misses (marked "added").
 */
export const BLOCKED_IP_RANGES: readonly string[] = [
    "0.0.0.0/8", // added: "this network"; 0.0.0.0 itself reaches the local host on Linux
    "10.0.0.0/8", // RFC 1918 private network
    "100.64.0.0/10", // CGNAT shared space: the provider's internal network
    "127.0.0.0/8", // loopback: the host's own services
    "169.254.0.0/16", // link-local, including cloud metadata services (169.254.169.254)
    "172.16.0.0/12", // RFC 1918 private network
    "192.0.0.0/24", // IETF protocol assignments, not a public destination
    "192.0.2.0/24", // TEST-NET-1 documentation range, never routed
    "192.88.99.0/24", // former 6to4 relay anycast: reaches a relay into any IPv6 network
    "192.168.0.0/16", // RFC 1918 private network
    "198.18.0.0/15", // benchmarking networks, used inside labs and appliances
    "198.51.100.0/24", // TEST-NET-2 documentation range, never routed
    "203.0.113.0/24", // TEST-NET-3 documentation range, never routed
    "224.0.0.0/4", // multicast: never a single server
    "240.0.0.0/4", // added: reserved, including the 255.255.255.255 broadcast address
    "::/128", // added: the unspecified address, like 0.0.0.0 reaches the local host
    "::1/128", // loopback
    "64:ff9b::/96", // added: NAT64, embeds any IPv4 address, private ones included
    "64:ff9b:1::/48", // added: local-use NAT64, embeds any IPv4 address
    "100::/64", // added: discard-only prefix, never a real server
    "2001::/32", // added: Teredo tunnels, embed IPv4 addresses and reach through NATs
    "2001:db8::/32", // documentation range, never routed
    "2002::/16", // added: 6to4, embeds any IPv4 address, private ones included
    "fc00::/7", // unique local addresses: the IPv6 private networks
    "fe80::/10", // link-local
    "fec0::/10", // deprecated site-local, still private where used
    "ff00::/8", // multicast: never a single server
];

/** BLOCKED_IP_RANGES followed by the user's `extra` ranges not already in it: user entries add, never replace. */
export function blockedIpRanges(extra: readonly string[]): string[] {
    return [...BLOCKED_IP_RANGES, ...extra.filter((r, i) => !BLOCKED_IP_RANGES.includes(r) && extra.indexOf(r) === i)];
}

/** The port of the main process's replication listener when nothing else is said (as in Synapse's docs). */
export const DEFAULT_REPLICATION_PORT = 9093;

/** Maximum size Synapse accepts for an upload when nothing else is said. */
export const DEFAULT_MAX_UPLOAD_SIZE = "50M";

const SECRETS_DIR = "secrets";
/** The libpq passfile with the database password, under secrets/. */
export const PGPASS_FILE = "pgpass";
/** The conf.d fragment carrying the email block with its SMTP password (Synapse has no smtp_pass_path). */
export const EMAIL_FRAGMENT = "50-email-secret.yaml";
/** Where the secret files sit, derived from the config directory. */
export function synapseFiles(paths: SynapsePaths) {
    const c = paths.configDir;
    return {
        homeserverYaml: `${c}/homeserver.yaml`,
        confD: `${c}/conf.d`,
        logConfig: `${c}/log.yaml`,
        signingKey: `${c}/homeserver.signing.key`,
        secretsDir: `${c}/${SECRETS_DIR}`,
        macaroonSecretKey: `${c}/${SECRETS_DIR}/macaroon_secret_key`,
        formSecret: `${c}/${SECRETS_DIR}/form_secret`,
        registrationSharedSecret: `${c}/${SECRETS_DIR}/registration_shared_secret`,
        databasePassfile: `${c}/${SECRETS_DIR}/${PGPASS_FILE}`,
        /** Worker processes' own config files (`<name>.yaml`, written by WorkerPool). */
        workersDir: `${c}/workers`,
        /**
         * The worker processes on this host, one `<unit> <health URL>` per line, in
         * restart order (written by WorkerPool): Synapse's scripts restart them after
         * the main process when something they all read changes.
         */
        workerList: `${c}/workers/processes.list`,
    };
}

/**
 * Synapse's legacy switches that stop a duty on the main process, for a
 * worker app that took it over: set to false in extraConfig, the duty stops
 * with nothing taking it over (a WorkerPool hands duties to its workers by
 * the options of INSTANCE_OPTIONS, which it writes itself).
 */
const DUTY_SWITCHES: Record<string, { duty: string; role: string }> = {
    send_federation: { duty: "outbound federation (other servers would get no events from this one)", role: "federation_sender" },
    start_pushers: { duty: "push notifications", role: "pusher" },
    notify_appservices: { duty: "traffic to application services (bridges)", role: "appservice" },
    update_user_directory: { duty: "user directory updates", role: "user_dir" },
};

/** Options that name Synapse processes, with the WorkerPool role whose workers the pool names there. */
const INSTANCE_OPTIONS: Record<string, string> = {
    federation_sender_instances: "federation_sender",
    pusher_instances: "pusher",
    run_background_tasks_on: "background",
    update_user_directory_from_worker: "user_dir",
    notify_appservices_from_worker: "appservice",
    media_instance_running_background_jobs: "media_repository",
    stream_writers: "the stream's writer role (event_persister, typing, ...)",
    instance_map: "any role that writes a stream",
};

/** The main process's names in Synapse's options. */
const MAIN_NAMES = ["main", "master"];

/** The process names an instance option's value gives (list, single name, stream -> names, or instance_map's keys). */
function instanceNames(key: string, value: unknown): string[] {
    const names = (v: unknown): string[] => (typeof v === "string" ? [v] : Array.isArray(v) ? v.map(String) : []);
    if (value === null || value === undefined) return [];
    if (key === "instance_map") return typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : [];
    if (key === "stream_writers") return typeof value === "object" && !Array.isArray(value) ? Object.values(value).flatMap(names) : [];
    return names(value);
}

/**
 * extraConfig that silently stops outbound federation or another duty, or
 * hands it to processes that do not exist: only the main process exists
 * unless a WorkerPool adds workers, and the pool writes these options
 * itself (it also refuses them, and checks `outbound_federation_restricted_to`
 * against its processes).
 */
function checkExtraConfigDuties(c: Checker, extra: Record<string, unknown>): void {
    for (const [key, { duty, role }] of Object.entries(DUTY_SWITCHES))
        if (extra[key] === false)
            c.check(
                `extraConfig.${key}`,
                false,
                false,
                `expected it left out (or true): false would stop ${duty} on the main process with no process taking it over; a WorkerPool hands the duty to its ${role} workers itself`,
            );
    for (const [key, role] of Object.entries(INSTANCE_OPTIONS)) {
        if (!(key in extra)) continue;
        const unknown = instanceNames(key, extra[key]).filter((n) => !MAIN_NAMES.includes(n));
        if (unknown.length)
            c.check(
                `extraConfig.${key}`,
                extra[key],
                false,
                `it names ${unknown.join(", ")}, and no such Synapse process exists: valid is only the main process ("main") unless a WorkerPool adds workers, and the WorkerPool writes ${key} itself; remove it and give the WorkerPool ${role} workers instead`,
            );
    }
}

/**
 * How to report a problem with the public base URL: on publicBaseUrl when
 * the user wrote it; on serverName (with its value) when the URL is the
 * default `https://<serverName>/`, which the user never wrote. `prefix`
 * is the path to Synapse's options from the reporting component (`synapse.`).
 */
export function publicBaseUrlProblem(
    h: Pick<SynapseSettings, "serverName" | "publicBaseUrl" | "publicBaseUrlDerived">,
    prefix = "",
): { setting: string; value: string; expected: (why: string) => string } {
    if (!h.publicBaseUrlDerived) return { setting: `${prefix}publicBaseUrl`, value: h.publicBaseUrl, expected: (why) => why };
    return {
        setting: `${prefix}serverName`,
        value: h.serverName,
        expected: (why) =>
            `publicBaseUrl is left out, so it is ${JSON.stringify(h.publicBaseUrl)}, made from serverName, and that URL fails: ${why}; set publicBaseUrl, such as https://matrix.example.com/`,
    };
}

export function validateSynapse(component: string, s: SynapseSettings): void {
    const c = new Checker(component);
    c.check(
        "serverName",
        s.serverName,
        typeof s.serverName === "string" && isServerName(s.serverName),
        "expected the domain of your Matrix IDs, such as example.com (a host name, optionally with :port); it can never change after the first start",
    );
    let baseOk = false;
    try {
        const u = new URL(s.publicBaseUrl);
        baseOk = (u.protocol === "https:" || u.protocol === "http:") && u.search === "" && u.hash === "" && s.publicBaseUrl.endsWith("/");
    } catch {
        /* invalid URL */
    }
    const url = publicBaseUrlProblem(s);
    c.check(url.setting, url.value, baseOk, url.expected("expected an http(s) URL ending in /, such as https://matrix.example.com/"));
    c.check(
        "version",
        s.version,
        typeof s.version === "string" && isVersion(s.version),
        `expected a Synapse release such as ${DEFAULT_SYNAPSE_VERSION} or 1.164.0rc1: MAJOR.MINOR.PATCH with an optional rcN, as Synapse tags its releases (no leading v)`,
    );
    validateInstall(c, s, s.serverName);
    validateUpgrade(c, s.upgrade);
    if (s.installMethod === "pip" && typeof s.version === "string" && isVersion(s.version))
        c.check(
            "version",
            s.version,
            synapseRequirements(s.version) !== undefined,
            `installMethod "pip" installs only a release whose dependencies this library pins with hashes (every package and file verified): ${Object.keys(SYNAPSE_CONSTRAINTS).join(", ")}; set one of them, or use installMethod "apt" (matrix.org's package, which pins its own)`,
        );
    c.port("httpPort", s.httpPort);
    for (const a of s.httpBindAddresses) {
        c.check("httpBindAddresses", a, isIpAddress(a), "expected IP addresses such as 127.0.0.1");
        // The listener trusts X-Forwarded-For (x_forwarded: true): on every address, any client could claim any source address.
        c.check(
            "httpBindAddresses",
            a,
            !isWildcardAddress(a),
            "expected the addresses the reverse proxy connects to, such as 127.0.0.1 or a private address: this listener trusts the X-Forwarded-For header (x_forwarded), so bound to every address any client could forge its source address (in logs, rate limits and IP bans)",
        );
    }
    c.port("metrics.port", s.metrics.port);
    c.check(
        "metrics.bindAddress",
        s.metrics.bindAddress,
        isIpAddress(s.metrics.bindAddress),
        "expected an IP address such as 127.0.0.1 (keep metrics off the public internet)",
    );
    c.check("metrics.port", s.metrics.port, !s.metrics.enabled || s.metrics.port !== s.httpPort, `expected a port other than httpPort (${s.httpPort})`);
    if (s.replication) {
        const r = s.replication;
        c.port("replication.port", r.port);
        c.check(
            "replication.port",
            r.port,
            r.port !== s.httpPort && !(s.metrics.enabled && r.port === s.metrics.port),
            `expected a port other than httpPort (${s.httpPort}) and metrics.port (${s.metrics.port})`,
        );
        for (const a of r.bindAddresses) c.check("replication.bindAddresses", a, isIpAddress(a), "expected IP addresses such as 127.0.0.1 or 10.0.0.4");
        c.check(
            "replication.bindAddresses",
            r.bindAddresses,
            r.bindAddresses.length > 0 && !r.bindAddresses.some(isWildcardAddress),
            "expected loopback and private addresses: replication must never be reachable from the internet",
        );
    }
    const size = parseSize(s.maxUploadSize);
    c.check(
        "maxUploadSize",
        s.maxUploadSize,
        size !== undefined && size >= 1024 && size <= 100 * 1024 ** 3,
        "expected a size such as 50M: a whole number followed by K, M or G, from 1K to 100G",
    );
    c.oneOf("registration", s.registration, ["shared-secret", "token"] as const);
    for (const [setting, value] of [
        ["forgottenRoomRetentionPeriod", s.forgottenRoomRetentionPeriod],
        ["mediaRetention.localMediaLifetime", s.mediaRetention.localMediaLifetime],
        ["mediaRetention.remoteMediaLifetime", s.mediaRetention.remoteMediaLifetime],
    ] as const) {
        if (value === undefined) continue;
        const ms = synapseDurationMs(value);
        c.check(
            setting,
            value,
            ms !== undefined && ms >= DAY_MS,
            "expected a duration of at least one day: a whole number with s, m, h, d, w or y (Synapse's units), such as 28d or 2w",
        );
    }
    const cidrs = "expected CIDR networks such as 10.0.0.0/8 or fd00::/8 (or single addresses), added to the built-in blocked ranges";
    for (const [setting, list] of [
        ["urlPreviews.ipRangeBlacklist", s.urlPreviews.ipRangeBlacklist],
        ["ipRangeBlacklist", s.ipRangeBlacklist],
    ] as const) {
        c.check(setting, list, Array.isArray(list), `${cidrs}, as a list`);
        for (const r of Array.isArray(list) ? list : []) c.check(setting, r, typeof r === "string" && isCidr(r), cidrs);
    }
    c.check(
        "cacheFactor",
        s.cacheFactor,
        typeof s.cacheFactor === "number" && s.cacheFactor > 0 && s.cacheFactor <= 100,
        "expected a number greater than 0 and at most 100, such as 0.5 or 2",
    );
    for (const k of s.trustedKeyServers) c.check("trustedKeyServers", k, isServerName(k), "expected server names such as matrix.org");
    for (const d of s.federationDomainWhitelist ?? []) c.check("federationDomainWhitelist", d, isServerName(d), "expected server names such as example.org");
    if (s.email) {
        const e = s.email;
        c.check(
            "email.smtpHost",
            e.smtpHost,
            isHostname(e.smtpHost) || isIpAddress(e.smtpHost) || e.smtpHost === "localhost",
            "expected the SMTP server's host name, such as smtp.example.com",
        );
        c.port("email.smtpPort", e.smtpPort);
        const addr = /<([^>]+)>\s*$/.exec(e.notifFrom)?.[1] ?? e.notifFrom;
        c.check("email.notifFrom", e.notifFrom, isEmail(addr.trim()), 'expected a sender such as "Matrix <noreply@example.com>" or noreply@example.com');
        c.check(
            "email.appName",
            e.appName,
            typeof e.appName === "string" && e.appName.length > 0 && !/[\n\r]/.test(e.appName),
            "expected a short one-line name such as Matrix",
        );
    }
    if (s.database.kind === "sqlite")
        c.check("database.path", s.database.path, isAbsolutePath(s.database.path), "expected an absolute path such as /var/lib/matrix-synapse/homeserver.db");
    for (const [id, k] of Object.entries(s.oldSigningKeys)) {
        c.check("oldSigningKeys", id, /^ed25519:[A-Za-z0-9_]+$/.test(id), "expected keys named like ed25519:a_abcd");
        c.check(`oldSigningKeys["${id}"].key`, k.key, /^[A-Za-z0-9+/]{43}$/.test(k.key), "expected the 32-byte public key in unpadded base64 (43 characters)");
        c.check(
            `oldSigningKeys["${id}"].expiredTs`,
            k.expiredTs,
            Number.isInteger(k.expiredTs) && k.expiredTs > 1e12,
            "expected milliseconds since the epoch, such as 1700000000000",
        );
    }
    c.oneOf("logLevel", s.logLevel, ["DEBUG", "INFO", "WARNING", "ERROR"] as const);
    checkExtraConfigDuties(c, s.extraConfig);
    c.errors.push(...extraConfigSecretErrors(c.component, s.extraConfig, s.paths.configDir));
    for (const [k, v] of Object.entries(s.paths)) {
        if (k === "user") c.check("paths.user", v, /^[a-z_][a-z0-9_-]{0,31}$/.test(v), "expected a Unix user name such as matrix-synapse");
        else c.check(`paths.${k}`, v, isAbsolutePath(v), "expected an absolute path (letters, digits and ._-/+@ only, no '..')");
    }
    if (s.installMethod === "apt") {
        for (const [k, v] of Object.entries(DEFAULT_SYNAPSE_PATHS)) {
            if (k === "mediaStorePath" || k === "dataDir") continue;
            const actual = (s.paths as unknown as Record<string, string>)[k];
            c.check(`paths.${k}`, actual, actual === v, `the apt package fixes this to ${JSON.stringify(v)}; use installMethod "pip" to choose another`);
        }
    }
    c.done();
}

/** Validates an initial admin user localpart. */
export function validateAdminUser(component: string, localpart: string | undefined): void {
    if (localpart === undefined) return;
    if (!isLocalpart(localpart)) {
        throw new ConfigError(component, "adminUser", localpart, "expected a Matrix user localpart such as admin (lower-case letters, digits and ._=-/+)");
    }
}

/** The Matrix ID of a local user. */
export function userId(localpart: string, serverName: string): string {
    return `@${localpart}:${serverName}`;
}
