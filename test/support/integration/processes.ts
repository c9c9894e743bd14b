// Registry of everything the integration helpers start: child processes,
// temp dirs, clients. Every entry is undone by `cleanupAll()` (mocha's root
// `afterAll`, see hooks.ts), and, as a last resort, synchronously on process
// exit and on SIGINT/SIGTERM/SIGHUP, so a failed or interrupted run leaves no
// daemon and no temp dir behind.
//
// Set PULUMI_MATRIX_KEEP_TMP=1 to keep temp dirs (logs, data) for debugging.

import { type ChildProcess, spawn, type SpawnOptions, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { WRITTEN_DIR } from "../../../src/render/drift";

export interface Cleanup {
    /** For messages only. */
    readonly name: string;
    /** Graceful undo, awaited by cleanupAll(). */
    readonly run: () => Promise<void> | void;
    /** Best-effort synchronous undo for process exit (no awaiting possible there). */
    readonly runSync?: () => void;
}

const entries: Cleanup[] = [];

/** Registers an undo action; returns a function that unregisters it (after a normal stop). */
export function registerCleanup(entry: Cleanup): () => void {
    entries.push(entry);
    return () => {
        const i = entries.indexOf(entry);
        if (i >= 0) entries.splice(i, 1);
    };
}

/** Names of what is still registered (tests can assert nothing leaked). */
export function pendingCleanups(): string[] {
    return entries.map((e) => e.name);
}

let cleaning: Promise<void> | undefined;
let shuttingDown = false;

/** Whether the final cleanup has begun (after which nothing may be started again, e.g. by a supervisor). */
export function cleanupStarted(): boolean {
    return shuttingDown;
}

/** Runs every registered undo action, newest first; never throws, reports failures on stderr. */
export function cleanupAll(): Promise<void> {
    if (cleaning) return cleaning;
    shuttingDown = true;
    cleaning = (async () => {
        while (entries.length > 0) {
            const e = entries.pop()!;
            try {
                await e.run();
            } catch (err) {
                process.stderr.write(`[cleanup] ${e.name}: ${String(err)}\n`);
                try {
                    e.runSync?.();
                } catch {
                    /* best effort */
                }
            }
        }
    })().finally(() => {
        cleaning = undefined;
    });
    return cleaning;
}

/** Synchronous last-resort cleanup (process 'exit'). */
export function cleanupAllSync(): void {
    shuttingDown = true;
    while (entries.length > 0) {
        const e = entries.pop()!;
        try {
            e.runSync?.();
        } catch (err) {
            process.stderr.write(`[cleanup] ${e.name}: ${String(err)}\n`);
        }
    }
}

let installed = false;
function installExitHandlers(): void {
    if (installed) return;
    installed = true;
    process.on("exit", () => cleanupAllSync());
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.once(sig, () => {
            process.stderr.write(`\n[cleanup] ${sig}: stopping ${entries.length} test resource(s)\n`);
            const code = 128 + (os.constants.signals[sig] ?? 1);
            const hard = setTimeout(() => process.exit(code), 30_000);
            hard.unref();
            void cleanupAll().finally(() => process.exit(code));
        });
    }
}
installExitHandlers();

// ---------------------------------------------------------------- sleeping

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

const sab = new Int32Array(new SharedArrayBuffer(4));
/** Blocking sleep, for the synchronous exit path only. */
export function sleepSync(ms: number): void {
    Atomics.wait(sab, 0, 0, ms);
}

// ---------------------------------------------------------------- OS users

export interface OsUser {
    name: string;
    uid: number;
    gid: number;
    home: string;
}

/** Looks a user up in the passwd database (getent), or returns undefined. */
export function lookupUser(name: string): OsUser | undefined {
    const r = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
    if (r.status !== 0) return undefined;
    const f = r.stdout.trim().split(":");
    return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

/** Like lookupUser but throws a helpful error. */
export function requireUser(name: string): OsUser {
    const u = lookupUser(name);
    if (!u) throw new Error(`OS user '${name}' does not exist (run scripts/integration-deps.sh)`);
    return u;
}

/** The dedicated unprivileged system user for test daemons, created when missing (needs root). */
export const TEST_USER = "pulumi-matrix-test";
export function ensureTestUser(): OsUser {
    const u = lookupUser(TEST_USER);
    if (u) return u;
    const r = spawnSync("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", TEST_USER], {
        encoding: "utf8",
    });
    // Another process may have created it meanwhile.
    const again = lookupUser(TEST_USER);
    if (!again) throw new Error(`useradd ${TEST_USER} failed: ${r.stderr}`);
    return again;
}

// ---------------------------------------------------------------- temp dirs

const keepTmp = process.env.PULUMI_MATRIX_KEEP_TMP === "1";

/**
 * Creates a temp dir (mode 0700, or 0750 with an owner) that is removed on cleanup.
 * With `owner`, the dir is chowned to that OS user so a daemon running as it can write there.
 */
export function makeTempDir(prefix: string, opts: { owner?: string } = {}): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pulumi-matrix-${prefix}-`));
    if (opts.owner) {
        const u = requireUser(opts.owner);
        fs.chownSync(dir, u.uid, u.gid);
    }
    tempDirs.set(
        dir,
        registerCleanup({
            name: `temp dir ${dir}`,
            run: () => removeDir(dir),
            runSync: () => removeDir(dir),
        }),
    );
    return dir;
}

const tempDirs = new Map<string, () => void>();

/** Removes a temp dir made by makeTempDir now (and forgets it). */
export function removeTempDir(dir: string): void {
    tempDirs.get(dir)?.();
    tempDirs.delete(dir);
    removeDir(dir);
}

function removeDir(dir: string): void {
    if (keepTmp) {
        process.stderr.write(`[cleanup] keeping ${dir} (PULUMI_MATRIX_KEEP_TMP=1)\n`);
        return;
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    // Files the suites write through the real prelude leave drift records in the real state directory.
    for (const kept of ["records", "files"]) fs.rmSync(path.join(WRITTEN_DIR, kept, dir), { recursive: true, force: true });
}

/** chown -R */
export function chownRecursive(p: string, user: string): void {
    const u = requireUser(user);
    const walk = (q: string): void => {
        fs.lchownSync(q, u.uid, u.gid);
        if (fs.lstatSync(q).isDirectory()) for (const e of fs.readdirSync(q)) walk(path.join(q, e));
    };
    walk(p);
}

// ---------------------------------------------------------------- processes

export interface SpawnedDaemon {
    readonly name: string;
    readonly child: ChildProcess;
    readonly pid: number;
    /** Resolves with the exit code (or signal name) once the process exited. */
    readonly exited: Promise<number | string>;
    hasExited(): boolean;
    /** Everything the process wrote to stdout+stderr (capped at `maxLogBytes`, oldest dropped). */
    log(): string;
    /** Last n lines of the log. */
    tail(n: number): string;
    /** Sends `signal` to the process, waits up to `graceMs`, then SIGKILLs its process group. */
    stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface DaemonOptions {
    name: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** Run as this OS user (uid/gid set by the kernel call, no wrapper process in between). */
    user?: string;
    /** Also append stdout+stderr to this file. */
    logFile?: string;
    /** Signal for the synchronous exit-path kill (default SIGKILL; PostgreSQL wants SIGQUIT). */
    exitSignal?: NodeJS.Signals;
    maxLogBytes?: number;
    /** Echo output to our stderr too (or set PULUMI_MATRIX_VERBOSE=1). */
    echo?: boolean;
    /** Run in this network namespace (`ip netns exec`, which also binds /etc/netns/<name>/resolv.conf); `user` is then set by setpriv. */
    netns?: string;
}

/** `cmd args` as run in network namespace `netns` (as `user`): `ip netns exec` and setpriv exec in turn, so the pid stays the program's. */
export function inNetns(netns: string, cmd: string, args: string[], user?: string): [string, string[]] {
    const u = user && user !== "root" ? requireUser(user) : undefined;
    const drop = u ? ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups"] : [];
    return ["ip", ["netns", "exec", netns, ...drop, cmd, ...args]];
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/**
 * Signals the process group `pid` leads. Falls back to the bare pid only while
 * the child is known to be alive: after it exited, its pid may already belong
 * to an unrelated process (pids wrap around).
 */
function killGroup(pid: number, signal: NodeJS.Signals, childAlive: boolean): void {
    try {
        process.kill(-pid, signal);
    } catch {
        if (!childAlive) return;
        try {
            process.kill(pid, signal);
        } catch {
            /* gone */
        }
    }
}

/**
 * Spawns a long-running process in its own process group (so a Ctrl-C on the
 * terminal reaches our handler, not the daemon directly, and the whole group
 * can be killed), captures its output, and registers it for cleanup.
 */
export function spawnDaemon(cmd: string, args: string[], opts: DaemonOptions): SpawnedDaemon {
    const spawnOpts: SpawnOptions = {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    };
    if (opts.netns) [cmd, args] = inNetns(opts.netns, cmd, args, opts.user);
    else if (opts.user && opts.user !== "root") {
        const u = requireUser(opts.user);
        spawnOpts.uid = u.uid;
        spawnOpts.gid = u.gid;
    }
    const child = spawn(cmd, args, spawnOpts);
    if (child.pid === undefined) {
        // spawn failed (ENOENT, EACCES...); the 'error' event that follows carries the reason
        child.once("error", () => undefined);
        throw new Error(`${opts.name}: could not spawn ${cmd} (missing or not executable for the user?)`);
    }
    const pid = child.pid;
    const maxLog = opts.maxLogBytes ?? 8 * 1024 * 1024;
    const echo = opts.echo ?? process.env.PULUMI_MATRIX_VERBOSE === "1";
    let buf = "";
    const file = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    const onData = (d: Buffer): void => {
        const s = d.toString("utf8");
        buf += s;
        if (buf.length > maxLog) buf = buf.slice(buf.length - maxLog);
        file?.write(d);
        if (echo) process.stderr.write(`[${opts.name}] ${s}`);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);

    let done = false;
    const exited = new Promise<number | string>((resolve) => {
        child.once("error", (err) => {
            buf += `\n[spawn error] ${String(err)}\n`;
            if (child.exitCode === null && child.signalCode === null && !alive(pid)) {
                done = true;
                resolve(`error: ${err.message}`);
            }
        });
        child.once("exit", (code, signal) => {
            done = true;
            resolve(code ?? signal ?? "unknown");
        });
    });
    void exited.then(() => {
        unregister();
        file?.end();
    });

    const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<void> => {
        if (done) return;
        try {
            process.kill(pid, signal);
        } catch {
            /* already gone */
        }
        const t = setTimeout(() => killGroup(pid, "SIGKILL", !done), graceMs);
        await exited;
        clearTimeout(t);
        // Reap leftovers of the group (e.g. helper children), if any.
        killGroup(pid, "SIGKILL", false);
    };

    const unregister = registerCleanup({
        name: `${opts.name} (pid ${pid})`,
        run: () => stop(),
        runSync: () => {
            if (done) return;
            const sig = opts.exitSignal ?? "SIGKILL";
            killGroup(pid, sig, !done);
            for (let i = 0; i < 50 && alive(pid); i++) sleepSync(100);
            killGroup(pid, "SIGKILL", !done);
        },
    });

    return {
        name: opts.name,
        child,
        pid,
        exited,
        hasExited: () => done,
        log: () => buf,
        tail: (n: number) => lastLines(buf, n),
        stop,
    };
}

export function lastLines(s: string, n: number): string {
    const lines = s.split("\n");
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.slice(-n).join("\n");
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface RunOptions {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    input?: string;
    user?: string;
    timeoutMs?: number;
    /** Do not throw on a non-zero exit. */
    allowFailure?: boolean;
}

/** Runs a short-lived command to completion (input on stdin), throwing with its stderr on failure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const spawnOpts: SpawnOptions = { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] };
        if (opts.user && opts.user !== "root") {
            const u = requireUser(opts.user);
            spawnOpts.uid = u.uid;
            spawnOpts.gid = u.gid;
        }
        const child = spawn(cmd, args, spawnOpts);
        let stdout = "";
        let stderr = "";
        child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
        child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        const timer = setTimeout(() => {
            stderr += `\n[timeout after ${opts.timeoutMs} ms]`;
            child.kill("SIGKILL");
        }, opts.timeoutMs ?? 120_000);
        child.once("error", (err) => {
            clearTimeout(timer);
            reject(new Error(`${cmd}: ${err.message}`));
        });
        child.once("close", (code, signal) => {
            clearTimeout(timer);
            const c = code ?? 128;
            if (c !== 0 && !opts.allowFailure) {
                reject(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}\n${stderr.trim() || stdout.trim()}`));
            } else {
                resolve({ code: c, stdout, stderr });
            }
        });
        child.stdin!.on("error", () => {
            /* EPIPE when the process exits early; its exit code tells */
        });
        child.stdin!.end(opts.input ?? "");
    });
}
