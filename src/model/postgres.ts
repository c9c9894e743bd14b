import { Described } from "./errors";
import { checkExternalOptions, ExternalServer, externalServer } from "./external";
import { FirewallRule, PortClaim } from "./host";
import { Checker, isAbsolutePath, isCidr, isHostAddress, isIpAddress, isSqlIdentifier } from "./validate";

export const POSTGRES_FILES = {
    backupScript: "/usr/local/lib/pulumi-matrix/pg-backup.sh",
    backupService: "/etc/systemd/system/pulumi-matrix-pg-backup.service",
    backupTimer: "/etc/systemd/system/pulumi-matrix-pg-backup.timer",
    /** The server's TLS files (root-owned directory, so the postgres user cannot swap them for links). */
    tlsDir: "/etc/pulumi-matrix/postgres-tls",
    tlsCert: "/etc/pulumi-matrix/postgres-tls/server.crt",
    tlsKey: "/etc/pulumi-matrix/postgres-tls/server.key",
    tlsCa: "/etc/pulumi-matrix/postgres-tls/ca.crt",
    /** The ssl settings, included by the tuning fragment when present (written with the key, so PostgreSQL never names a missing file). */
    tlsConf: "/etc/pulumi-matrix/postgres-tls/ssl.conf",
};

/** The system's CA bundle on Debian and Ubuntu: what libpq verifies an external server against when no CA is given. */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** PostgreSQL as installed on a host by the library. */
export interface PostgresLocalSettings {
    mode: "local";
    /** Database name (default "synapse"). */
    database: string;
    /** Role that owns the database (default "synapse"). */
    user: string;
    /** TCP port (default 5432). */
    port: number;
    /** Memory (MiB) PostgreSQL may plan with; tuning is derived from it (default 1024). */
    memoryMb: number;
    /**
     * Addresses PostgreSQL listens on: loopback always; add the host's private
     * address when Synapse runs on another host (default ["127.0.0.1"]).
     */
    listenAddresses: string[];
    /** Networks (CIDR) of other hosts allowed to connect; pg_hba and the firewall are limited to them (default none). */
    allowedClients: string[];
    backup: PostgresBackupSettings;
}

/** Nightly pg_dump to a directory on the database host. */
export interface PostgresBackupSettings {
    /** Run the nightly dump (default true). */
    enabled: boolean;
    /** Directory for the dumps (default /var/backups/pulumi-matrix/postgres). */
    directory: string;
    /** How many dumps to keep (default 7). */
    retention: number;
    /** systemd OnCalendar expression (default "*-*-* 03:30:00"). */
    schedule: string;
}

/** An existing or managed PostgreSQL; nothing is installed. */
export interface PostgresExternalSettings {
    mode: "external";
    host: string;
    port: number;
    database: string;
    user: string;
    /** libpq sslmode; default "verify-full" (TLS required, certificate and host name checked). */
    sslMode: "disable" | "prefer" | "require" | "verify-ca" | "verify-full";
    /** PEM of the CA that signed the server's certificate; absent: the system's CAs. */
    caCertificate?: string;
}

export type PostgresSettings = PostgresLocalSettings | PostgresExternalSettings;

/** How Synapse reaches its database: everything except the password. */
export interface DatabaseConnection {
    host: string;
    port: number;
    database: string;
    user: string;
    /** libpq sslmode (absent: libpq's default, used on loopback only). */
    sslMode?: PostgresExternalSettings["sslMode"];
    /**
     * PEM of the CA that signed the server's certificate (public): written
     * on every Synapse host as `sslrootcert`. Absent with verify-ca or
     * verify-full: the system's CAs.
     */
    caCertificate?: string;
}

/** One or more PEM certificates and nothing else. */
export function isPemCertificates(v: unknown): boolean {
    return typeof v === "string" && /^(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/.test(v.trim());
}

/** Whether a local server serves other hosts: then they reach it over TLS only (see renderPgHbaBlock). */
export function postgresServesOtherHosts(s: PostgresLocalSettings): boolean {
    return s.allowedClients.length > 0;
}

/** The sslmodes that check the server's certificate; the weaker ones are accepted only when asked for, with a warning. */
const VERIFYING_SSL_MODES: readonly string[] = ["verify-ca", "verify-full"];

/** What a user should hear about an external server's settings (the component logs it). */
export function postgresWarnings(component: string, s: PostgresExternalSettings): string[] {
    if (s.sslMode === "verify-full") return [];
    if (VERIFYING_SSL_MODES.includes(s.sslMode))
        return [`${component}: external.sslMode is verify-ca: the certificate is checked but not the host name ${s.host}; prefer verify-full`];
    return [
        `${component}: external.sslMode is ${s.sslMode}: the database connection (the role's password and every message) ${s.sslMode === "require" ? "is encrypted but the server is not authenticated: anyone on the path can pose as it" : "may cross the network in cleartext"}; use verify-full (give external.caCertificate for a private CA)`,
    ];
}

export const POSTGRES_DEFAULTS = {
    database: "synapse",
    user: "synapse",
    port: 5432,
    memoryMb: 1024,
    listenAddresses: ["127.0.0.1"],
    backup: { enabled: true, directory: "/var/backups/pulumi-matrix/postgres", retention: 7, schedule: "*-*-* 03:30:00" },
} as const;

/** The oldest PostgreSQL major current Synapse starts on. */
export const MIN_POSTGRES_MAJOR = 14;

/** Validates settings; `prefix` names where they sit in the user's arguments (`external.` for an external server). */
export function validatePostgres(component: string, s: PostgresSettings, prefix = ""): void {
    const c = new Checker(component);
    c.check(`${prefix}database`, s.database, isSqlIdentifier(s.database), "expected a lower-case SQL name such as synapse (letters, digits, _; at most 63)");
    c.check(`${prefix}user`, s.user, isSqlIdentifier(s.user), "expected a lower-case SQL role name such as synapse (letters, digits, _; at most 63)");
    c.port(`${prefix}port`, s.port);
    if (s.mode === "local") {
        c.check(
            `${prefix}memoryMb`,
            s.memoryMb,
            Number.isInteger(s.memoryMb) && s.memoryMb >= 256 && s.memoryMb <= 1024 * 1024,
            "expected a whole number of MiB from 256 to 1048576",
        );
        for (const a of s.listenAddresses) c.check(`${prefix}listenAddresses`, a, isIpAddress(a), "expected IP addresses such as 127.0.0.1 or 10.0.0.5");
        for (const a of s.allowedClients) c.check(`${prefix}allowedClients`, a, isCidr(a), "expected CIDR networks such as 10.0.0.0/24");
        c.check(
            `${prefix}allowedClients`,
            s.allowedClients,
            s.allowedClients.length === 0 || s.listenAddresses.some((a) => a !== "127.0.0.1" && a !== "::1"),
            "clients on other hosts need PostgreSQL to listen on a private address: add it to listenAddresses",
        );
        c.check(
            `${prefix}backup.directory`,
            s.backup.directory,
            isAbsolutePath(s.backup.directory),
            "expected an absolute path such as /var/backups/pulumi-matrix/postgres",
        );
        c.positiveInt(`${prefix}backup.retention`, s.backup.retention, 366);
        c.check(
            `${prefix}backup.schedule`,
            s.backup.schedule,
            /^[0-9A-Za-z*:,./ ~-]+$/.test(s.backup.schedule),
            'expected a systemd OnCalendar expression such as "*-*-* 03:30:00" or "daily"',
        );
    } else {
        c.check(`${prefix}host`, s.host, isHostAddress(s.host), "expected an IP address or DNS host name of the PostgreSQL server");
        c.oneOf(`${prefix}sslMode`, s.sslMode, ["disable", "prefer", "require", "verify-ca", "verify-full"] as const);
        if (s.caCertificate !== undefined) {
            c.check(
                `${prefix}caCertificate`,
                new Described("set"),
                VERIFYING_SSL_MODES.includes(s.sslMode),
                "it is only used to verify the server: use sslMode verify-full (or verify-ca), or remove it",
            );
            c.check(
                `${prefix}caCertificate`,
                new Described("not a PEM certificate"),
                isPemCertificates(s.caCertificate),
                "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            );
        }
    }
    c.done();
}

/** Server tuning derived from the memory PostgreSQL may use, following the usual rules of thumb. */
export interface PostgresTuning {
    sharedBuffersMb: number;
    effectiveCacheSizeMb: number;
    workMemMb: number;
    maintenanceWorkMemMb: number;
}

export function postgresTuning(memoryMb: number): PostgresTuning {
    return {
        sharedBuffersMb: Math.floor(memoryMb / 4),
        effectiveCacheSizeMb: Math.floor((memoryMb * 3) / 4),
        workMemMb: Math.max(4, Math.floor(memoryMb / 64)),
        maintenanceWorkMemMb: Math.min(2048, Math.max(64, Math.floor(memoryMb / 16))),
    };
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
    /**
     * Networks (CIDR) of other hosts that may connect; pg_hba and the firewall
     * allow only these, over TLS only (a certificate of a CA the library makes
     * for this server; clients verify it with verify-full). Default none.
     */
    allowedClients?: string[];
    /** Nightly pg_dump. Default enabled, 7 dumps kept in /var/backups/pulumi-matrix/postgres at 03:30. */
    backup?: { enabled?: boolean; directory?: string; retention?: number; schedule?: string };
}

/** The options that only mean something for a server the library installs. */
export const LOCAL_ONLY_POSTGRES_OPTIONS = ["database", "user", "port", "memoryMb", "listenAddresses", "allowedClients", "backup"] as const;

/** Fills in the defaults of a server the library installs and validates them. */
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

/** An existing PostgreSQL server as a user writes it (its password is a secret input of the component); `L` is a value known only later. */
export interface ExternalPostgresOptions<L = never> {
    /** Host name or address of the server. */
    host: string | L;
    /** Port. Default 5432. */
    port?: number;
    /** Database (must be UTF8 with LC_COLLATE and LC_CTYPE C). */
    database: string;
    /** Role Synapse logs in as. */
    user: string;
    /**
     * libpq sslmode. Default `verify-full`: TLS required, the server's
     * certificate checked against `caCertificate` (or the system's CAs) and
     * its host name against `host`. A weaker mode is used only when given
     * here, and the component warns about it.
     */
    sslMode?: PostgresExternalSettings["sslMode"];
    /**
     * PEM of the CA that signed the server's certificate (a managed
     * database's CA bundle), written on Synapse's hosts as libpq's
     * `sslrootcert`. Default: the system's CAs
     * (/etc/ssl/certs/ca-certificates.crt).
     */
    caCertificate?: string;
}

/**
 * An existing server's settings, checked now when its host is a plain
 * value and again once it is known. Options for a server the library
 * installs (`o`) would be silently ignored, so they are an error.
 */
export function resolveExternalPostgres<L>(
    component: string,
    o: PostgresOptions & { host?: unknown },
    e: ExternalPostgresOptions<L>,
): ExternalServer<PostgresExternalSettings> {
    checkExternalOptions(component, "PostgreSQL", o, LOCAL_ONLY_POSTGRES_OPTIONS);
    return externalServer(
        e.host,
        (host): PostgresExternalSettings => ({
            mode: "external",
            host,
            port: e.port ?? POSTGRES_DEFAULTS.port,
            database: e.database,
            user: e.user,
            sslMode: e.sslMode ?? "verify-full",
            ...(e.caCertificate !== undefined ? { caCertificate: e.caCertificate } : {}),
        }),
        (s) => validatePostgres(component, s, "external."),
    );
}

/** The port a local server listens on, on every address it was given. */
export function postgresPortClaims(s: PostgresLocalSettings): PortClaim[] {
    return s.listenAddresses.map((address) => ({ port: s.port, protocol: "tcp", address, owner: "postgresql", setting: "port" }));
}

/** The openings a local server needs: its port from the allowed client networks only. */
export function postgresFirewallRules(s: PostgresLocalSettings): FirewallRule[] {
    return s.allowedClients.length ? [{ port: s.port, protocol: "tcp", sources: s.allowedClients, owner: "postgresql" }] : [];
}
