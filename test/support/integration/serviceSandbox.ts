// Runs the library's scripts as they run on a VM, as root, in a mount
// namespace of their own: every path they (and the services they manage)
// write is a temp dir (or file) of the sandbox bound over the real path, so
// nothing is left on this machine. A mount point that does not exist here is
// created for the bind and removed again (empty) when the suite ends.
//
// This machine runs no systemd: `systemctl` is a stand-in, first on PATH
// (see `systemctlStandIn`), that runs a few units for real, each by the bash
// functions its sandbox gives, records every call that is not a query, and
// keeps the other units (Synapse's, certbot.timer, the firewall) as
// bookkeeping only: start/restart mark them active in a file. `curl` is the
// real one, except that a health URL (`.../health`, the health checks of the
// scripts) is recorded and answered OK: the tests start Synapse themselves.

import * as fs from "node:fs";
import * as path from "node:path";

import { alive, type OsUser, registerCleanup, run, type RunResult, sleep, sleepSync } from "./processes";

/** A path of this machine the scripts see as the sandbox's own copy. */
export interface Bind {
    /** The path the scripts see. */
    readonly real: string;
    /** Name of the temp copy in the sandbox's dir. */
    readonly name: string;
    /** A file bound over a file (else a directory over a directory). */
    readonly file?: boolean;
    /** Starts as a copy of this machine's (a directory: links and timestamps kept; a file that is missing: empty). */
    readonly copy?: boolean;
    /** Owner of the temp copy (else root). */
    readonly owner?: OsUser;
}

/**
 * A unit the `systemctl` stand-in runs for real: the bodies of the bash
 * functions `<name>_start`, `<name>_stop` and `<name>_reload` (a non-zero
 * status fails the call; restart is stop && start). `<name>_pid` prints the
 * pid in `pidFile` (as the scripts see it) while that process lives; is-active
 * and show answer from it.
 */
export interface RealService {
    readonly unit: string;
    readonly name: string;
    readonly pidFile: string;
    readonly start: string;
    readonly stop: string;
    readonly reload: string;
}

export interface StandInOptions {
    /** The units the stand-in runs for real. */
    readonly services?: readonly RealService[];
    /** Records a call with its flags (`disable --now -q x.service`), else its command and units only (`disable x.service`). */
    readonly recordFlags?: boolean;
    /** What `journalctl` prints (a shell command; the scripts show it when a unit fails). */
    readonly journal?: string;
}

export interface SandboxRunOptions {
    /** Added to the script's environment. */
    readonly env?: Record<string, string>;
    readonly timeoutMs?: number;
}

/** A shell word. */
function q(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The `systemctl` stand-in (see the file's head) recording into `calls`, with the bookkeeping of the other units in `active`. */
export function systemctlStandIn(o: StandInOptions & { calls: string; active: string }): string {
    const services = o.services ?? [];
    const body = (b: string) => b.replace(/^\n+/, "").trimEnd();
    const functions = services.flatMap((s) => [
        `${s.name}_pid() { local p; p=$(cat ${q(s.pidFile)} 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }`,
        `${s.name}_start() {\n${body(s.start)}\n}`,
        `${s.name}_stop() {\n${body(s.stop)}\n}`,
        `${s.name}_reload() {\n${body(s.reload)}\n}`,
    ]);
    const real = services.map((s) => `${q(s.unit)}) echo ${s.name} ;; `).join("");
    const recorded = o.recordFlags ? "${*:+ $*}" : "${units[*]:+ ${units[*]}}";
    return `#!/bin/bash
# systemctl stand-in: ${services.map((s) => s.unit).join(", ") || "no unit"} for real; other units are bookkeeping.
calls=${q(o.calls)}
active=${q(o.active)}
${functions.join("\n")}
# The prefix of a unit's functions when it runs for real.
real() { case "$1" in ${real}*) return 1 ;; esac; }
cmd=$1; shift
units=()
for a in "$@"; do case "$a" in -*) ;; *) units+=("$a") ;; esac; done
case "$cmd" in
    is-active)
        if s=$(real "$units"); then "\${s}_pid" >/dev/null; exit $(( $? ? 3 : 0 )); fi
        grep -qxF -- "$units" "$active" 2>/dev/null || exit 3
        exit 0 ;;
    is-enabled) exit 1 ;;
    show)
        u=\${units[-1]}
        if s=$(real "$u"); then "\${s}_pid" >/dev/null && echo active || echo failed; else echo active; fi
        exit 0 ;;
esac
echo "$cmd${recorded}" >>"$calls"
for u in "\${units[@]}"; do
    if s=$(real "$u"); then
        case "$cmd" in
            start) "\${s}_start" || exit 1 ;;
            stop) "\${s}_stop" || exit 1 ;;
            restart) { "\${s}_stop" && "\${s}_start"; } || exit 1 ;;
            reload) "\${s}_reload" || exit 1 ;;
        esac
        continue
    fi
    case "$cmd" in
        stop|disable) sed -i "/^$u$/d" "$active" 2>/dev/null || true ;;
        start|restart) grep -qxF -- "$u" "$active" 2>/dev/null || echo "$u" >>"$active" ;;
    esac
done
exit 0
`;
}

/**
 * The mount namespace, its temp copies and the stand-ins. `O` is what a run
 * takes: a subclass adds its own options and reads them in `wrapper`.
 */
export class ServiceSandbox<O extends SandboxRunOptions = SandboxRunOptions> {
    /** The stand-ins (first on PATH) and their records. */
    protected readonly bin: string;
    private readonly createdMountPoints: string[] = [];

    /** `dir`: an existing temp dir holding every bound copy. */
    constructor(
        readonly dir: string,
        private readonly binds: readonly Bind[],
        private readonly timeoutMs = 180_000,
    ) {
        this.bin = path.join(dir, "bin");
        fs.mkdirSync(this.bin);
        for (const b of binds) {
            const from = path.join(dir, b.name);
            if (b.file) {
                if (b.copy && fs.existsSync(b.real)) fs.copyFileSync(b.real, from);
                else fs.writeFileSync(from, "");
            } else {
                if (b.copy) fs.cpSync(b.real, from, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
                else fs.mkdirSync(from, { mode: 0o755 });
                fs.chmodSync(from, 0o755);
            }
            if (b.owner) fs.chownSync(from, b.owner.uid, b.owner.gid);
            if (!fs.existsSync(b.real)) {
                // The mount point must exist; it is removed again (empty) when the suite ends.
                if (b.file) fs.writeFileSync(b.real, "");
                else fs.mkdirSync(b.real, { recursive: true });
                this.createdMountPoints.push(b.real);
            }
        }
        const removeMountPoints = () => {
            for (const p of this.createdMountPoints.splice(0).reverse()) {
                try {
                    if (fs.statSync(p).isDirectory()) fs.rmdirSync(p);
                    else fs.rmSync(p);
                } catch (err) {
                    process.stderr.write(`[cleanup] mount point ${p} left: ${String(err)}\n`);
                }
            }
        };
        registerCleanup({ name: `mount points of ${dir}`, run: removeMountPoints, runSync: removeMountPoints });
    }

    /** Writes the stand-ins: `systemctl` (see `systemctlStandIn`), `curl` and `journalctl`. */
    protected writeStandIns(o: StandInOptions = {}): void {
        const calls = path.join(this.bin, "calls");
        const active = path.join(this.bin, "active");
        fs.writeFileSync(path.join(this.bin, "systemctl"), systemctlStandIn({ ...o, calls, active }), { mode: 0o755 });
        fs.writeFileSync(
            path.join(this.bin, "curl"),
            `#!/bin/bash\ncase "\${@: -1}" in */health) echo "health \${@: -1}" >>${calls}; exit 0 ;; esac\nexec /usr/bin/curl "$@"\n`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(this.bin, "journalctl"), `#!/bin/sh\n${o.journal ?? "true"}\nexit 0\n`, { mode: 0o755 });
    }

    /** Where a path of the namespace lives on this machine (for a bound one), to read or prepare files from the test. */
    hostPath(p: string): string {
        for (const b of this.binds) if (p === b.real || p.startsWith(`${b.real}/`)) return path.join(this.dir, b.name, p.slice(b.real.length));
        return p;
    }

    /** The command the namespace's `unshare` runs under (none: in this process's other namespaces). */
    protected async wrapper(_opts: Partial<O>): Promise<string[]> {
        return [];
    }

    /** Extra lines for the message of a failed `run` (the services' logs). */
    protected diagnostics(): string {
        return "";
    }

    /** Runs a script (bash on stdin) as root in a new mount namespace with every bind mount, the stand-ins first on PATH. */
    async tryRun(script: string, opts: Partial<O> = {}): Promise<RunResult> {
        const binds = this.binds.map((b) => `mount --bind '${path.join(this.dir, b.name)}' '${b.real}'`).join(" && ");
        const [cmd, ...args] = [...(await this.wrapper(opts)), "unshare", "-m", "--propagation", "private", "bash", "-c", `${binds} && exec bash -s`];
        return run(cmd, args, {
            input: script,
            env: { ...process.env, ...opts.env, PATH: `${this.bin}:${process.env.PATH}` },
            allowFailure: true,
            timeoutMs: opts.timeoutMs ?? this.timeoutMs,
        });
    }

    /** Like tryRun; throws with the output when the script fails. Resolves with its stdout. */
    async run(script: string, opts: Partial<O> = {}): Promise<string> {
        const r = await this.tryRun(script, opts);
        if (r.code !== 0) throw new Error(`script failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}${this.diagnostics()}`);
        return r.stdout;
    }

    /** Units the stand-in reports running (other than the real ones). */
    setActive(...units: string[]): void {
        fs.writeFileSync(path.join(this.bin, "active"), units.map((u) => `${u}\n`).join(""));
    }

    /** The recorded calls since the last `reset`: `systemctl` commands (`reload nginx.service`) and `health <url>`. */
    calls(): string[] {
        const f = path.join(this.bin, "calls");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
    }

    reset(): void {
        fs.rmSync(path.join(this.bin, "calls"), { force: true });
    }

    /** The pid in a pid file (a path on this machine), when that process lives. */
    protected livePid(pidFile: string): number | undefined {
        if (!fs.existsSync(pidFile)) return undefined;
        const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
        return pid > 0 && alive(pid) ? pid : undefined;
    }
}

/**
 * Stops a real service from this side (the suite's cleanup): each signal of
 * `steps` in turn to `pid`, waiting up to its time until `pid` and
 * `children` are gone; then SIGKILL to all of them, waiting up to 5 s more.
 */
export async function stopService(pid: number, children: number[], steps: readonly (readonly [NodeJS.Signals, number])[]): Promise<void> {
    const group = [pid, ...children];
    const waitGone = async (ms: number) => {
        for (let t = 0; t < ms && group.some(alive); t += 100) await sleep(100);
        return !group.some(alive);
    };
    for (const [signal, ms] of steps) {
        try {
            process.kill(pid, signal);
        } catch {
            /* gone */
        }
        if (await waitGone(ms)) return;
    }
    for (const p of group) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            /* gone */
        }
    }
    await waitGone(5_000);
}

/** stopService for process exit: `signal` to `pid`, up to 3 s, then SIGKILL to whatever of `pid` and `children` lives. */
export function stopServiceSync(pid: number, children: number[], signal: NodeJS.Signals): void {
    const group = [pid, ...children];
    try {
        process.kill(pid, signal);
    } catch {
        /* gone */
    }
    for (let i = 0; i < 30 && group.some(alive); i++) sleepSync(100);
    for (const p of group.filter(alive)) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            /* gone */
        }
    }
}
