// Runs real Synapse processes (main homeserver and generic workers) from a
// venv made by synapse-venv.ts, in the foreground (no daemonize), with their
// output captured, and waits until they are healthy.

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { waitForHttp } from "./net";
import { cleanupStarted, lastLines, makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

export interface SynapseOptions {
    /** Virtualenv directory (ensureSynapseVenv). */
    venv: string;
    /** Each passed as `--config-path` (files or directories, in this order). */
    configPaths: string[];
    /** e.g. http://127.0.0.1:8008/health; must answer 200 "OK" when the process is ready. */
    healthUrl: string;
    cwd?: string;
    /** OS user to run as (default: the current user, root). The venv and configs must be readable by it. */
    runAsUser?: string;
    /** Bound on the wait for health (default 120 s). */
    timeoutMs?: number;
    /** Extra environment variables. */
    env?: Record<string, string>;
    /** Label in logs and error messages. */
    name?: string;
    /** Run in this network namespace (`healthUrl` is then asked from inside it). */
    netns?: string;
    /**
     * Supervise as the rendered unit's `Restart=on-failure` and `RestartSec=3`
     * do: a process that exits without `stop`/`restart` asking is started again
     * 3 s later. Default off.
     */
    supervise?: boolean;
}

export interface SynapseProcess {
    readonly name: string;
    /** PID of the current process. */
    readonly pid: number;
    /** File that receives stdout+stderr of every run (appended across restarts). */
    readonly logFile: string;
    /** stdout+stderr of every run so far. */
    log(): string;
    /** SIGTERM, wait, SIGKILL after 20 s. Idempotent. */
    stop(): Promise<void>;
    /** stop(), then start again with the same options and wait for health. */
    restart(): Promise<void>;
    /** True while the current process runs. */
    running(): boolean;
    /** How many times supervision started the process again after it died. */
    readonly supervisedRestarts: number;
}

const TAIL_LINES = 60;

async function startApp(module: string, opts: SynapseOptions, defaultName: string): Promise<SynapseProcess> {
    const python = path.join(opts.venv, "bin", "python");
    if (!fs.existsSync(python)) throw new Error(`${python} not found: is ${opts.venv} a Synapse venv?`);
    if (opts.configPaths.length === 0) throw new Error("startSynapse: configPaths is empty");
    const name = opts.name ?? defaultName;
    const user = opts.runAsUser && opts.runAsUser !== "root" ? opts.runAsUser : undefined;
    if (user) {
        // Fail early and clearly when the user cannot reach the venv (e.g. under /root).
        const problem = await run(python, ["-c", "import synapse"], { user, allowFailure: true, cwd: "/" }).then(
            (r) => (r.code === 0 ? undefined : r.stderr.trim().split("\n").pop()),
            (e: Error) => e.message,
        );
        if (problem !== undefined) {
            throw new Error(
                `${name}: user ${user} cannot run ${python} (${problem}); ` +
                    `build the venv in a directory it can read: ensureSynapseVenv(version, { cacheDir })`,
            );
        }
    }
    const logDir = makeTempDir(`${name.replace(/[^A-Za-z0-9_.-]/g, "_")}-log`);
    const logFile = path.join(logDir, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.log`);
    const args = ["-m", module];
    for (const p of opts.configPaths) args.push("--config-path", p);
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1", ...opts.env };
    delete env.PYTHONPATH;
    delete env.VIRTUAL_ENV;

    let earlier = ""; // output of previous runs (restart)
    let daemon: SpawnedDaemon;
    let stopping = false;
    let supervisedRestarts = 0;

    const healthy = (d: SpawnedDaemon, timeoutMs: number): Promise<void> =>
        opts.netns
            ? waitForHealthInNetns(opts.netns, opts.healthUrl, timeoutMs, d, name)
            : waitForHttp(opts.healthUrl, {
                  timeoutMs,
                  accept: (status, body) => status === 200 && body.trim() === "OK",
                  abort: () => (d.hasExited() ? `${name} exited` : undefined),
              });

    const launch = async (): Promise<void> => {
        daemon = spawnDaemon(python, args, { name, cwd: opts.cwd, env, user, logFile, netns: opts.netns });
        const d = daemon;
        if (opts.supervise)
            void d.exited.then(async (code) => {
                if (stopping || d !== daemon || cleanupStarted()) return;
                // Restart=on-failure, RestartSec=3 (src/render/synapse/units.ts).
                earlier += d.log() + `\n----- ${name} exited (${code}); supervisor restarts it in 3 s -----\n`;
                await new Promise((r) => setTimeout(r, 3000));
                if (stopping || cleanupStarted()) return;
                supervisedRestarts++;
                await launch().catch((err: Error) => process.stderr.write(`[supervisor] ${name}: ${err.message}\n`));
            });
        const timeoutMs = opts.timeoutMs ?? 120_000;
        try {
            await healthy(d, timeoutMs);
        } catch (err) {
            const exitedEarly = d.hasExited();
            if (!exitedEarly) await d.stop("SIGTERM", 5_000);
            const code = await d.exited;
            throw new Error(
                `${name} ${exitedEarly ? `exited (${code}) before becoming healthy` : `not healthy within ${timeoutMs} ms`}` +
                    ` (${String((err as Error).message)})\n--- last ${TAIL_LINES} log lines ---\n${d.tail(TAIL_LINES)}`,
            );
        }
    };

    await launch();

    return {
        name,
        get pid() {
            return daemon.pid;
        },
        logFile,
        log: () => earlier + daemon.log(),
        running: () => !daemon.hasExited(),
        get supervisedRestarts() {
            return supervisedRestarts;
        },
        stop: () => {
            stopping = true;
            return daemon.stop("SIGTERM", 20_000);
        },
        async restart() {
            stopping = true;
            await daemon.stop("SIGTERM", 20_000);
            earlier += daemon.log() + `\n----- ${name} restarted -----\n`;
            stopping = false;
            await launch();
        },
    };
}

/** Polls `url` with curl inside network namespace `netns` until it answers 200 "OK". */
async function waitForHealthInNetns(netns: string, url: string, timeoutMs: number, d: SpawnedDaemon, name: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
        if (d.hasExited()) throw new Error(`waiting for ${url}: ${name} exited`);
        const r = await run("ip", ["netns", "exec", netns, "curl", "-sS", "--max-time", "5", url], { allowFailure: true });
        if (r.code === 0 && r.stdout.trim() === "OK") return;
        last = (r.stdout + r.stderr).trim().slice(0, 200);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${url} in ${netns} (last: ${last})`);
        await sleep(500);
    }
}

/** `python -m synapse.app.homeserver --config-path ...` (the main process). */
export function startSynapse(opts: SynapseOptions): Promise<SynapseProcess> {
    return startApp("synapse.app.homeserver", opts, "synapse");
}

/** `python -m synapse.app.generic_worker --config-path ...` (a worker; healthUrl on one of its listeners). */
export function startWorker(opts: SynapseOptions): Promise<SynapseProcess> {
    return startApp("synapse.app.generic_worker", opts, "synapse-worker");
}

export interface RegisteredUser {
    user_id: string;
    access_token: string;
    device_id?: string;
    home_server?: string;
}

/**
 * Registers a user through Synapse's shared-secret admin API, by hand:
 * GET /_synapse/admin/v1/register for a nonce, then POST with
 * mac = hex HMAC-SHA1(secret, nonce NUL user NUL password NUL admin|notadmin).
 */
export async function registerWithSharedSecret(baseUrl: string, sharedSecret: string, user: string, password: string, admin: boolean): Promise<RegisteredUser> {
    const url = `${baseUrl.replace(/\/+$/, "")}/_synapse/admin/v1/register`;
    const nonceRes = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    const nonceBody = await nonceRes.text();
    if (nonceRes.status !== 200) throw new Error(`GET ${url}: HTTP ${nonceRes.status} ${nonceBody}`);
    const { nonce } = JSON.parse(nonceBody) as { nonce: string };
    const mac = crypto
        .createHmac("sha1", sharedSecret)
        .update(nonce)
        .update("\x00")
        .update(user)
        .update("\x00")
        .update(password)
        .update("\x00")
        .update(admin ? "admin" : "notadmin")
        .digest("hex");
    const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ nonce, username: user, password, admin, mac }),
        signal: AbortSignal.timeout(30_000),
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`POST ${url}: HTTP ${res.status} ${body}`);
    return JSON.parse(body) as RegisteredUser;
}

/** Last lines of a log string (for assertion messages). */
export function tailLog(log: string, n = TAIL_LINES): string {
    return lastLines(log, n);
}
