/**
 * Thin wrapper around the system OpenSSH client, used by the VM harness (boot
 * wait, `vm.exec`) and the suites' SSH tunnels. Keys and known_hosts files live
 * in a per-process temp directory (mode 0700, files 0600) removed at exit.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { shQuote } from "../../../src/provision/sh";

export interface SshTarget {
    host: string;
    port?: number;
    user?: string;
    /** private key text (OpenSSH or PEM) */
    privateKey: string;
    /** expected host key, "ssh-ed25519 AAAA..." (authorized_keys format); unchecked when absent */
    hostKey?: string;
    /** seconds for one TCP connect + SSH banner exchange (default 15) */
    connectTimeoutSec?: number;
    /** bastion to jump through */
    proxy?: SshTarget;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    /** set when the process was killed by a signal (e.g. timeout) */
    signal?: string;
    timedOut?: boolean;
}

export interface RunOptions {
    stdin?: string | Buffer;
    timeoutMs?: number;
}

let tmpDir: string | undefined;
const HOST_ALIAS = "harness-target";

function secretDir(): string {
    if (!tmpDir) {
        sweepStale();
        tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-ssh-"));
        fs.chmodSync(tmpDir, 0o700);
        fs.writeFileSync(path.join(tmpDir, "owner.pid"), String(process.pid));
        const dir = tmpDir;
        process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return tmpDir;
}

/** Removes key directories of processes that died without their exit handler (SIGKILL). */
function sweepStale(): void {
    try {
        for (const n of fs.readdirSync(os.tmpdir())) {
            if (!n.startsWith("e2e-ssh-")) continue;
            const dir = path.join(os.tmpdir(), n);
            let owner = 0;
            try {
                owner = Number(fs.readFileSync(path.join(dir, "owner.pid"), "utf8"));
            } catch {
                continue;
            }
            try {
                process.kill(owner, 0);
            } catch {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }
    } catch {
        /* best effort */
    }
}

function fileFor(kind: string, content: string): string {
    const name = `${kind}-${createHash("sha256").update(content).digest("hex").slice(0, 20)}`;
    const p = path.join(secretDir(), name);
    if (!fs.existsSync(p)) {
        const tmp = `${p}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, content, { mode: 0o600 });
        fs.renameSync(tmp, p);
    }
    return p;
}

/** Quotes one word for POSIX sh: the library's own quoting. */
export const shq = shQuote;

function keyText(k: string): string {
    return k.endsWith("\n") ? k : k + "\n";
}

/** `-o` options (without destination) for ssh/scp to reach `t`. */
export function sshOptions(t: SshTarget): string[] {
    const o = [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        `IdentityFile=${fileFor("key", keyText(t.privateKey))}`,
        "-o",
        `Port=${t.port ?? 22}`,
        "-o",
        `User=${t.user ?? "root"}`,
        "-o",
        `ConnectTimeout=${t.connectTimeoutSec && t.connectTimeoutSec > 0 ? t.connectTimeoutSec : 15}`,
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=8",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
    ];
    if (t.hostKey) {
        const line = t.hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
        o.push(
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            `UserKnownHostsFile=${fileFor("known_hosts", `${HOST_ALIAS} ${line}\n`)}`,
            "-o",
            `HostKeyAlias=${HOST_ALIAS}`,
        );
    } else {
        o.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
    }
    if (t.proxy) {
        const inner = ["ssh", ...sshOptions(t.proxy), "-W", "%h:%p", hostForSsh(t.proxy.host)];
        // ProxyCommand is run by /bin/sh; %h/%p are expanded by ssh
        o.push("-o", `ProxyCommand=${inner.map((a) => (a === "%h:%p" ? a : shq(a))).join(" ")}`);
    }
    return o;
}

function hostForSsh(h: string): string {
    return h;
}

/** Runs a process, collecting output; never rejects for a non-zero exit. */
export function runProcess(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        let timer: NodeJS.Timeout | undefined;
        if (opts.timeoutMs && opts.timeoutMs > 0) {
            timer = setTimeout(() => {
                timedOut = true;
                child.kill("SIGKILL");
            }, opts.timeoutMs);
        }
        child.stdout!.on("data", (b: Buffer) => out.push(b));
        child.stderr!.on("data", (b: Buffer) => err.push(b));
        child.on("error", (e) => {
            if (timer) clearTimeout(timer);
            reject(e);
        });
        if (opts.stdin !== undefined) {
            child.stdin!.on("error", () => {
                /* remote closed stdin early: not an error by itself */
            });
            child.stdin!.end(opts.stdin);
        }
        child.on("close", (code, signal) => {
            if (timer) clearTimeout(timer);
            const r: RunResult = {
                code: code ?? (timedOut ? 124 : 255),
                stdout: Buffer.concat(out).toString("utf8"),
                stderr: Buffer.concat(err).toString("utf8"),
            };
            if (signal) r.signal = signal;
            if (timedOut) {
                r.timedOut = true;
                r.stderr += `\n[harness] timed out after ${opts.timeoutMs} ms`;
            }
            resolve(r);
        });
    });
}

/** Runs `command` with the remote user's login shell over ssh. */
export function sshRun(t: SshTarget, command: string, opts: RunOptions = {}): Promise<RunResult> {
    return runProcess("ssh", [...sshOptions(t), "-T", hostForSsh(t.host), "--", command], opts);
}
