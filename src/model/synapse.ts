import { ConfigError } from "./errors";
import { DatabaseConnection } from "./postgres";
import { Checker, isAbsolutePath, isCidr, isEmail, isHostname, isIpAddress, isLocalpart, isServerName, isVersion, parseSize } from "./validate";

/** The Synapse release the library is tested with and installs by default. */
export const DEFAULT_SYNAPSE_VERSION = "1.163.2";

export type InstallMethod = "apt" | "pip";

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
    version: string;
    installMethod: InstallMethod;
    /** The http listener for client and federation traffic (behind the reverse proxy). */
    httpPort: number;
    httpBindAddresses: string[];
    metrics: { enabled: boolean; port: number; bindAddress: string };
    maxUploadSize: string;
    registration: RegistrationMode;
    allowGuestAccess: boolean;
    urlPreviews: { enabled: boolean; ipRangeBlacklist: string[] };
    presence: boolean;
    cacheFactor: number;
    trustedKeyServers: string[];
    federationDomainWhitelist?: string[];
    email?: EmailSettings;
    reportStats: boolean;
    /** PostgreSQL connection, or the path of an SQLite file for tiny test servers. */
    database: { kind: "postgres"; connection: DatabaseConnection } | { kind: "sqlite"; path: string };
    oldSigningKeys: Record<string, OldSigningKey>;
    logLevel: "DEBUG" | "INFO" | "WARNING" | "ERROR";
    extraConfig: Record<string, unknown>;
    /** Top-level keys of homeserver.yaml that extraConfig may replace. */
    allowOverride: string[];
    paths: SynapsePaths;
}

/** The ranges URL previews must never fetch from (private, loopback, link-local, CGNAT, documentation, multicast). */
export const DEFAULT_URL_PREVIEW_BLACKLIST = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32",
    "ff00::/8", "fec0::/10",
];

/** Maximum size Synapse accepts for an upload when nothing else is said. */
export const DEFAULT_MAX_UPLOAD_SIZE = "50M";

const SECRETS_DIR = "secrets";
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
        databasePassfile: `${c}/${SECRETS_DIR}/pgpass`,
        /** conf.d fragment that carries the email block with its SMTP password. */
        emailFragment: `${c}/conf.d/50-email-secret.yaml`,
    };
}

export function validateSynapse(component: string, s: SynapseSettings): void {
    const c = new Checker(component);
    c.check("serverName", s.serverName, typeof s.serverName === "string" && isServerName(s.serverName),
        "expected the domain of your Matrix IDs, such as example.com (a host name, optionally with :port); it can never change after the first start");
    let baseOk = false;
    try {
        const u = new URL(s.publicBaseUrl);
        baseOk = (u.protocol === "https:" || u.protocol === "http:") && u.search === "" && u.hash === "" && s.publicBaseUrl.endsWith("/");
    } catch { /* invalid URL */ }
    c.check("publicBaseUrl", s.publicBaseUrl, baseOk, "expected an http(s) URL ending in /, such as https://matrix.example.com/");
    c.check("version", s.version, typeof s.version === "string" && isVersion(s.version), `expected a Synapse release such as ${DEFAULT_SYNAPSE_VERSION}`);
    c.oneOf("installMethod", s.installMethod, ["apt", "pip"] as const);
    c.port("httpPort", s.httpPort);
    for (const a of s.httpBindAddresses) c.check("httpBindAddresses", a, isIpAddress(a), "expected IP addresses such as 127.0.0.1");
    c.port("metrics.port", s.metrics.port);
    c.check("metrics.bindAddress", s.metrics.bindAddress, isIpAddress(s.metrics.bindAddress), "expected an IP address such as 127.0.0.1 (keep metrics off the public internet)");
    c.check("metrics.port", s.metrics.port, !s.metrics.enabled || s.metrics.port !== s.httpPort, `expected a port other than httpPort (${s.httpPort})`);
    const size = parseSize(s.maxUploadSize);
    c.check("maxUploadSize", s.maxUploadSize, size !== undefined && size >= 1024 && size <= 100 * 1024 ** 3,
        "expected a size such as 50M: a whole number followed by K, M or G, from 1K to 100G");
    c.oneOf("registration", s.registration, ["shared-secret", "token"] as const);
    for (const r of s.urlPreviews.ipRangeBlacklist) c.check("urlPreviews.ipRangeBlacklist", r, isCidr(r), "expected CIDR networks such as 10.0.0.0/8");
    c.check("cacheFactor", s.cacheFactor, typeof s.cacheFactor === "number" && s.cacheFactor > 0 && s.cacheFactor <= 100, "expected a number greater than 0 and at most 100, such as 0.5 or 2");
    for (const k of s.trustedKeyServers) c.check("trustedKeyServers", k, isServerName(k), "expected server names such as matrix.org");
    for (const d of s.federationDomainWhitelist ?? []) c.check("federationDomainWhitelist", d, isServerName(d), "expected server names such as example.org");
    if (s.email) {
        const e = s.email;
        c.check("email.smtpHost", e.smtpHost, isHostname(e.smtpHost) || isIpAddress(e.smtpHost) || e.smtpHost === "localhost", "expected the SMTP server's host name, such as smtp.example.com");
        c.port("email.smtpPort", e.smtpPort);
        const addr = /<([^>]+)>\s*$/.exec(e.notifFrom)?.[1] ?? e.notifFrom;
        c.check("email.notifFrom", e.notifFrom, isEmail(addr.trim()), "expected a sender such as \"Matrix <noreply@example.com>\" or noreply@example.com");
        c.check("email.appName", e.appName, typeof e.appName === "string" && e.appName.length > 0 && !/[\n\r]/.test(e.appName), "expected a short one-line name such as Matrix");
    }
    if (s.database.kind === "sqlite") c.check("database.path", s.database.path, isAbsolutePath(s.database.path), "expected an absolute path such as /var/lib/matrix-synapse/homeserver.db");
    for (const [id, k] of Object.entries(s.oldSigningKeys)) {
        c.check("oldSigningKeys", id, /^ed25519:[A-Za-z0-9_]+$/.test(id), "expected keys named like ed25519:a_abcd");
        c.check(`oldSigningKeys["${id}"].key`, k.key, /^[A-Za-z0-9+/]{43}$/.test(k.key), "expected the 32-byte public key in unpadded base64 (43 characters)");
        c.check(`oldSigningKeys["${id}"].expiredTs`, k.expiredTs, Number.isInteger(k.expiredTs) && k.expiredTs > 1e12, "expected milliseconds since the epoch, such as 1700000000000");
    }
    c.oneOf("logLevel", s.logLevel, ["DEBUG", "INFO", "WARNING", "ERROR"] as const);
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
