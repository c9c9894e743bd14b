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
// This machine runs no systemd: `systemctl` is a stand-in, first on PATH
// (test/support/integration/serviceSandbox.ts), that drives the real nginx for nginx.service
// (start = `nginx`, whose master daemonizes and stays in the namespace, so it
// keeps seeing the bind mounts; reload = `nginx -s reload`, waiting until new
// workers replaced the old ones; restart = quit + start; is-active = pid file
// + kill -0) and records every call that is not a query. Other units
// (Synapse's, certbot.timer, nftables) are bookkeeping only: start/restart
// mark them active in a file. `curl` is the real one, except that a health
// URL (`.../health`, Synapse's health checks in Synapse's own scripts) is
// recorded and answered OK: Synapse is started by the test after its scripts ran.

import * as fs from "node:fs";
import * as path from "node:path";

import { STATE_DIR } from "../../../src/render/drift";
import { makeTempDir, registerCleanup } from "./processes";
import { type Bind, ServiceSandbox, stopService, stopServiceSync } from "./serviceSandbox";

const BINDS: Bind[] = [
    { real: "/etc/nginx", name: "etc-nginx", copy: true },
    { real: "/etc/letsencrypt", name: "etc-letsencrypt" },
    { real: "/var/lib/letsencrypt", name: "var-lib-letsencrypt" },
    { real: "/var/log/letsencrypt", name: "var-log-letsencrypt" },
    { real: "/var/www", name: "var-www" },
    { real: "/etc/pulumi-matrix", name: "etc-pulumi-matrix" },
    { real: STATE_DIR, name: "state" },
    { real: "/etc/systemd/system", name: "etc-systemd-system" },
    { real: "/var/log/nginx", name: "var-log-nginx" },
    { real: "/run", name: "run" },
];

export class ProxySandbox extends ServiceSandbox {
    /**
     * `extra`: more directories or files to bind (another service's, whose scripts run beside the proxy's).
     * `netns`: the scripts (and so nginx) run in this network namespace.
     */
    constructor(
        name: string,
        extra: readonly Bind[] = [],
        private readonly netns?: string,
    ) {
        super(makeTempDir(`proxy-${name}`), [...BINDS, ...extra]);
        if (fs.existsSync("/etc/letsencrypt/cli.ini")) fs.copyFileSync("/etc/letsencrypt/cli.ini", this.hostPath("/etc/letsencrypt/cli.ini"));
        // Registered after the temp dir and the mount points: runs before they are removed.
        registerCleanup({ name: `nginx of ${this.dir}`, run: () => this.stopNginx(), runSync: () => this.killNginxSync() });
        const out = path.join(this.bin, "nginx.out");
        this.writeStandIns({
            services: [
                {
                    unit: "nginx.service",
                    name: "nginx",
                    pidFile: "/run/nginx.pid",
                    start: `
    nginx_pid >/dev/null && return 0
    nginx </dev/null >>${out} 2>&1 || return 1
    for _ in $(seq 100); do nginx_pid >/dev/null && return 0; sleep 0.1; done
    return 1`,
                    stop: `
    local p; p=$(nginx_pid) || return 0
    kill -QUIT "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    return 1`,
                    // Returns once the master runs new workers and every old one has exited: from then on, every
                    // connection is served with the new configuration (systemd's reload returns at once instead).
                    reload: `
    local p before now; p=$(nginx_pid) || return 1
    before=$(pgrep -P "$p" | sort)
    nginx -s reload </dev/null >>${out} 2>&1 || return 1
    for _ in $(seq 200); do
        now=$(pgrep -P "$p" | sort)
        if [ -n "$(comm -13 <(echo "$before") <(echo "$now"))" ] && [ -z "$(comm -12 <(echo "$before") <(echo "$now"))" ]; then return 0; fi
        sleep 0.05
    done
    echo "nginx did not replace its workers within 10 s of the reload" >&2
    return 1`,
                },
            ],
            journal: `tail -n 40 /var/log/nginx/error.log ${out} 2>/dev/null`,
        });
    }

    protected override async wrapper(): Promise<string[]> {
        return this.netns ? ["ip", "netns", "exec", this.netns] : [];
    }

    protected override diagnostics(): string {
        return `\n${this.nginxLog()}`;
    }

    /** The recorded calls that start, stop, restart or reload nginx. */
    nginxLifecycle(): string[] {
        return this.calls().filter((c) => /^(start|stop|restart|reload) .*nginx\.service/.test(c));
    }

    /** The pid of nginx's master process, when it runs. */
    nginxPid(): number | undefined {
        return this.livePid(this.hostPath("/run/nginx.pid"));
    }

    /** nginx's own output, error log and access log (for assertion messages). */
    nginxLog(lines = 30): string {
        const tail = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "(none)");
        return [
            `--- nginx output ---\n${tail(path.join(this.bin, "nginx.out"))}`,
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
        if (master !== undefined)
            await stopService(master, childrenOf(master), [
                ["SIGQUIT", 10_000],
                ["SIGTERM", 5_000],
            ]);
    }

    private killNginxSync(): void {
        const master = this.nginxPid();
        if (master !== undefined) stopServiceSync(master, childrenOf(master), "SIGTERM");
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
