import { REDIS_FILES, redisFirewallRules, RedisLocalSettings } from "../model/redis";
import { renderRedisConf, renderRedisDropIn, renderRedisSecretConf } from "../render/redis";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { indent, sh } from "./sh";
import { script } from "./shell";

/** Redis as handlers see it: healthy once it answers on loopback (without the password it answers NOAUTH, which is enough). */
export function redisUnit(s: RedisLocalSettings): ServiceUnit {
    return {
        name: "redis-server.service",
        health: { command: sh`redis-cli -h 127.0.0.1 -p ${s.port} ping 2>&1 | grep -qE '^(PONG|NOAUTH)'` },
        healthTimeout: 60,
    };
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

/** Writes the password file Redis includes (secret stdin) and (re)starts Redis with it. */
export function redisPasswordScript(s: RedisLocalSettings, password: string): string {
    const unit = redisUnit(s);
    return script("pulumi-matrix Redis password", [
        applyFileSet({
            name: "redis-secrets",
            // The password: the drift record keeps its hash only, never a copy.
            secret: true,
            files: [{ path: REDIS_FILES.secretConf, content: renderRedisSecretConf(password), mode: "0640", group: "redis" }],
            onChange: [{ kind: "owe-restart", unit }],
        }),
        ensureRunning([unit]),
        sh`echo ${`Redis ready on port ${s.port}`}`,
    ]);
}
