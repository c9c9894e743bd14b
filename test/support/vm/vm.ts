/**
 * Boots throw-away qemu VMs from the cached base image.
 *
 * - every VM runs on its own copy-on-write qcow2 overlay in a temp directory;
 * - KVM when it really works (probed once per process with a real kernel
 *   boot), else TCG (`-accel tcg,thread=multi -cpu max`);
 * - qemu user networking on the first NIC: SSH and `forwardTcp` ports are
 *   forwarded from 127.0.0.1:<free port> only, `forwardFixed` ports from
 *   127.0.0.1:<the port asked for> (checked free before qemu starts);
 * - optional second NIC on a `PrivateNetwork`: a small Ethernet switch in this
 *   process that relays frames between qemu `dgram` netdevs over UDP on
 *   127.0.0.1 (no host address other than loopback is involved); guests get
 *   static 10.99.0.x/24 addresses;
 * - keys: a fresh ed25519 client key and host key per VM, passed via fw_cfg;
 * - every qemu runs under `setpriv --pdeathsig SIGKILL` and is also killed
 *   from exit/signal handlers, so no VM outlives the test process.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { BaseImage, ensureBaseImage } from "./image";
import { runProcess, RunResult, sshRun, SshTarget } from "./ssh";

export interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface Vm {
    name: string;
    sshHost: string;
    sshPort: number;
    user: string;
    /** OpenSSH private key text (ed25519), authorized for root in the guest */
    privateKeyPem: string;
    /** the guest's ed25519 host key, "ssh-ed25519 AAAA..." (for connection.hostKey) */
    hostKey: string;
    /** host port on 127.0.0.1 forwarded to `guestPort` (from `forwardTcp` or `forwardFixed`) */
    forwardedPort(guestPort: number): number;
    /** address on the private network, when the VM has one */
    privateIp?: string;
    /** accelerator the VM runs with */
    accel: "kvm" | "tcg";
    /** seconds from qemu start until SSH accepted the key */
    bootSeconds: number;
    /** per-VM directory (overlay, console log, keys); removed by stop() */
    dir: string;
    /** `connection` args for @pulumi/command resources */
    connection(): { host: string; port: number; user: string; privateKey: string; hostKey: string };
    /** the serial console log so far */
    consoleLog(): string;
    exec(cmd: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
    stop(): Promise<void>;
}

export interface BootOptions {
    name: string;
    memoryMb?: number;
    cpus?: number;
    /** guest TCP ports forwarded to 127.0.0.1:<free port> on the host */
    forwardTcp?: number[];
    /**
     * guest TCP ports forwarded from fixed host ports on 127.0.0.1, `{ guest: host }`
     * (the demo: `{ 443: 443 }`, so URLs need no port); the boot fails with a
     * message naming the port when one is in use or this user may not bind it
     */
    forwardFixed?: Record<number, number>;
    privateNetwork?: PrivateNetwork;
    /** static address on the private network (default: next free 10.99.0.x) */
    privateIp?: string;
    /**
     * Keep the VM running after this process exits (the demo): its files live in
     * this directory, qemu's pid in `qemu.pid`; stop it with `stopDetachedVm(dir)`.
     */
    detachedDir?: string;
    /** how long to wait for SSH (default 600 s: an emulated VM booting beside other suites needed over 150 s here) */
    bootTimeoutMs?: number;
    log?: (s: string) => void;
}

const defaultLog = (s: string) => process.stderr.write(`[e2e] ${s}\n`);

// ---------------------------------------------------------------------------
// cleanup of every qemu process and VM directory, also on exit and signals

interface Running {
    child: ChildProcess;
    dir: string;
}
const running = new Set<Running>();
let handlersInstalled = false;

function killAllSync(): void {
    for (const r of running) {
        try {
            if (r.child.pid && r.child.exitCode === null) process.kill(r.child.pid, "SIGKILL");
        } catch {
            /* gone */
        }
        try {
            fs.rmSync(r.dir, { recursive: true, force: true });
        } catch {
            /* ignore */
        }
    }
    running.clear();
}

/** Removes VM directories left by processes that died without cleanup (e.g. SIGKILL). */
function sweepStaleDirs(): void {
    let names: string[] = [];
    try {
        names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("e2e-vm-"));
    } catch {
        return;
    }
    for (const n of names) {
        const dir = path.join(os.tmpdir(), n);
        let owner = 0;
        try {
            owner = Number(fs.readFileSync(path.join(dir, "owner.pid"), "utf8"));
        } catch {
            continue; // not ours or still being created
        }
        let alive = false;
        try {
            process.kill(owner, 0);
            alive = true;
        } catch {
            /* dead */
        }
        if (!alive) fs.rmSync(dir, { recursive: true, force: true });
    }
}

function installHandlers(): void {
    if (handlersInstalled) return;
    handlersInstalled = true;
    sweepStaleDirs();
    process.on("exit", killAllSync);
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.on(sig, () => {
            killAllSync();
            process.exit(128 + (os.constants.signals[sig] ?? 1));
        });
    }
}

/** Kills every VM this process started (synchronously). */
export function killAllVms(): void {
    killAllSync();
}

// ---------------------------------------------------------------------------
// helpers

export function freeTcpPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

function freeUdpPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = dgram.createSocket("udp4");
        s.on("error", reject);
        s.bind(0, "127.0.0.1", () => {
            const port = s.address().port;
            s.close(() => resolve(port));
        });
    });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why 127.0.0.1:`port` cannot be listened on by this process (the error code), or undefined when it can. */
function tcpPortProblem(port: number): Promise<string | undefined> {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.unref();
        s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        s.listen(port, "127.0.0.1", () => s.close(() => resolve(undefined)));
    });
}

/**
 * The `forwardFixed` map as [guest, host] pairs, checked: ports in range, no
 * guest port forwarded twice (or 22, SSH's), no host port used twice, and
 * every host port free on 127.0.0.1 now.
 */
async function fixedForwards(name: string, fixed: Record<number, number>, forwardTcp: number[]): Promise<[number, number][]> {
    const pairs = Object.entries(fixed).map(([g, h]) => [Number(g), h] as [number, number]);
    const isPort = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;
    for (const [g, h] of pairs) {
        if (!isPort(g) || !isPort(h)) throw new Error(`vm ${name}: forwardFixed ${g}: ${h} is not a pair of TCP ports`);
        if (g === 22 || forwardTcp.includes(g))
            throw new Error(`vm ${name}: guest port ${g} is forwarded already (SSH or forwardTcp); drop it from forwardFixed`);
    }
    const hosts = pairs.map(([, h]) => h);
    const twice = hosts.find((h, i) => hosts.indexOf(h) !== i);
    if (twice !== undefined) throw new Error(`vm ${name}: forwardFixed uses host port ${twice} for two guest ports`);
    for (const [g, h] of pairs) {
        const problem = await tcpPortProblem(h);
        if (problem === "EADDRINUSE")
            throw new Error(
                `vm ${name}: host port ${h} on 127.0.0.1 (forwarded to guest port ${g}) is in use; ` +
                    `stop what listens there (\`ss -ltnp 'sport = :${h}'\` shows it) and try again`,
            );
        if (problem === "EACCES")
            throw new Error(
                `vm ${name}: this user may not listen on host port ${h} (forwarded to guest port ${g}): ` +
                    `ports below 1024 need root, CAP_NET_BIND_SERVICE or a lower sysctl net.ipv4.ip_unprivileged_port_start`,
            );
        if (problem) throw new Error(`vm ${name}: host port ${h} on 127.0.0.1 (forwarded to guest port ${g}) cannot be used: ${problem}`);
    }
    return pairs;
}

function tail(text: string, lines: number): string {
    return text.split("\n").slice(-lines).join("\n");
}

async function keygen(file: string, comment: string): Promise<{ priv: string; pub: string }> {
    const r = await runProcess("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    return { priv: fs.readFileSync(file, "utf8"), pub: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

/** Copies the console log and qemu's stderr of a failed boot to $TMPDIR/e2e-failed-vms/. */
function keepArtifacts(name: string, dir: string): string | undefined {
    try {
        const files = ["console.log", "qemu.stderr"].filter((f) => fs.existsSync(path.join(dir, f)));
        if (files.length === 0) return undefined;
        const dest = path.join(os.tmpdir(), "e2e-failed-vms", `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
        fs.mkdirSync(dest, { recursive: true });
        for (const f of files) fs.copyFileSync(path.join(dir, f), path.join(dest, f));
        return dest;
    } catch {
        return undefined;
    }
}

// ---------------------------------------------------------------------------
// accelerator

let accelProbe: Promise<"kvm" | "tcg"> | undefined;

/**
 * KVM if /dev/kvm exists and a real kernel boots under it to its first
 * panic (no root fs) within a few seconds; TCG otherwise. Cached per process.
 * Set E2E_ACCEL=tcg|kvm to force.
 */
export function chooseAccel(image: BaseImage, log: (s: string) => void = defaultLog): Promise<"kvm" | "tcg"> {
    const forced = process.env.E2E_ACCEL;
    if (forced === "kvm" || forced === "tcg") return Promise.resolve(forced);
    if (!accelProbe) accelProbe = probeKvm(image, log);
    return accelProbe;
}

async function probeKvm(image: BaseImage, log: (s: string) => void): Promise<"kvm" | "tcg"> {
    try {
        fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
    } catch {
        log("accel: no usable /dev/kvm, using TCG");
        return "tcg";
    }
    const started = Date.now();
    const r = await runProcess(
        "qemu-system-x86_64",
        [
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "256",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            image.kernel,
            "-append",
            "console=ttyS0 panic=-1 root=/dev/null",
        ],
        { timeoutMs: 10_000 },
    ).catch((e) => ({ code: -1, stdout: "", stderr: String(e) }) as RunResult);
    const ok = /Kernel panic|VFS: Unable to mount root/.test(r.stdout);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (ok) {
        log(`accel: KVM works (probe boot ${secs}s)`);
        return "kvm";
    }
    const why = r.timedOut ? "no kernel output within 10 s" : (r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`);
    log(`accel: KVM unusable (${why}), using TCG`);
    return "tcg";
}

// ---------------------------------------------------------------------------
// private network: an Ethernet switch over UDP on 127.0.0.1

export class PrivateNetwork {
    readonly prefix: string;
    private socket?: dgram.Socket;
    private hubPort = 0;
    private members = new Set<number>();
    private macs = new Map<string, number>();
    private nextHost = 11;
    private used = new Set<string>();
    private macCounter = 0;
    /** frames relayed (for diagnostics) */
    frames = 0;

    /** `prefix` is the /24 network's first three octets, default "10.99.0" */
    constructor(prefix = "10.99.0") {
        this.prefix = prefix;
    }

    async start(): Promise<void> {
        if (this.socket) return;
        const s = dgram.createSocket("udp4");
        s.on("message", (msg, rinfo) => this.relay(msg, rinfo));
        s.on("error", () => {
            /* keep relaying */
        });
        await new Promise<void>((resolve, reject) => {
            s.once("error", reject);
            s.bind(0, "127.0.0.1", () => resolve());
        });
        s.unref();
        this.socket = s;
        this.hubPort = s.address().port;
    }

    private relay(frame: Buffer, rinfo: dgram.RemoteInfo): void {
        if (rinfo.address !== "127.0.0.1" || !this.members.has(rinfo.port) || frame.length < 14) return;
        this.frames++;
        const src = frame.subarray(6, 12).toString("hex");
        this.macs.set(src, rinfo.port);
        const dst = frame.subarray(0, 6);
        const known = (dst[0] & 1) === 0 ? this.macs.get(dst.toString("hex")) : undefined;
        const targets = known !== undefined ? [known] : [...this.members].filter((p) => p !== rinfo.port);
        for (const p of targets) if (p !== rinfo.port) this.socket!.send(frame, p, "127.0.0.1");
    }

    /** Allocates an address (or reserves `wanted`) on this network. */
    allocate(wanted?: string): string {
        if (wanted) {
            if (this.used.has(wanted)) throw new Error(`private address ${wanted} already in use`);
            this.used.add(wanted);
            return wanted;
        }
        for (;;) {
            const ip = `${this.prefix}.${this.nextHost++}`;
            if (this.nextHost > 254) throw new Error("private network full");
            if (!this.used.has(ip)) {
                this.used.add(ip);
                return ip;
            }
        }
    }

    release(ip: string): void {
        this.used.delete(ip);
    }

    /** qemu arguments for a NIC on this network; returns them with the member port to remove later. */
    async attach(): Promise<{ args: string[]; port: number }> {
        await this.start();
        const port = await freeUdpPort();
        this.members.add(port);
        this.macCounter++;
        const mac = `52:54:00:99:${((this.macCounter >> 8) & 0xff).toString(16).padStart(2, "0")}:${(this.macCounter & 0xff).toString(16).padStart(2, "0")}`;
        return {
            port,
            args: [
                "-netdev",
                `dgram,id=priv0,local.type=inet,local.host=127.0.0.1,local.port=${port},remote.type=inet,remote.host=127.0.0.1,remote.port=${this.hubPort}`,
                "-device",
                `virtio-net-pci,netdev=priv0,mac=${mac}`,
            ],
        };
    }

    /**
     * Puts a network namespace on this network, as another machine on the
     * switch: a tap device in `ns` (created if missing) with `ip`/24, its
     * frames relayed by tap-relay.py. What a test runs in `ns` reaches the
     * VMs' private addresses, and nothing else. `close()` stops the relay
     * and deletes the namespace; it also runs when this process exits, and
     * should the process be killed, the relay dies with it (a death signal)
     * and takes the tap along.
     */
    async attachNamespace(ns: string, ip: string): Promise<{ close(): void }> {
        await this.start();
        this.allocate(ip);
        const tap = `pmtap${process.pid % 100000}${this.macCounter++}`.slice(0, 15);
        const relay = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", "python3", path.join(__dirname, "tap-relay.py"), tap, String(this.hubPort)], {
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        relay.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
        const port = await new Promise<number>((resolve, reject) => {
            let out = "";
            relay.stdout!.on("data", (d: Buffer) => {
                out += d.toString();
                if (out.includes("\n")) resolve(Number(out.trim()));
            });
            relay.once("exit", (code) => reject(new Error(`tap-relay.py exited with ${code}: ${stderr}`)));
        });
        this.members.add(port);
        let closed = false;
        const close = () => {
            if (closed) return;
            closed = true;
            this.detach(port);
            this.release(ip);
            relay.kill("SIGKILL");
            spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        };
        process.once("exit", close);
        try {
            const ipCmd = async (...a: string[]) => {
                const r = await runProcess("ip", a);
                if (r.code !== 0) throw new Error(`ip ${a.join(" ")}: ${r.stderr.trim()}`);
            };
            if ((await runProcess("ip", ["netns", "exec", ns, "true"])).code !== 0) await ipCmd("netns", "add", ns);
            await ipCmd("link", "set", tap, "netns", ns);
            await ipCmd("-n", ns, "addr", "add", `${ip}/24`, "dev", tap);
            await ipCmd("-n", ns, "link", "set", tap, "up");
            await ipCmd("-n", ns, "link", "set", "lo", "up");
        } catch (e) {
            close();
            throw e;
        }
        return { close };
    }

    detach(port: number): void {
        this.members.delete(port);
        for (const [mac, p] of this.macs) if (p === port) this.macs.delete(mac);
    }

    close(): void {
        this.socket?.close();
        this.socket = undefined;
        this.members.clear();
        this.macs.clear();
    }
}

/** A started private network (10.99.0.0/24 by default). */
export async function createPrivateNetwork(prefix?: string): Promise<PrivateNetwork> {
    const n = new PrivateNetwork(prefix);
    await n.start();
    return n;
}

// ---------------------------------------------------------------------------
// boot

export async function bootVm(opts: BootOptions): Promise<Vm> {
    const log = opts.log ?? defaultLog;
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(opts.name)) throw new Error(`bad VM name ${JSON.stringify(opts.name)} (use [a-z0-9-])`);
    // Before anything slow: a taken fixed port fails the boot at once.
    const fixed = await fixedForwards(opts.name, opts.forwardFixed ?? {}, opts.forwardTcp ?? []);
    const image = await ensureBaseImage(log);
    const accel = await chooseAccel(image, log);
    installHandlers();

    const dir = opts.detachedDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `e2e-vm-${opts.name}-`));
    if (opts.detachedDir) {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true });
    }
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, "owner.pid"), String(process.pid));
    const overlay = path.join(dir, "disk.qcow2");
    const consolePath = path.join(dir, "console.log");
    let privatePort: number | undefined;
    let privateIp: string | undefined;
    const cleanupDir = () => fs.rmSync(dir, { recursive: true, force: true });

    try {
        const img = await runProcess("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.disk, "-F", "qcow2", overlay]);
        if (img.code !== 0) throw new Error(`qemu-img create failed: ${img.stderr}`);

        const client = await keygen(path.join(dir, "id_ed25519"), `harness@${opts.name}`);
        const host = await keygen(path.join(dir, "hostkey"), `root@${opts.name}`);
        fs.writeFileSync(path.join(dir, "authkey"), client.pub + "\n");
        fs.writeFileSync(path.join(dir, "hostkey.pub"), host.pub + "\n");
        fs.writeFileSync(path.join(dir, "hostname"), opts.name);

        const sshPort = await freeTcpPort();
        const forwards = new Map<number, number>();
        for (const gp of opts.forwardTcp ?? []) {
            if (gp === 22) continue;
            forwards.set(gp, await freeTcpPort());
        }
        for (const [gp, hp] of fixed) forwards.set(gp, hp);
        const hostfwd = [`hostfwd=tcp:127.0.0.1:${sshPort}-:22`, ...[...forwards].map(([g, h]) => `hostfwd=tcp:127.0.0.1:${h}-:${g}`)];

        const args = [
            "-name",
            opts.name,
            "-machine",
            "q35",
            ...(accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
            "-m",
            String(opts.memoryMb ?? 2048),
            "-smp",
            String(opts.cpus ?? 2),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            `file:${consolePath}`,
            "-kernel",
            image.kernel,
            "-initrd",
            image.initrd,
            "-append",
            image.append,
            "-drive",
            `file=${overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
            "-netdev",
            `user,id=net0,${hostfwd.join(",")}`,
            "-device",
            "virtio-net-pci,netdev=net0",
            "-device",
            "virtio-rng-pci",
            "-fw_cfg",
            `name=opt/harness/authkey,file=${path.join(dir, "authkey")}`,
            "-fw_cfg",
            `name=opt/harness/hostkey,file=${path.join(dir, "hostkey")}`,
            "-fw_cfg",
            `name=opt/harness/hostkey.pub,file=${path.join(dir, "hostkey.pub")}`,
            "-fw_cfg",
            `name=opt/harness/hostname,file=${path.join(dir, "hostname")}`,
        ];
        if (opts.privateNetwork) {
            privateIp = opts.privateNetwork.allocate(opts.privateIp);
            fs.writeFileSync(path.join(dir, "privnet"), `${privateIp}/24`);
            const att = await opts.privateNetwork.attach();
            privatePort = att.port;
            args.push(...att.args, "-fw_cfg", `name=opt/harness/privnet,file=${path.join(dir, "privnet")}`);
        }

        const started = Date.now();
        let stopping = false;
        const stderrFd = fs.openSync(path.join(dir, "qemu.stderr"), "w");
        const child = opts.detachedDir
            ? spawn("qemu-system-x86_64", args, { detached: true, stdio: ["ignore", "ignore", stderrFd] })
            : spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", "qemu-system-x86_64", ...args], { stdio: ["ignore", "ignore", stderrFd] });
        child.unref();
        const entry: Running = { child, dir };
        if (opts.detachedDir) fs.writeFileSync(path.join(dir, "qemu.pid"), String(child.pid));
        // A detached VM joins the cleanup list only until it has booted.
        running.add(entry);
        let exited: string | undefined;
        child.on("exit", (code, sig) => {
            exited = `qemu exited (${code !== null ? `code ${code}` : `signal ${sig}`})` + (stopping ? "" : " unexpectedly");
            if (!stopping) log(`vm ${opts.name}: ${exited}`);
        });
        child.on("error", (e) => (exited = `qemu failed to start: ${e.message}`));

        const consoleLog = () => {
            try {
                return fs.readFileSync(consolePath, "utf8");
            } catch {
                return "";
            }
        };
        const target: SshTarget = {
            host: "127.0.0.1",
            port: sshPort,
            user: "root",
            privateKey: client.priv,
            hostKey: host.pub,
            connectTimeoutSec: 10,
        };

        log(
            `vm ${opts.name}: booting (${accel}, ${opts.memoryMb ?? 2048} MiB, ${opts.cpus ?? 2} cpus, ssh 127.0.0.1:${sshPort}${privateIp ? `, private ${privateIp}` : ""})`,
        );
        const deadline = started + (opts.bootTimeoutMs ?? 600_000);
        let last: RunResult | undefined;
        for (;;) {
            if (exited) {
                const qerr = fs.readFileSync(path.join(dir, "qemu.stderr"), "utf8");
                throw new Error(`vm ${opts.name}: ${exited}\nqemu stderr:\n${tail(qerr, 20)}\nconsole tail:\n${tail(consoleLog(), 40)}`);
            }
            if (Date.now() > deadline) {
                throw new Error(
                    `vm ${opts.name}: SSH not ready after ${Math.round((Date.now() - started) / 1000)}s ` +
                        `(last ssh: exit ${last?.code}: ${last?.stderr.trim()})\nconsole tail:\n${tail(consoleLog(), 40)}`,
                );
            }
            last = await sshRun(target, "true", { timeoutMs: 20_000 });
            if (last.code === 0) break;
            await sleep(1000);
        }
        const bootSeconds = Math.round((Date.now() - started) / 100) / 10;
        log(`vm ${opts.name}: SSH ready after ${bootSeconds}s`);

        if (privateIp) {
            // networkd picked up the fw_cfg address at boot; wait until it is applied
            const r = await sshRun(
                target,
                `for i in $(seq 1 60); do ip -4 addr show dev eth1 2>/dev/null | grep -q ' ${privateIp}/' && exit 0; sleep 0.5; done; ` +
                    `ip link set eth1 up && ip addr replace ${privateIp}/24 dev eth1`,
                { timeoutMs: 60_000 },
            );
            if (r.code !== 0) throw new Error(`vm ${opts.name}: configuring ${privateIp} on eth1 failed: ${r.stderr}`);
        }

        let stopped = false;
        const vm: Vm = {
            name: opts.name,
            sshHost: "127.0.0.1",
            sshPort,
            user: "root",
            privateKeyPem: client.priv,
            hostKey: host.pub.split(/\s+/).slice(0, 2).join(" "),
            privateIp,
            accel,
            bootSeconds,
            dir,
            forwardedPort(guestPort: number): number {
                if (guestPort === 22) return sshPort;
                const p = forwards.get(guestPort);
                if (p === undefined) throw new Error(`vm ${opts.name}: guest port ${guestPort} is not forwarded (forwardTcp, forwardFixed)`);
                return p;
            },
            connection() {
                return { host: "127.0.0.1", port: sshPort, user: "root", privateKey: client.priv, hostKey: vm.hostKey };
            },
            consoleLog,
            async exec(cmd, o = {}) {
                if (stopped) throw new Error(`vm ${opts.name} is stopped`);
                if (exited) throw new Error(`vm ${opts.name}: ${exited}; console tail:\n${tail(consoleLog(), 30)}`);
                const r = await sshRun(target, cmd, { stdin: o.stdin, timeoutMs: o.timeoutMs });
                if (r.code === 255 && exited) throw new Error(`vm ${opts.name}: ${exited} while running: ${cmd}\nconsole tail:\n${tail(consoleLog(), 30)}`);
                if (r.timedOut) throw new Error(`vm ${opts.name}: command timed out after ${o.timeoutMs} ms: ${cmd}\n${tail(r.stdout + r.stderr, 20)}`);
                return { code: r.code, stdout: r.stdout, stderr: r.stderr };
            },
            async stop() {
                if (stopped) return;
                stopped = true;
                stopping = true;
                try {
                    if (child.exitCode === null && !exited) {
                        await sshRun(target, "systemctl poweroff --no-block", { timeoutMs: 10_000 }).catch(() => undefined);
                        const until = Date.now() + 30_000;
                        while (child.exitCode === null && !exited && Date.now() < until) await sleep(250);
                        if (child.exitCode === null && !exited) {
                            child.kill("SIGTERM");
                            const until2 = Date.now() + 5_000;
                            while (child.exitCode === null && !exited && Date.now() < until2) await sleep(100);
                            if (child.exitCode === null && !exited) child.kill("SIGKILL");
                        }
                    }
                } finally {
                    running.delete(entry);
                    if (privatePort !== undefined) opts.privateNetwork?.detach(privatePort);
                    if (privateIp) opts.privateNetwork?.release(privateIp);
                    cleanupDir();
                    log(`vm ${opts.name}: stopped`);
                }
            },
        };
        if (opts.detachedDir) running.delete(entry);
        return vm;
    } catch (e) {
        const kept = keepArtifacts(opts.name, dir);
        if (kept && e instanceof Error) e.message += `\n(console log and qemu stderr kept in ${kept})`;
        for (const r of running) {
            if (r.dir === dir) {
                try {
                    r.child.kill("SIGKILL");
                } catch {
                    /* gone */
                }
                running.delete(r);
            }
        }
        if (privatePort !== undefined) opts.privateNetwork?.detach(privatePort);
        if (privateIp) opts.privateNetwork?.release(privateIp);
        cleanupDir();
        throw e;
    }
}

/** The pid of the qemu a `detachedDir` VM runs in, while that qemu is alive. */
function detachedQemuPid(dir: string): number | undefined {
    try {
        const pid = Number(fs.readFileSync(path.join(dir, "qemu.pid"), "utf8").trim());
        process.kill(pid, 0);
        // The pid file may outlive qemu and its pid be reused: check what runs there.
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("qemu-system") ? pid : undefined;
    } catch {
        return undefined;
    }
}

/** Stops a VM booted with `detachedDir` (possibly by an earlier process) and removes its directory. */
export async function stopDetachedVm(dir: string): Promise<boolean> {
    const pid = detachedQemuPid(dir);
    if (pid !== undefined) {
        process.kill(pid, "SIGTERM");
        for (let i = 0; i < 50 && detachedQemuPid(dir) !== undefined; i++) await sleep(100);
        if (detachedQemuPid(dir) !== undefined) process.kill(pid, "SIGKILL");
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return pid !== undefined;
}

/** Whether a VM booted with `detachedDir` is still running. */
export function detachedVmRunning(dir: string): boolean {
    return detachedQemuPid(dir) !== undefined;
}
