// Redis as the library renders it (config and password file), started in a
// temp dir for tests that run Synapse's workers: on loopback (this machine's,
// or a network namespace's), not supervised by systemd.

import * as fs from "node:fs";

import { RedisLocalSettings, resolveRedisSettings } from "../../../src/model/redis";
import { renderRedisConf, renderRedisSecretConf } from "../../../src/render/redis";
import { freePort } from "./net";
import { registerCleanup, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

/** A running Redis and the settings it was rendered from. */
export interface TestRedis {
    settings: RedisLocalSettings;
    /** The current process (a new one after `restart`). */
    daemon: SpawnedDaemon;
    /** Stops it (SIGTERM, as systemd does) and starts it again with the same files; resolves once it accepts connections. */
    restart(): Promise<void>;
}

export interface RedisStartOptions {
    /** The settings to render (default: the library's defaults on a free port). */
    settings?: RedisLocalSettings;
    /** Run in this network namespace (its loopback). */
    netns?: string;
    /** The Redis exporter's ACL user gets this password (default: no exporter user). */
    exporterPassword?: string;
}

/** Starts redis-server with the rendered config and `password` (and the exporter's user with `opts.exporterPassword`) under `dir`/redis; waits until it accepts connections. */
export async function startRedis(dir: string, password: string, opts: RedisStartOptions = {}): Promise<TestRedis> {
    const settings = opts.settings ?? resolveRedisSettings("test", { port: await freePort() });
    const d = `${dir}/redis`;
    fs.mkdirSync(d);
    fs.writeFileSync(
        `${d}/secrets.conf`,
        renderRedisSecretConf(password, opts.exporterPassword !== undefined ? { exporterPassword: opts.exporterPassword } : {}),
        { mode: 0o600 },
    );
    fs.writeFileSync(`${d}/redis.conf`, renderRedisConf(settings, `${d}/secrets.conf`));
    const launch = async (): Promise<SpawnedDaemon> => {
        const daemon = spawnDaemon("redis-server", [`${d}/redis.conf`, "--dir", d, "--pidfile", `${d}/redis.pid`, "--supervised", "no"], {
            name: "redis",
            exitSignal: "SIGKILL",
            netns: opts.netns,
        });
        // Its own word that it serves (a port probe would ask this machine's loopback, not the namespace's).
        for (let i = 0; i < 100 && !/Ready to accept connections/.test(daemon.log()); i++) {
            if (daemon.hasExited()) throw new Error(`redis-server exited:\n${daemon.tail(20)}`);
            await sleep(100);
        }
        return daemon;
    };
    const redis: TestRedis = {
        settings,
        daemon: await launch(),
        async restart() {
            await redis.daemon.stop("SIGTERM", 5000);
            redis.daemon = await launch();
        },
    };
    registerCleanup({ name: "redis", run: () => redis.daemon.stop("SIGTERM", 5000) });
    return redis;
}
