import { resolveRedisSettings } from "../../src/model/redis";
import { redisInstallScript, redisPasswordScript } from "../../src/provision/redis";
import { renderRedisConf, renderRedisDropIn } from "../../src/render/redis";
import { golden } from "../support/golden";

describe("redis: golden files (update with `npm run golden:update`, review the diff)", () => {
    const redis = () => resolveRedisSettings("golden", { bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.6/32"] });
    golden("redis", "pulumi-matrix.conf", () => renderRedisConf(redis(), "/etc/redis/pulumi-matrix-secrets.conf"));
    golden("redis", "redis-server.service.d/pulumi-matrix.conf", () => renderRedisDropIn("/etc/redis/pulumi-matrix.conf"));
    golden("redis", "scripts/redis-server.sh", () => redisInstallScript(redis(), 'RedisServer "golden"'));
    golden("redis", "scripts/redis-password.sh", () => redisPasswordScript(redis(), "redis-password-placeholder"));
});
