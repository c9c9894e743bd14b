// Runs coturn's scripts as they run on a VM, as root, with the REAL coturn of
// this machine, in namespaces of their own, so nothing is left behind and
// nothing reaches a network:
//
//   network   a namespace with loopback and a veth pair whose one end has
//             SERVER_ADDRESS (a private address, as a VM behind NAT has)
//             and PUBLIC_ADDRESS (a public one); no route leads out of it
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
// This machine runs no systemd: `systemctl` is a stand-in, first on PATH
// (test/support/integration/serviceSandbox.ts), that runs coturn.service for real (start = the drop-in's ExecStart as the
// package's unit runs it, as user turnserver, in the namespaces of the script
// that started it; reload = SIGUSR2, what the drop-in's ExecReload sends;
// is-active = the process lives) and records every call that is not a
// query. Other units (Synapse's, the firewall) are bookkeeping only. `curl`
// answers Synapse's health URLs OK (the test starts Synapse itself).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { STATE_DIR } from "../../../src/render/drift";
import { makeTempDir, registerCleanup, requireUser, run, type RunResult } from "./processes";
import { type SandboxRunOptions, ServiceSandbox, stopService, stopServiceSync } from "./serviceSandbox";

/** The coturn host's own address inside the network namespace. */
export const SERVER_ADDRESS = "10.99.0.1";
/** A public address of the coturn host (on the same interface; nothing routes to it from outside the namespace). */
export const PUBLIC_ADDRESS = "11.99.0.1";

/** A run of the sandbox: `netns` puts it in the network namespace too. */
export interface CoturnRunOptions extends SandboxRunOptions {
    readonly netns?: boolean;
}

export class TurnSandbox extends ServiceSandbox<CoturnRunOptions> {
    /** The network namespace coturn and its clients run in. */
    readonly netns: string;
    /** Resolves once the network namespace is up. */
    readonly ready: Promise<void>;

    constructor(name: string) {
        super(makeTempDir(`coturn-${name}`), [
            { real: "/etc/coturn", name: "etc-coturn" },
            { real: "/etc/default/coturn", name: "etc-default-coturn", file: true, copy: true },
            { real: "/etc/letsencrypt", name: "etc-letsencrypt" },
            { real: "/etc/pulumi-matrix", name: "etc-pulumi-matrix" },
            { real: "/etc/systemd/system", name: "etc-systemd-system" },
            { real: STATE_DIR, name: "state" },
            { real: "/var/lib/turn", name: "var-lib-turn", owner: requireUser("turnserver") },
        ]);

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
            await ip("-n", ns, "addr", "add", `${PUBLIC_ADDRESS}/32`, "dev", "v0");
            await ip("-n", ns, "link", "set", "v0", "up");
            await ip("-n", ns, "link", "set", "v1", "up");
        })();
        // Awaited by every run; a failure is reported there.
        this.ready.catch(() => undefined);
        // Registered last: runs first, before the namespace and the mount points go.
        registerCleanup({ name: `coturn of ${this.dir}`, run: () => this.stopCoturn(), runSync: () => this.killCoturnSync() });

        const pidfile = path.join(this.bin, "coturn.pid");
        const log = path.join(this.bin, "coturn.log");
        this.writeStandIns({
            services: [
                {
                    unit: "coturn.service",
                    name: "coturn",
                    pidFile: pidfile,
                    start: String.raw`
    coturn_pid >/dev/null && return 0
    local dropin=/etc/systemd/system/coturn.service.d/pulumi-matrix.conf
    local cmd; cmd=$(grep '^ExecStart=.' "$dropin" | tail -n 1); cmd=${"${cmd#ExecStart=}"}
    [ -n "$cmd" ] || { echo "no ExecStart in $dropin" >&2; return 1; }
    # As Debian's coturn.service runs it: User=turnserver, Group=turnserver; with the drop-in's
    # NoNewPrivileges=yes and an empty CapabilityBoundingSet= as setpriv can apply them (the rest
    # of the sandbox needs systemd: systemd-analyze security checks it).
    local priv=()
    grep -qx 'NoNewPrivileges=yes' "$dropin" && priv+=(--no-new-privs)
    grep -qx 'CapabilityBoundingSet=' "$dropin" && priv+=(--bounding-set -all --inh-caps -all)
    setsid setpriv "${"${priv[@]}"}" --reuid turnserver --regid turnserver --init-groups -- $cmd </dev/null >>${log} 2>&1 &
    echo $! >${pidfile}`,
                    // Never fails: the process is gone, or was killed.
                    stop: `
    local p; p=$(coturn_pid) || return 0
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p"
    return 0`,
                    // As the drop-in's ExecReload; nothing to reload when coturn does not run.
                    reload: `
    local p; p=$(coturn_pid) && kill -USR2 "$p"
    return 0`,
                },
            ],
            journal: `tail -n 40 ${log} 2>/dev/null`,
        });
    }

    /**
     * In the network namespace with `netns` (coturn's scripts), else in this
     * machine's network (Synapse's, which the test's Synapse answers on loopback).
     */
    protected override async wrapper(opts: Partial<CoturnRunOptions>): Promise<string[]> {
        await this.ready;
        return opts.netns ? ["ip", "netns", "exec", this.netns] : [];
    }

    protected override diagnostics(): string {
        return `\n--- coturn ---\n${this.coturnLog()}`;
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

    /** The pid of coturn, when it runs. */
    coturnPid(): number | undefined {
        return this.livePid(path.join(this.bin, "coturn.pid"));
    }

    /** Everything coturn wrote (its log goes to stdout: the journal on a VM). */
    coturnLog(): string {
        const f = path.join(this.bin, "coturn.log");
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
    }

    /** Stops coturn (TERM, then KILL) and waits until it is gone. */
    async stopCoturn(): Promise<void> {
        const pid = this.coturnPid();
        if (pid !== undefined) await stopService(pid, [], [["SIGTERM", 10_000]]);
    }

    private killCoturnSync(): void {
        const pid = this.coturnPid();
        if (pid !== undefined) stopServiceSync(pid, [], "SIGKILL");
    }
}
