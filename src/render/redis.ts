import { REDIS_EXPORTER_USER, REDIS_FILES, RedisLocalSettings } from "../model/redis";
import { UNIT_HEADER as HEADER } from "./systemd";

/**
 * Redis as Synapse's workers use it: pub/sub for replication (and a small
 * cache), password required, nothing persisted. The package's own
 * /etc/redis/redis.conf stays as Debian ships it (so package upgrades never
 * ask about it); a systemd drop-in points redis-server at this file instead.
 */

/** redis.conf of the library's Redis; the password is in `secretConfPath`, included last. */
export function renderRedisConf(s: RedisLocalSettings, secretConfPath: string): string {
    return `${HEADER}
# Redis for Synapse's workers: the replication stream between Synapse's processes (pub/sub).
bind ${s.bindAddresses.join(" ")}
protected-mode yes
port ${s.port}
tcp-backlog 511
timeout 0
tcp-keepalive 300
daemonize no
supervised systemd
pidfile /run/redis/redis-server.pid
loglevel notice
# Logs go to the journal.
logfile ""
databases 16
# Nothing is persisted: Synapse keeps no state in Redis that survives a restart.
save ""
appendonly no
dir /var/lib/redis
maxmemory ${s.maxMemoryMb}mb
maxmemory-policy allkeys-lru
# The default user and its password (and TLS, when other hosts connect), in a file only redis reads.
include ${secretConfPath}
`;
}

/** How the secret part is rendered for the Redis on the host. */
export interface RedisSecretConfOptions {
    /**
     * The Redis has pub/sub channel ACLs (6.2 and newer): the default user
     * is then given every channel (`&*`), which Redis 7 otherwise withholds
     * from a user it resets. Redis 6.0 knows no such rule. Default true.
     */
    channelAcls?: boolean;
    /** Speak TLS only, on this port, with the library's certificate (see `redisServesOtherHosts`). Default: cleartext. */
    tlsPort?: number;
    /** The password of the Redis exporter's own ACL user (`REDIS_EXPORTER_USER`), when monitoring watches this server. Default: no such user. */
    exporterPassword?: string;
}

/**
 * The secret part of the config: the default user, which every client is,
 * with the password it must give and without Redis's dangerous commands
 * (`-@dangerous`: FLUSHALL, FLUSHDB, CONFIG, DEBUG, KEYS, SHUTDOWN, MODULE,
 * MONITOR, ACL, REPLICAOF, ...). Synapse needs none of them: it uses AUTH,
 * PING, SUBSCRIBE, PUBLISH, GET and SET. With monitoring, a second user
 * for the Redis exporter, which may read Redis's statistics only. With TLS, the cleartext port is
 * off and the TLS port takes its place.
 */
export function renderRedisSecretConf(password: string, o: RedisSecretConfOptions = {}): string {
    // A value Redis reads as one word without quoting (the generated password is letters and digits).
    for (const p of [password, ...(o.exporterPassword !== undefined ? [o.exporterPassword] : [])])
        if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(p)) throw new Error("renderRedisSecretConf: a password must be 16 to 512 letters, digits or ._~+/=-");
    const channels = (o.channelAcls ?? true) ? " &*" : "";
    const lines = [`user default reset on >${password} ~*${channels} +@all -@dangerous`];
    // The exporter's user: no keys, no channels (reset), only the commands it reads its metrics with.
    if (o.exporterPassword !== undefined)
        lines.push(`user ${REDIS_EXPORTER_USER.name} reset on >${o.exporterPassword} -@all ${REDIS_EXPORTER_USER.commands.join(" ")}`);
    if (o.tlsPort !== undefined)
        lines.push(
            "port 0",
            `tls-port ${o.tlsPort}`,
            `tls-cert-file ${REDIS_FILES.tlsCert}`,
            `tls-key-file ${REDIS_FILES.tlsKey}`,
            `tls-ca-cert-file ${REDIS_FILES.tlsCa}`,
            // Clients authenticate with the password; Synapse presents no certificate of its own.
            "tls-auth-clients no",
            'tls-protocols "TLSv1.2 TLSv1.3"',
        );
    return `${lines.join("\n")}\n`;
}

/** A drop-in for Debian's redis-server.service: the same command, with the library's config file. */
export function renderRedisDropIn(confPath: string): string {
    return `${HEADER}
[Service]
ExecStart=
ExecStart=/usr/bin/redis-server ${confPath} --supervised systemd --daemonize no
`;
}
