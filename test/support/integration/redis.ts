// Redis as the library renders it (config and password file), started in a
// temp dir for tests that run Synapse's workers: on loopback, a free port,
// not supervised by systemd.

import * as fs from "node:fs";

import { RedisLocalSettings, resolveRedisSettings } from "../../../src/model/redis";
import { renderRedisConf, renderRedisSecretConf } from "../../../src/render/redis";
import { freePort, isListening } from "./net";
import { registerCleanup, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

/** A running Redis and the settings it was rendered from. */
export interface TestRedis {
    settings: RedisLocalSettings;
    daemon: SpawnedDaemon;
}

/** Starts redis-server with the rendered config and `password` (and the Redis exporter's user with `exporterPassword`) under `dir`/redis; waits until it listens. */
export async function startRedis(dir: string, password: string, exporterPassword?: string): Promise<TestRedis> {
    const settings = resolveRedisSettings("test", { port: await freePort() });
    const d = `${dir}/redis`;
    fs.mkdirSync(d);
    fs.writeFileSync(`${d}/secrets.conf`, renderRedisSecretConf(password, exporterPassword !== undefined ? { exporterPassword } : {}), { mode: 0o600 });
    fs.writeFileSync(`${d}/redis.conf`, renderRedisConf(settings, `${d}/secrets.conf`));
    const daemon = spawnDaemon("redis-server", [`${d}/redis.conf`, "--dir", d, "--pidfile", `${d}/redis.pid`, "--supervised", "no"], {
        name: "redis",
        exitSignal: "SIGKILL",
    });
    registerCleanup({ name: "redis", run: () => daemon.stop("SIGTERM", 5000) });
    for (let i = 0; i < 50 && !(await isListening(settings.port)); i++) await sleep(100);
    return { settings, daemon };
}
