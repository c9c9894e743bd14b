// Runs the reverse proxy's scripts as they run on a VM, as root, with the
// REAL nginx and certbot of this machine, in a mount namespace of their own:
// every directory the scripts (and nginx, certbot) write is a temp dir bound
// over the real path, so nothing is left on this machine.
//
//   /etc/nginx               a copy of this machine's /etc/nginx (Debian's sites-enabled/default symlink included)
//   /etc/letsencrypt         certbot's config (Debian's cli.ini copied), /var/lib/letsencrypt and /var/log/letsencrypt
//   /var/www                 the ACME webroot (and whatever a test serves from there)
//   /etc/pulumi-matrix       hooks, CA bundle, firewall fragments
//   /var/lib/pulumi-matrix   STATE_DIR (file-set records, owed restarts, the ACME request)
//   /etc/systemd/system      units and drop-ins
//   /var/log/nginx, /run     nginx's logs and its pid file (/run/nginx.pid, from Debian's nginx.conf)
//
// This machine runs no systemd: `systemctl` is a stand-in, first on PATH,
// that drives the real nginx for nginx.service (start = `nginx`, whose
// master daemonizes and stays in the namespace, so it keeps seeing the bind
// mounts; reload = `nginx -s reload`, waiting until new workers replaced the old ones;
// restart = quit + start; is-active = pid file + kill -0) and records every
// call that is not a query. Other units (Synapse's, certbot.timer,
// nftables) are bookkeeping only: start/restart mark them active in a file.
// `curl` is the real one, except that a health URL (`.../health`, Synapse's
// health checks in Synapse's own scripts) is recorded and answered OK:
// Synapse is started by the test after its scripts ran.

import * as fs from "node:fs";
import * as path from "node:path";
import { STATE_DIR } from "../../../src/render/drift";
import { makeTempDir, registerCleanup, run, sleep, sleepSync, type RunResult } from "./processes";

/** Real path -> name of its temp dir. */
const MOUNTS: [string, string][] = [
    ["/etc/nginx", "etc-nginx"],
    ["/etc/letsencrypt", "etc-letsencrypt"],
    ["/var/lib/letsencrypt", "var-lib-letsencrypt"],
    ["/var/log/letsencrypt", "var-log-letsencrypt"],
    ["/var/www", "var-www"],
    ["/etc/pulumi-matrix", "etc-pulumi-matrix"],
    [STATE_DIR, "state"],
    ["/etc/systemd/system", "etc-systemd-system"],
    ["/var/log/nginx", "var-log-nginx"],
    ["/run", "run"],
];

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

export class ProxySandbox {
    /** The temp dir holding every bound directory, the stand-ins and their records. */
    readonly dir: string;
    private readonly stub: string;
    private readonly createdMountPoints: string[] = [];

    constructor(name: string) {
        this.dir = makeTempDir(`proxy-${name}`);
        this.stub = path.join(this.dir, "bin");
        fs.mkdirSync(this.stub);
        for (const [real, name] of MOUNTS) {
            const from = path.join(this.dir, name);
            if (real === "/etc/nginx") fs.cpSync("/etc/nginx", from, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
            else fs.mkdirSync(from, { mode: 0o755 });
            fs.chmodSync(from, 0o755);
            if (!fs.existsSync(real)) {
                // The mount point must exist; it is removed again (empty) when the suite ends.
                fs.mkdirSync(real, { recursive: true });
                this.createdMountPoints.push(real);
            }
        }
        if (fs.existsSync("/etc/letsencrypt/cli.ini")) fs.copyFileSync("/etc/letsencrypt/cli.ini", this.hostPath("/etc/letsencrypt/cli.ini"));
        const removeMountPoints = () => {
            for (const p of this.createdMountPoints.splice(0).reverse()) {
                try {
                    fs.rmdirSync(p);
                } catch (err) {
                    process.stderr.write(`[cleanup] mount point ${p} left: ${String(err)}\n`);
                }
            }
        };
        registerCleanup({ name: `mount points of ${this.dir}`, run: removeMountPoints, runSync: removeMountPoints });
        // Registered after the temp dir and the mount points: runs before they are removed.
        registerCleanup({ name: `nginx of ${this.dir}`, run: () => this.stopNginx(), runSync: () => this.killNginxSync() });
        this.writeStandIns();
    }

    /** Where a path of the namespace lives on this machine (for a bound directory), to read or prepare files from the test. */
    hostPath(p: string): string {
        for (const [real, name] of MOUNTS) if (p === real || p.startsWith(`${real}/`)) return path.join(this.dir, name, p.slice(real.length));
        return p;
    }

    private writeStandIns(): void {
        const calls = path.join(this.stub, "calls");
        const active = path.join(this.stub, "active");
        const out = path.join(this.stub, "nginx.out");
        fs.writeFileSync(
            path.join(this.stub, "systemctl"),
            String.raw`#!/bin/bash
# systemctl stand-in: nginx.service is the real nginx of the namespace; other units are bookkeeping.
calls=${calls}
active=${active}
pidfile=/run/nginx.pid
nginx_pid() { local p; p=$(cat "$pidfile" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }
nginx_start() {
    nginx_pid >/dev/null && return 0
    nginx </dev/null >>${out} 2>&1 || return 1
    for _ in $(seq 100); do nginx_pid >/dev/null && return 0; sleep 0.1; done
    return 1
}
nginx_stop() {
    local p; p=$(nginx_pid) || return 0
    kill -QUIT "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}
# Returns once the master runs new workers and every old one has exited: from then on, every
# connection is served with the new configuration (systemd's reload returns at once instead).
nginx_reload() {
    local p before now; p=$(nginx_pid) || return 1
    before=$(pgrep -P "$p" | sort)
    nginx -s reload </dev/null >>${out} 2>&1 || return 1
    for _ in $(seq 200); do
        now=$(pgrep -P "$p" | sort)
        if [ -n "$(comm -13 <(echo "$before") <(echo "$now"))" ] && [ -z "$(comm -12 <(echo "$before") <(echo "$now"))" ]; then return 0; fi
        sleep 0.05
    done
    echo "nginx did not replace its workers within 10 s of the reload" >&2
    return 1
}
cmd=$1; shift
units=()
for a in "$@"; do case "$a" in -*) ;; *) units+=("$a") ;; esac; done
case "$cmd" in
    is-active)
        if [ "$units" = nginx.service ]; then nginx_pid >/dev/null; exit $(( $? ? 3 : 0 )); fi
        grep -qxF -- "$units" "$active" 2>/dev/null || exit 3
        exit 0 ;;
    is-enabled) exit 1 ;;
    show)
        u=${"${units[-1]}"}
        if [ "$u" = nginx.service ]; then nginx_pid >/dev/null && echo active || echo failed; else echo active; fi
        exit 0 ;;
esac
echo "$cmd${"${units[*]:+ ${units[*]}}"}" >>"$calls"
for u in "${"${units[@]}"}"; do
    if [ "$u" = nginx.service ]; then
        case "$cmd" in
            start) nginx_start || exit 1 ;;
            stop) nginx_stop || exit 1 ;;
            restart) { nginx_stop && nginx_start; } || exit 1 ;;
            reload) nginx_reload || exit 1 ;;
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
        fs.writeFileSync(path.join(this.stub, "journalctl"), `#!/bin/sh\ntail -n 40 /var/log/nginx/error.log ${out} 2>/dev/null\nexit 0\n`, { mode: 0o755 });
    }

    /** Runs a script (bash on stdin) as root in a new mount namespace with every bind mount, the stand-ins first on PATH. */
    async tryRun(script: string, timeoutMs = 180_000): Promise<RunResult> {
        const binds = MOUNTS.map(([real, name]) => `mount --bind '${path.join(this.dir, name)}' '${real}'`).join(" && ");
        return run("unshare", ["-m", "--propagation", "private", "bash", "-c", `${binds} && exec bash -s`], {
            input: script,
            env: { ...process.env, PATH: `${this.stub}:${process.env.PATH}` },
            allowFailure: true,
            timeoutMs,
        });
    }

    /** Like tryRun; throws with the output when the script fails. Resolves with its stdout. */
    async run(script: string): Promise<string> {
        const r = await this.tryRun(script);
        if (r.code !== 0) throw new Error(`script failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\n${this.nginxLog()}`);
        return r.stdout;
    }

    /** Units the stand-in reports running (other than nginx, which is real). */
    setActive(...units: string[]): void {
        fs.writeFileSync(path.join(this.stub, "active"), units.map((u) => `${u}\n`).join(""));
    }

    /** The recorded calls since the last `reset`: `systemctl` commands (`reload nginx.service`) and `health <url>`. */
    calls(): string[] {
        const f = path.join(this.stub, "calls");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
    }

    /** The recorded calls that start, stop, restart or reload nginx. */
    nginxLifecycle(): string[] {
        return this.calls().filter((c) => /^(start|stop|restart|reload) .*nginx\.service/.test(c));
    }

    reset(): void {
        fs.rmSync(path.join(this.stub, "calls"), { force: true });
    }

    /** The pid of nginx's master process, when it runs. */
    nginxPid(): number | undefined {
        const f = this.hostPath("/run/nginx.pid");
        if (!fs.existsSync(f)) return undefined;
        const pid = Number(fs.readFileSync(f, "utf8").trim());
        return pid > 0 && alive(pid) ? pid : undefined;
    }

    /** nginx's own output, error log and access log (for assertion messages). */
    nginxLog(lines = 30): string {
        const tail = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "(none)");
        return [
            `--- nginx output ---\n${tail(path.join(this.stub, "nginx.out"))}`,
            `--- /var/log/nginx/error.log ---\n${tail(this.hostPath("/var/log/nginx/error.log"))}`,
        ].join("\n");
    }

    /** The access log lines so far. */
    accessLog(): string[] {
        const f = this.hostPath("/var/log/nginx/access.log");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
    }

    /** Stops nginx (graceful quit, then TERM, then KILL of the master and its workers) and waits until every process is gone. */
    async stopNginx(): Promise<void> {
        const master = this.nginxPid();
        if (master === undefined) return;
        const group = [master, ...childrenOf(master)];
        const waitGone = async (ms: number) => {
            for (let t = 0; t < ms && group.some(alive); t += 100) await sleep(100);
            return !group.some(alive);
        };
        for (const [signal, ms] of [
            ["SIGQUIT", 10_000],
            ["SIGTERM", 5_000],
        ] as const) {
            try {
                process.kill(master, signal);
            } catch {
                /* gone */
            }
            if (await waitGone(ms)) return;
        }
        for (const pid of group) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }
        await waitGone(5_000);
    }

    private killNginxSync(): void {
        const master = this.nginxPid();
        if (master === undefined) return;
        const group = [master, ...childrenOf(master)];
        try {
            process.kill(master, "SIGTERM");
        } catch {
            /* gone */
        }
        for (let i = 0; i < 30 && group.some(alive); i++) sleepSync(100);
        for (const pid of group.filter(alive)) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }
    }
}

/** Direct children of a process (nginx's workers), from /proc. */
export function childrenOf(pid: number): number[] {
    const out: number[] = [];
    for (const e of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(e)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
            // Field 4 (ppid) follows the command in parentheses, which may itself contain spaces.
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            if (ppid === pid) out.push(Number(e));
        } catch {
            /* exited meanwhile */
        }
    }
    return out;
}
