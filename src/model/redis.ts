import { ConfigError, Described } from "./errors";
import { checkExternalOptions, ExternalServer, externalServer } from "./external";
import { FirewallRule, PortClaim } from "./host";
import { Checker, isCidr, isHostAddress, isIpAddress, isWildcardAddress } from "./validate";

export const REDIS_FILES = {
    conf: "/etc/redis/pulumi-matrix.conf",
    secretConf: "/etc/redis/pulumi-matrix-secrets.conf",
    dropIn: "/etc/systemd/system/redis-server.service.d/pulumi-matrix.conf",
    /** The TLS files, in a root-owned directory (Debian's /etc/redis is writable by the redis group). */
    tlsDir: "/etc/pulumi-matrix/redis-tls",
    tlsCert: "/etc/pulumi-matrix/redis-tls/server.crt",
    tlsKey: "/etc/pulumi-matrix/redis-tls/server.key",
    tlsCa: "/etc/pulumi-matrix/redis-tls/ca.crt",
};

/**
 * The ACL user Prometheus's Redis exporter logs in as (with monitoring on
 * Redis's host), and the least it may run: Debian bookworm's
 * prometheus-redis-exporter 1.45 sends INFO, CONFIG GET (maxmemory,
 * maxclients), LATENCY LATEST and SLOWLOG LEN on every scrape. No key, no
 * channel, nothing that writes. SLOWLOG GET is left out on purpose: a slow
 * command's arguments (keys and values) are in it, so the exporter's
 * `redis_slowlog_last_id` and `redis_last_slow_execution_duration_seconds`
 * are missing (Redis's ACL LOG shows that one denial); the exporter is run
 * with `-set-client-name=false`, so CLIENT SETNAME is not needed either.
 */
export const REDIS_EXPORTER_USER = { name: "prometheus", commands: ["+info", "+config|get", "+latency|latest", "+slowlog|len"] } as const;

/**
 * Whether a local server serves other hosts: then it speaks TLS only, on
 * its port, with a certificate of the library's CA (Redis binds every
 * listener to every bind address, so a cleartext port could not be kept to
 * loopback alone).
 */
export function redisServesOtherHosts(s: RedisLocalSettings): boolean {
    return s.allowedClients.length > 0;
}

/**
 * Redis for Synapse's workers: the replication stream between Synapse's
 * processes runs over its pub/sub. Installed on a Host (Debian's
 * redis-server, password required, nothing persisted), or an existing server.
 */

/** The Redis settings a user writes for a server the library installs. */
export interface RedisOptions {
    /** TCP port. Default 6379. */
    port?: number;
    /**
     * Addresses Redis listens on. Default `["127.0.0.1"]`; loopback is always
     * kept. Add the host's private address when Synapse processes on other
     * hosts use it.
     */
    bindAddresses?: string[];
    /**
     * Networks (CIDR) of other hosts that may connect; the firewall opens the
     * port to these only. With any, Redis speaks TLS only (a certificate of a
     * CA the library makes for this server) and every client uses it.
     * Default none.
     */
    allowedClients?: string[];
    /** Memory (MiB) Redis may use before it evicts keys (least recently used first). Default 256. */
    maxMemoryMb?: number;
}

/** Redis as installed on a host by the library, every default filled in. */
export interface RedisLocalSettings {
    mode: "local";
    /** TCP port (default 6379). */
    port: number;
    /** Always starts with 127.0.0.1 (the health check and local Synapse processes use it). */
    bindAddresses: string[];
    /** Networks (CIDR) the firewall opens the port to (default none). */
    allowedClients: string[];
    /** Memory (MiB) before keys are evicted (default 256). */
    maxMemoryMb: number;
}

/** An existing Redis; nothing is installed. */
export interface RedisExternalSettings {
    mode: "external";
    /** Host name or address of the server. */
    host: string;
    /** Its port (default 6379). */
    port: number;
    /** Connect with TLS (Synapse's `redis.use_tls`). */
    tls: boolean;
    /** The ACL user Synapse logs in as (Redis 6 and newer); absent: the default user. */
    user?: string;
}

export type RedisSettings = RedisLocalSettings | RedisExternalSettings;

/** How Synapse reaches Redis: everything but the password. */
export interface RedisConnection {
    /** The address Synapse's processes dial. */
    host: string;
    /** Its port. */
    port: number;
    /** Connect with TLS. */
    tls: boolean;
    /** ACL user, when not the default user. */
    user?: string;
    /** PEM of the CA that signed the server's certificate, when it is not one the host trusts (TLS only). */
    caCertificate?: string;
}

export const REDIS_DEFAULTS = { port: 6379, bindAddresses: ["127.0.0.1"], maxMemoryMb: 256 } as const;

/** Validates settings; `prefix` names where they sit in the user's arguments (`external.` for an existing server). */
export function validateRedis(component: string, s: RedisSettings, prefix = ""): void {
    const c = new Checker(component);
    c.port(`${prefix}port`, s.port);
    if (s.mode === "local") {
        for (const a of s.bindAddresses) c.check(`${prefix}bindAddresses`, a, isIpAddress(a), "expected IP addresses such as 127.0.0.1 or 10.0.0.5");
        c.check(
            `${prefix}bindAddresses`,
            s.bindAddresses,
            !s.bindAddresses.some(isWildcardAddress),
            "expected specific addresses: Redis must not listen on every address (use loopback and a private address)",
        );
        for (const a of s.allowedClients) c.check(`${prefix}allowedClients`, a, isCidr(a), "expected CIDR networks such as 10.0.0.0/24");
        c.check(
            `${prefix}allowedClients`,
            s.allowedClients,
            s.allowedClients.length === 0 || s.bindAddresses.some((a) => a !== "127.0.0.1" && a !== "::1"),
            "clients on other hosts need Redis to listen on a private address: add it to bindAddresses",
        );
        c.check(
            `${prefix}maxMemoryMb`,
            s.maxMemoryMb,
            Number.isInteger(s.maxMemoryMb) && s.maxMemoryMb >= 16 && s.maxMemoryMb <= 1024 * 1024,
            "expected a whole number of MiB from 16 to 1048576",
        );
    } else {
        c.check(`${prefix}host`, s.host, typeof s.host === "string" && isHostAddress(s.host), "expected an IP address or DNS host name of the Redis server");
        if (s.user !== undefined)
            c.check(`${prefix}user`, s.user, /^[A-Za-z0-9_.@-]{1,64}$/.test(s.user), "expected a Redis ACL user name such as synapse (letters, digits, _.@-)");
    }
    c.done();
}

/** Fills in the defaults of a server the library installs and validates them. */
export function resolveRedisSettings(component: string, o: RedisOptions): RedisLocalSettings {
    const bind = o.bindAddresses ?? [...REDIS_DEFAULTS.bindAddresses];
    const s: RedisLocalSettings = {
        mode: "local",
        port: o.port ?? REDIS_DEFAULTS.port,
        bindAddresses: bind.includes("127.0.0.1") ? bind : ["127.0.0.1", ...bind],
        allowedClients: o.allowedClients ?? [],
        maxMemoryMb: o.maxMemoryMb ?? REDIS_DEFAULTS.maxMemoryMb,
    };
    validateRedis(component, s);
    return s;
}

/** The options that only mean something for a server the library installs. */
export const LOCAL_ONLY_REDIS_OPTIONS = ["port", "bindAddresses", "allowedClients", "maxMemoryMb"] as const;

/** An existing Redis as a user writes it (its password is a secret input of the component); `L` is a value known only later. */
export interface ExternalRedisOptions<L = never> {
    /** Host name or address of the server. */
    host: string | L;
    /** Port. Default 6379. */
    port?: number;
    /** Connect with TLS. Default false. */
    tls?: boolean;
    /** PEM of the CA that signed the server's certificate, when the hosts do not trust it already (TLS only). Default: the system's CAs. */
    caCertificate?: string;
    /** The ACL user to log in as (Redis 6 and newer). Default: the default user. */
    user?: string;
}

/**
 * An existing server's settings, checked now when its host is a plain
 * value and again once it is known. Options for a server the library
 * installs (`o`) would be silently ignored, so they are an error.
 */
export function resolveExternalRedis<L>(
    component: string,
    o: RedisOptions & { host?: unknown },
    e: ExternalRedisOptions<L>,
): ExternalServer<RedisExternalSettings> {
    checkExternalOptions(component, "Redis", o, LOCAL_ONLY_REDIS_OPTIONS);
    return externalServer(
        e.host,
        (host): RedisExternalSettings => ({
            mode: "external",
            host,
            port: e.port ?? REDIS_DEFAULTS.port,
            tls: e.tls ?? false,
            ...(e.user !== undefined ? { user: e.user } : {}),
        }),
        (s) => {
            validateRedis(component, s, "external.");
            if (e.caCertificate !== undefined && !s.tls)
                throw new ConfigError(
                    component,
                    "external.caCertificate",
                    new Described("set"),
                    "it is only used with TLS: set external.tls true, or remove it",
                );
            if (e.caCertificate !== undefined && !/-----BEGIN CERTIFICATE-----/.test(e.caCertificate))
                throw new ConfigError(component, "external.caCertificate", e.caCertificate, "expected a PEM certificate (-----BEGIN CERTIFICATE-----)");
        },
    );
}

/** The options given with a value other than their default (an unset or default option says nothing). */
export function redisOptionsSet(o: RedisOptions): string[] {
    const d: Record<string, unknown> = { ...REDIS_DEFAULTS, allowedClients: [] };
    return LOCAL_ONLY_REDIS_OPTIONS.filter((k) => o[k] !== undefined && JSON.stringify(o[k]) !== JSON.stringify(d[k]));
}

/** The port a local server listens on, on every address it was given. */
export function redisPortClaims(s: RedisLocalSettings): PortClaim[] {
    return s.bindAddresses.map((address) => ({ port: s.port, protocol: "tcp", address, owner: "redis", setting: "port" }));
}

/** The openings a local server needs: its port from the allowed client networks only. */
export function redisFirewallRules(s: RedisLocalSettings): FirewallRule[] {
    return s.allowedClients.length ? [{ port: s.port, protocol: "tcp", sources: s.allowedClients, owner: "redis" }] : [];
}

/** Whether an address only reaches the host it is dialled from. */
export function isLoopback(address: string): boolean {
    return /^127\./.test(address) || address === "::1" || address === "localhost";
}
