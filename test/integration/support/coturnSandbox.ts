// Runs coturn's scripts as they run on a VM, as root, with the REAL coturn of
// this machine, in namespaces of their own, so nothing is left behind and
// nothing reaches a network:
//
//   network   a namespace with loopback and a veth pair whose one end has
//             SERVER_ADDRESS (a private address, as a VM behind NAT has);
//             no route leads out of it
//   mounts    every directory the scripts (and coturn) write is a temp dir
//             bound over the real path:
//               /etc/coturn              coturn's config, secret and certificate copy
//               /etc/default/coturn      a copy of this machine's file
//               /etc/letsencrypt         the certificate's live directory (made by the test)
//               /etc/pulumi-matrix       certificate hooks, firewall fragments
//               /etc/systemd/system      the unit drop-in
//               /var/lib/pulumi-matrix   STATE_DIR (file-set records, owed restarts)
//               /var/lib/turn            coturn's own database (the package's stays untouched)
//
// This machine runs no systemd: `systemctl` is a stand-in, first on PATH,
// that runs coturn.service for real (start = the drop-in's ExecStart as the
// package's unit runs it, as user turnserver, in the namespaces of the script
// that started it; reload = SIGUSR2, what the drop-in's ExecReload sends;
// is-active = the process lives) and records every call that is not a
// query. Other units (Synapse's, the firewall) are bookkeeping only. `curl`
// answers Synapse's health URLs OK (the test starts Synapse itself).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { STATE_DIR } from "../../../src/render/drift";
import { makeTempDir, registerCleanup, requireUser, run, sleep, sleepSync, type RunResult } from "./processes";

/** The coturn host's own address inside the network namespace. */
export const SERVER_ADDRESS = "10.99.0.1";

/** Real path -> name of its temp copy; `file` entries bind a file over a file. */
const MOUNTS: { real: string; name: string; file?: boolean }[] = [
    { real: "/etc/coturn", name: "etc-coturn" },
    { real: "/etc/default/coturn", name: "etc-default-coturn", file: true },
    { real: "/etc/letsencrypt", name: "etc-letsencrypt" },
    { real: "/etc/pulumi-matrix", name: "etc-pulumi-matrix" },
    { real: "/etc/systemd/system", name: "etc-systemd-system" },
    { real: STATE_DIR, name: "state" },
    { real: "/var/lib/turn", name: "var-lib-turn" },
];

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

export class CoturnSandbox {
    /** The temp dir holding every bound directory, the stand-ins and their records. */
    readonly dir: string;
    /** The network namespace coturn and its clients run in. */
    readonly netns: string;
    /** Resolves once the network namespace is up. */
    readonly ready: Promise<void>;
    private readonly stub: string;
    private readonly createdMountPoints: string[] = [];

    constructor(name: string) {
        this.dir = makeTempDir(`coturn-${name}`);
        this.stub = path.join(this.dir, "bin");
        fs.mkdirSync(this.stub);
        const turn = requireUser("turnserver");
        for (const m of MOUNTS) {
            const from = path.join(this.dir, m.name);
            if (m.file) {
                if (fs.existsSync(m.real)) fs.copyFileSync(m.real, from);
                else fs.writeFileSync(from, "");
            } else {
                fs.mkdirSync(from, { mode: 0o755 });
                fs.chmodSync(from, 0o755);
            }
            if (m.real === "/var/lib/turn") fs.chownSync(from, turn.uid, turn.gid);
            if (!fs.existsSync(m.real)) {
                // The mount point must exist; it is removed again (empty) when the suite ends.
                if (m.file) fs.writeFileSync(m.real, "");
                else fs.mkdirSync(m.real, { recursive: true });
                this.createdMountPoints.push(m.real);
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
        registerCleanup({ name: `mount points of ${this.dir}`, run: removeMountPoints, runSync: removeMountPoints });

        const ns = `pm-coturn-${process.pid}`;
        this.netns = ns;
        const ip = (...args: string[]) => run("ip", args);
        // Deleting the namespace (no process runs in it any more by then) takes its veth pair with it.
        const removeNetns = () => void spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        registerCleanup({ name: `network namespace ${ns}`, run: removeNetns, runSync: removeNetns });
        this.ready = (async () => {
            await ip("netns", "add", ns);
            await ip("-n", ns, "link", "set", "lo", "up");
            await ip("-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1");
            await ip("-n", ns, "addr", "add", `${SERVER_ADDRESS}/24`, "dev", "v0");
            await ip("-n", ns, "link", "set", "v0", "up");
            await ip("-n", ns, "link", "set", "v1", "up");
        })();
        // Awaited by every run; a failure is reported there.
        this.ready.catch(() => undefined);
        // Registered last: runs first, before the namespace and the mount points go.
        registerCleanup({ name: `coturn of ${this.dir}`, run: () => this.stopCoturn(), runSync: () => this.killCoturnSync() });
        this.writeStandIns();
    }

    /** Where a path of the sandbox lives on this machine, to read or prepare files from the test. */
    hostPath(p: string): string {
        for (const m of MOUNTS) if (p === m.real || p.startsWith(`${m.real}/`)) return path.join(this.dir, m.name, p.slice(m.real.length));
        return p;
    }

    private writeStandIns(): void {
        const calls = path.join(this.stub, "calls");
        const active = path.join(this.stub, "active");
        const pidfile = path.join(this.stub, "coturn.pid");
        const log = path.join(this.stub, "coturn.log");
        fs.writeFileSync(
            path.join(this.stub, "systemctl"),
            String.raw`#!/bin/bash
# systemctl stand-in: coturn.service is the real coturn; other units are bookkeeping.
calls=${calls}
active=${active}
pidfile=${pidfile}
dropin=/etc/systemd/system/coturn.service.d/pulumi-matrix.conf
coturn_pid() { local p; p=$(cat "$pidfile" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }
coturn_start() {
    coturn_pid >/dev/null && return 0
    local cmd; cmd=$(grep '^ExecStart=.' "$dropin" | tail -n 1); cmd=${"${cmd#ExecStart=}"}
    [ -n "$cmd" ] || { echo "no ExecStart in $dropin" >&2; return 1; }
    # As Debian's coturn.service runs it: User=turnserver, Group=turnserver.
    setsid setpriv --reuid turnserver --regid turnserver --init-groups -- $cmd </dev/null >>${log} 2>&1 &
    echo $! >"$pidfile"
}
coturn_stop() {
    local p; p=$(coturn_pid) || return 0
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p"
}
cmd=$1; shift
units=()
for a in "$@"; do case "$a" in -*) ;; *) units+=("$a") ;; esac; done
case "$cmd" in
    is-active)
        if [ "$units" = coturn.service ]; then coturn_pid >/dev/null; exit $(( $? ? 3 : 0 )); fi
        grep -qxF -- "$units" "$active" 2>/dev/null || exit 3
        exit 0 ;;
    is-enabled) exit 1 ;;
    show)
        u=${"${units[-1]}"}
        if [ "$u" = coturn.service ]; then coturn_pid >/dev/null && echo active || echo failed; else echo active; fi
        exit 0 ;;
esac
echo "$cmd${"${units[*]:+ ${units[*]}}"}" >>"$calls"
for u in "${"${units[@]}"}"; do
    if [ "$u" = coturn.service ]; then
        case "$cmd" in
            start) coturn_start || exit 1 ;;
            stop) coturn_stop ;;
            restart) coturn_stop; coturn_start || exit 1 ;;
            reload) p=$(coturn_pid) && kill -USR2 "$p" ;;
        esac
        continue
    fi
    case "$cmd" in
        stop|disable) sed -i "/^$u$/d" "$active" 2>/dev/null || true ;;
        start|restart) grep -qxF -- "$u" "$active" 2>/dev/null || echo "$u" >>"$active" ;;
    esac
done
exit 0
`,
            { mode: 0o755 },
        );
        fs.writeFileSync(
            path.join(this.stub, "curl"),
            `#!/bin/bash\ncase "\${@: -1}" in */health) echo "health \${@: -1}" >>${calls}; exit 0 ;; esac\nexec /usr/bin/curl "$@"\n`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(this.stub, "journalctl"), `#!/bin/sh\ntail -n 40 ${log} 2>/dev/null\nexit 0\n`, { mode: 0o755 });
    }

    /**
     * Runs a script (bash on stdin) as root in a new mount namespace with
     * every bind mount and the stand-ins first on PATH; in the network
     * namespace with `netns` (coturn's scripts), else in this machine's
     * network (Synapse's, which the test's Synapse answers on loopback).
     */
    async tryRun(script: string, opts: { netns?: boolean; env?: Record<string, string> } = {}): Promise<RunResult> {
        await this.ready;
        const binds = MOUNTS.map((m) => `mount --bind '${path.join(this.dir, m.name)}' '${m.real}'`).join(" && ");
        const inner = ["unshare", "-m", "--propagation", "private", "bash", "-c", `${binds} && exec bash -s`];
        const [cmd, ...args] = opts.netns ? ["ip", "netns", "exec", this.netns, ...inner] : inner;
        return run(cmd, args, {
            input: script,
            env: { ...process.env, ...opts.env, PATH: `${this.stub}:${process.env.PATH}` },
            allowFailure: true,
            timeoutMs: 180_000,
        });
    }

    /** Like tryRun; throws with the output when the script fails. Resolves with its stdout. */
    async run(script: string, opts: { netns?: boolean; env?: Record<string, string> } = {}): Promise<string> {
        const r = await this.tryRun(script, opts);
        if (r.code !== 0)
            throw new Error(`script failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\n--- coturn ---\n${this.coturnLog()}`);
        return r.stdout;
    }

    /**
     * Runs a program in the network namespace (a TURN client, openssl),
     * bounded by timeout(1) too, so it ends even when this process is gone.
     */
    inNetns(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
        const ms = opts.timeoutMs ?? 60_000;
        return run("ip", ["netns", "exec", this.netns, "timeout", "-k", "5", String(Math.ceil(ms / 1000)), cmd, ...args], {
            allowFailure: true,
            timeoutMs: ms + 10_000,
            input: opts.input,
        });
    }

    /** Units the stand-in reports running (other than coturn, which is real). */
    setActive(...units: string[]): void {
        fs.writeFileSync(path.join(this.stub, "active"), units.map((u) => `${u}\n`).join(""));
    }

    /** The recorded calls since the last `reset`: `systemctl` commands (`reload coturn.service`) and `health <url>`. */
    calls(): string[] {
        const f = path.join(this.stub, "calls");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
    }

    reset(): void {
        fs.rmSync(path.join(this.stub, "calls"), { force: true });
    }

    /** The pid of coturn, when it runs. */
    coturnPid(): number | undefined {
        const f = path.join(this.stub, "coturn.pid");
        if (!fs.existsSync(f)) return undefined;
        const pid = Number(fs.readFileSync(f, "utf8").trim());
        return pid > 0 && alive(pid) ? pid : undefined;
    }

    /** Everything coturn wrote (its log goes to stdout: the journal on a VM). */
    coturnLog(): string {
        const f = path.join(this.stub, "coturn.log");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
    }

    /** Stops coturn (TERM, then KILL) and waits until it is gone. */
    async stopCoturn(): Promise<void> {
        const pid = this.coturnPid();
        if (pid === undefined) return;
        for (const [signal, ms] of [
            ["SIGTERM", 10_000],
            ["SIGKILL", 5_000],
        ] as const) {
            try {
                process.kill(pid, signal);
            } catch {
                /* gone */
            }
            for (let t = 0; t < ms && alive(pid); t += 100) await sleep(100);
            if (!alive(pid)) return;
        }
    }

    private killCoturnSync(): void {
        const pid = this.coturnPid();
        if (pid === undefined) return;
        try {
            process.kill(pid, "SIGKILL");
        } catch {
            /* gone */
        }
        for (let i = 0; i < 30 && alive(pid); i++) sleepSync(100);
    }
}
