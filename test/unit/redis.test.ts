import * as assert from "node:assert/strict";

import { Host } from "../../components/Host";
import { RedisServer } from "../../components/RedisServer";
import { resolveRedisSettings } from "../../src/model/redis";
import { redisInstallScript, redisPasswordScript } from "../../src/provision/redis";
import { renderRedisConf, renderRedisDropIn, renderRedisSecretConf } from "../../src/render/redis";
import { golden } from "../support/golden";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { runWithMocks, valueOf } from "../support/unit/mocks";

const TLS = { certificate: "<server certificate>", privateKey: "<server key>", caCertificate: "<CA certificate>" };

describe("redis: golden files (update with `npm run golden:update`, review the diff)", () => {
    const redis = () => resolveRedisSettings("golden", { bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.6/32"] });
    const local = () => resolveRedisSettings("golden", {});
    golden("redis", "pulumi-matrix.conf", () => renderRedisConf(redis(), "/etc/redis/pulumi-matrix-secrets.conf"));
    golden("redis", "redis-server.service.d/pulumi-matrix.conf", () => renderRedisDropIn("/etc/redis/pulumi-matrix.conf"));
    golden("redis", "scripts/redis-server.sh", () => redisInstallScript(redis(), 'RedisServer "golden"'));
    golden("redis", "scripts/redis-password.sh", () => redisPasswordScript(redis(), "redis-password-placeholder", TLS));
    golden("redis", "scripts/redis-password-local.sh", () => redisPasswordScript(local(), "redis-password-placeholder"));
    golden("redis", "scripts/redis-password-monitoring.sh", () =>
        redisPasswordScript(local(), "redis-password-placeholder", undefined, "exporter-password-placeholder"),
    );
});

describe("redis: the default user and TLS (issue 19)", () => {
    it("the default user has the password and loses the dangerous commands; channels only where Redis knows them", () => {
        assert.equal(renderRedisSecretConf("p".repeat(20)), `user default reset on >${"p".repeat(20)} ~* &* +@all -@dangerous\n`);
        assert.equal(renderRedisSecretConf("p".repeat(20), { channelAcls: false }), `user default reset on >${"p".repeat(20)} ~* +@all -@dangerous\n`);
        assert.doesNotMatch(renderRedisSecretConf("p".repeat(20)), /requirepass/);
        // The exporter's user, only when asked: no keys, no channels, statistics only.
        assert.doesNotMatch(renderRedisSecretConf("p".repeat(20)), /user prometheus/);
        assert.equal(
            renderRedisSecretConf("p".repeat(20), { exporterPassword: "e".repeat(20) }),
            `user default reset on >${"p".repeat(20)} ~* &* +@all -@dangerous\nuser prometheus reset on >${"e".repeat(20)} -@all +info +config|get +latency|latest +slowlog|len\n`,
        );
        assert.throws(() => renderRedisSecretConf("p".repeat(20), { exporterPassword: "short" }), /a password must be 16 to 512/);
    });

    it("serving other hosts: TLS only on the port (the cleartext port off), with the key in the secret step", () => {
        const conf = renderRedisSecretConf("p".repeat(20), { tlsPort: 6379 });
        assert.match(conf, /^port 0$/m);
        assert.match(conf, /^tls-port 6379$/m);
        assert.match(conf, /^tls-key-file \/etc\/pulumi-matrix\/redis-tls\/server\.key$/m);
        const s = resolveRedisSettings("r", { bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.6/32"] });
        assert.throws(() => redisPasswordScript(s, "p".repeat(20)), /TLS files are needed exactly when other hosts connect/);
        assert.match(redisPasswordScript(s, "p".repeat(20), TLS), /pm_write redis-secrets \/etc\/pulumi-matrix\/redis-tls\/server\.key 0640 root redis secret/);
    });

    it("a RedisServer serving other hosts gives its clients TLS and its CA; one for its own host does not", async () => {
        const { mocks, result } = await runWithMocks(
            () => {
                const host = new Host("h", { host: "203.0.113.1", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
                return new RedisServer("r", { host, bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.0/24"], reachableAt: "10.0.0.4" });
            },
            (r) => [r.connection],
        );
        const connection = await valueOf(result.connection);
        assert.equal(connection.tls, true);
        assert.match(connection.caCertificate ?? "", /BEGIN CERTIFICATE/);
        assert.deepEqual(mocks.byName("r-tls-request").inputs.ipAddresses, ["127.0.0.1", "::1", "10.0.0.4"]);
        const secrets = mocks.byName("r-secrets");
        assert.ok(secrets.secretInputs.includes("stdin"));
        assert.match(String(secrets.inputs.stdin), /tls-port 6379/);

        const plain = await runWithMocks(
            () => new RedisServer("r", { host: new Host("h", { host: "203.0.113.1", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY }) }),
            (r) => [r.connection],
        );
        assert.equal((await valueOf(plain.result.connection)).tls, false);
        assert.equal(plain.mocks.resources.filter((r) => r.type.startsWith("tls:")).length, 0);
    });
});
