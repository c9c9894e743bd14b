import { REDIS_FILES, redisFirewallRules, RedisLocalSettings, redisServesOtherHosts } from "../model/redis";
import { renderRedisConf, renderRedisDropIn, renderRedisSecretConf } from "../render/redis";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { heredocVar, indent, sh } from "./sh";
import { script } from "./shell";

/**
 * Redis as handlers see it: healthy once it answers on loopback (without the
 * password it answers NOAUTH, which is enough); over TLS, verified against
 * the library's CA, once the password step has put TLS in place (the CA file
 * and the TLS settings are written together).
 */
export function redisUnit(s: RedisLocalSettings): ServiceUnit {
    return {
        name: "redis-server.service",
        health: {
            command: sh`{ if [ -e ${REDIS_FILES.tlsCa} ]; then redis-cli --tls --cacert ${REDIS_FILES.tlsCa} -h 127.0.0.1 -p ${s.port} ping; else redis-cli -h 127.0.0.1 -p ${s.port} ping; fi; } 2>&1 | grep -qE '^(PONG|NOAUTH)'`,
        },
        healthTimeout: 60,
    };
}

/** The server's certificate and key (secret) and its CA's certificate, all PEM (see components/privateCa.ts). */
export interface RedisTls {
    certificate: string;
    privateKey: string;
    caCertificate: string;
}

/**
 * Installs Debian's redis-server, writes the library's config (a systemd
 * drop-in points the package's unit at it; the package's own redis.conf is
 * left as shipped), opens its firewall fragment, and restarts Redis when
 * the config changed. Redis is started once the password step has written
 * the password file the config includes.
 */
export function redisInstallScript(s: RedisLocalSettings, component: string): string {
    const unit = redisUnit(s);
    return script("pulumi-matrix Redis server", [
        sh`pm_apt_install redis-server`,
        applyFileSet({
            name: "redis-server",
            files: [
                { path: REDIS_FILES.conf, content: renderRedisConf(s, REDIS_FILES.secretConf), mode: "0640", group: "redis" },
                { path: REDIS_FILES.dropIn, content: renderRedisDropIn(REDIS_FILES.conf) },
            ],
            onChange: [{ kind: "daemon-reload" }, { kind: "owe-restart", unit }],
        }),
        applyFileSet(firewallFragmentSet(component, redisFirewallRules(s))),
        sh`if [ -e ${REDIS_FILES.secretConf} ]; then`,
        indent(ensureRunning([unit])),
        sh`else`,
        sh`    echo "Redis starts with its password (next step)"`,
        sh`fi`,
    ]);
}

/**
 * Writes the file Redis includes last (secret stdin): the default user with
 * its password and without dangerous commands, and, when other hosts
 * connect (`tls`), the TLS settings with the server's key and certificate
 * beside them, and with `exporterPassword` the Redis exporter's user
 * (taken away again by a run without it); then (re)starts Redis with it. The ACL line suits the Redis
 * on the host (6.0 has no channel rules).
 */
export function redisPasswordScript(s: RedisLocalSettings, password: string, tls?: RedisTls, exporterPassword?: string): string {
    const unit = redisUnit(s);
    if (redisServesOtherHosts(s) !== (tls !== undefined)) throw new Error("redisPasswordScript: TLS files are needed exactly when other hosts connect");
    const tlsPort = { ...(tls ? { tlsPort: s.port } : {}), ...(exporterPassword !== undefined ? { exporterPassword } : {}) };
    const pem = (v: string) => (v.endsWith("\n") ? v : `${v}\n`);
    return script("pulumi-matrix Redis password", [
        tls ? sh`install -d -m 0755 -o root -g root ${REDIS_FILES.tlsDir}` : sh`: no TLS: only this host connects`,
        heredocVar("pm_redis_conf", renderRedisSecretConf(password, { ...tlsPort }).trimEnd()),
        heredocVar("pm_redis_conf_60", renderRedisSecretConf(password, { ...tlsPort, channelAcls: false }).trimEnd()),
        applyFileSet({
            name: "redis-secrets",
            // The password: the drift record keeps its hash only, never a copy.
            secret: true,
            files: [
                {
                    path: REDIS_FILES.secretConf,
                    generate: sh`if redis-server --version | grep -q ' v=6\.[01]\.'; then printf '%s\n' "$pm_redis_conf_60"; else printf '%s\n' "$pm_redis_conf"; fi`,
                    mode: "0640",
                    group: "redis",
                },
                ...(tls
                    ? [
                          // Public, but a secret step's files are all recorded by hash only (the house rule).
                          { path: REDIS_FILES.tlsCa, content: pem(tls.caCertificate), mode: "0644" },
                          { path: REDIS_FILES.tlsCert, content: pem(tls.certificate), mode: "0644" },
                          { path: REDIS_FILES.tlsKey, content: pem(tls.privateKey), mode: "0640", group: "redis" },
                      ]
                    : []),
            ],
            onChange: [{ kind: "owe-restart", unit }],
        }),
        ensureRunning([unit]),
        sh`echo ${`Redis ready on port ${s.port}`}`,
    ]);
}
