import { RedisLocalSettings } from "../model/redis";
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
# The password (requirepass), in a file only redis reads.
include ${secretConfPath}
`;
}

/** The secret part of the config: the password every client must give. */
export function renderRedisSecretConf(password: string): string {
    // A value Redis reads as one word without quoting (the generated password is letters and digits).
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(password)) throw new Error("renderRedisSecretConf: the password must be 16 to 512 letters, digits or ._~+/=-");
    return `requirepass ${password}\n`;
}

/** A drop-in for Debian's redis-server.service: the same command, with the library's config file. */
export function renderRedisDropIn(confPath: string): string {
    return `${HEADER}
[Service]
ExecStart=
ExecStart=/usr/bin/redis-server ${confPath} --supervised systemd --daemonize no
`;
}
