/**
 * Builds (once, cached) a bootable Debian bookworm disk image for the e2e VMs.
 *
 * - root file system from Debian packages with `debootstrap --variant=minbase`
 *   plus a second phase in a chroot that installs the cloud kernel with a tiny
 *   initramfs (virtio modules only);
 * - disk made with `mkfs.ext4 -d <rootdir>` (no loop mounts), converted to a
 *   sparse qcow2 that every VM uses as the read-only backing file of its own
 *   throw-away overlay;
 * - vmlinuz + initrd extracted for direct kernel boot;
 * - no SSH keys inside: each boot injects the test's authorized key, host key,
 *   host name and private-network address through qemu fw_cfg, read by a
 *   oneshot unit (`harness-firstboot.service`) before sshd and networkd start.
 *
 * Cache: ~/.cache/pulumi-matrix/vm/<key>/ where <key> hashes the package list,
 * the build script and every file written into the image (which includes the
 * host's CA certificates and apt/pip settings). The build happens in a temp
 * directory next to it and is renamed into place only when complete.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface BaseImage {
    /** cache key (hash of packages + setup script + image files) */
    key: string;
    /** directory holding the files below */
    dir: string;
    /** qcow2 base disk (ext4 on the whole device, label "root") */
    disk: string;
    kernel: string;
    initrd: string;
    /** kernel command line for direct boot */
    append: string;
    /** seconds the build took (0 when it came from the cache) */
    buildSeconds: number;
    /** true when this call found the image in the cache */
    cached: boolean;
    kernelVersion: string;
}

/** Debian suite of the image. */
export const SUITE = "bookworm";

/** Packages installed by debootstrap (phase 1). */
export const BASE_PACKAGES = [
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "udev",
    "kmod",
    "openssh-server",
    "ca-certificates",
    "python3",
    "curl",
    "sudo",
    "iproute2",
    "iputils-ping",
    "procps",
    "netbase",
    "initramfs-tools",
];

/** Kernel (phase 2, after the initramfs settings are in place). Has virtio and qemu_fw_cfg modules. */
export const KERNEL_PACKAGE = "linux-image-cloud-amd64";

/** Size of the sparse ext4 file system (qcow2 keeps it small on disk). */
export const DISK_SIZE = "8G";

const KERNEL_APPEND = "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1";

// The build, run on the host as root. Inputs come from the environment:
// ROOT (empty dir), OUT (output dir), STAGE (files to copy into ROOT),
// MIRROR, SUITE, INCLUDE (comma separated), KERNEL_PKG, DISK_SIZE.
const BUILD_SCRIPT = String.raw`
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
step() { echo "### $(date +%T) $*"; }

step debootstrap
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR"

step configure
cp -a "$STAGE"/. "$ROOT"/
rm -f "$ROOT/etc/apt/sources.list"
chmod 0440 "$ROOT/etc/sudoers.d/"* 2>/dev/null || true

umount_all() {
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m" || true; fi
  done
}
trap umount_all EXIT
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"

# services must not start inside the chroot
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

step kernel
chroot "$ROOT" apt-get update -qq
chroot "$ROOT" apt-get install -y -qq --no-install-recommends "$KERNEL_PKG"

step finish
chroot "$ROOT" update-ca-certificates
chroot "$ROOT" systemctl enable systemd-networkd.service harness-firstboot.service
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service; do chroot "$ROOT" systemctl mask "$u" || true; done
chroot "$ROOT" passwd -d root >/dev/null
chroot "$ROOT" passwd -l root >/dev/null
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/*
rm -f "$ROOT"/etc/ssh/ssh_host_*
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -f "$ROOT/usr/sbin/policy-rc.d"
printf 'nameserver 10.0.2.3\n' > "$ROOT/etc/resolv.conf"
mkdir -p "$ROOT/root/.ssh"; chmod 0700 "$ROOT/root/.ssh"
: > "$ROOT/root/.ssh/authorized_keys"; chmod 0600 "$ROOT/root/.ssh/authorized_keys"
rm -rf "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old "$ROOT"/tmp/*

kver=$(ls "$ROOT/lib/modules" | head -n1)
cp "$ROOT/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$ROOT/boot/initrd.img-$kver" "$OUT/initrd.img"
echo "$kver" > "$OUT/kernel-version"
umount_all
trap - EXIT

step mkfs
truncate -s "$DISK_SIZE" "$OUT/disk.raw"
mkfs.ext4 -q -F -L root -E lazy_itable_init=1,lazy_journal_init=1 -d "$ROOT" "$OUT/disk.raw"
step qcow2
qemu-img convert -f raw -O qcow2 "$OUT/disk.raw" "$OUT/base.qcow2"
rm -f "$OUT/disk.raw"
step done
`;

// Runs in the guest before sshd and networkd: keys, host name and the
// private-network address come from qemu fw_cfg (opt/harness/*).
const FIRSTBOOT_SCRIPT = `#!/bin/sh
# harness-firstboot: configure this boot from qemu fw_cfg entries (opt/harness/*)
set -u
modprobe qemu_fw_cfg 2>/dev/null || true
D=/sys/firmware/qemu_fw_cfg/by_name/opt/harness
i=0
while [ ! -d "$D" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
get() { [ -r "$D/$1/raw" ] && cat "$D/$1/raw"; }
mkdir -p /root/.ssh && chmod 0700 /root/.ssh
if [ -r "$D/authkey/raw" ]; then
  get authkey > /root/.ssh/authorized_keys
  chmod 0600 /root/.ssh/authorized_keys
fi
if [ -r "$D/hostkey/raw" ]; then
  umask 077
  get hostkey > /etc/ssh/ssh_host_ed25519_key
  umask 022
  get hostkey.pub > /etc/ssh/ssh_host_ed25519_key.pub
  chmod 0600 /etc/ssh/ssh_host_ed25519_key
fi
[ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
echo "harness-firstboot: fw_cfg $([ -d "$D" ] && echo found || echo MISSING), authorized_keys $(wc -l < /root/.ssh/authorized_keys) line(s), host key $(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub | cut -c1-16)..."
if [ -r "$D/hostname/raw" ]; then
  h=$(get hostname)
  echo "$h" > /etc/hostname
  hostname "$h"
  grep -q " $h\\$" /etc/hosts || echo "127.0.1.1 $h" >> /etc/hosts
fi
if [ -r "$D/privnet/raw" ]; then
  mkdir -p /run/systemd/network
  addr=$(get privnet)
  printf '[Match]\\nName=eth1\\n\\n[Link]\\nRequiredForOnline=no\\n\\n[Network]\\nAddress=%s\\nLinkLocalAddressing=no\\nIPv6AcceptRA=no\\n' "$addr" > /run/systemd/network/20-harness-private.network
fi
exit 0
`;

const FIRSTBOOT_UNIT = `[Unit]
Description=Test harness: keys, host name and network from qemu fw_cfg
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=sysinit.target ssh.service systemd-networkd.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/harness-firstboot
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=sysinit.target
`;

interface StagedFile {
    content: string | Buffer;
    mode: number;
}

function readIf(p: string): string | undefined {
    try {
        return fs.readFileSync(p, "utf8");
    } catch {
        return undefined;
    }
}

/** Debian sources of the host that the guest can use too (Debian archive only). */
function hostAptSources(): { files: Record<string, string>; mirror: string } {
    const files: Record<string, string> = {};
    const isDebian = (t: string) => /debian\.org|debian-archive-keyring|\/debian(-security)?\/?\s/.test(t);
    const dir = "/etc/apt/sources.list.d";
    let names: string[] = [];
    try {
        names = fs.readdirSync(dir).sort();
    } catch {
        /* none */
    }
    for (const n of names) {
        if (!/\.(sources|list)$/.test(n)) continue;
        const t = readIf(path.join(dir, n));
        if (t && isDebian(t)) files[`/etc/apt/sources.list.d/${n}`] = t;
    }
    const main = readIf("/etc/apt/sources.list");
    if (main && main.split("\n").some((l) => /^\s*deb\s/.test(l)) && isDebian(main)) {
        files["/etc/apt/sources.list.d/host.list"] = main;
    }
    if (Object.keys(files).length === 0) {
        files["/etc/apt/sources.list.d/debian.sources"] = [
            "Types: deb",
            "URIs: http://deb.debian.org/debian",
            `Suites: ${SUITE} ${SUITE}-updates`,
            "Components: main",
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
            "",
            "Types: deb",
            "URIs: http://deb.debian.org/debian-security",
            `Suites: ${SUITE}-security`,
            "Components: main",
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
            "",
        ].join("\n");
    }
    // mirror for debootstrap: the first URI of a non-security Debian entry
    let mirror = "http://deb.debian.org/debian";
    outer: for (const t of Object.values(files)) {
        for (const line of t.split("\n")) {
            const m = /^\s*URIs:\s*(\S+)/.exec(line) ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
            if (m && !/security/.test(m[1])) {
                mirror = m[1];
                break outer;
            }
        }
    }
    return { files, mirror };
}

/** Every file the image gets on top of debootstrap, keyed by absolute guest path. */
function stagedFiles(): Record<string, StagedFile> {
    const f: Record<string, StagedFile> = {};
    const text = (p: string, content: string, mode = 0o644) => (f[p] = { content, mode });

    const apt = hostAptSources();
    for (const [p, c] of Object.entries(apt.files)) text(p, c);
    // apt settings of the host that shape how it reaches the archive (proxy, snapshot validity)
    const confDir = "/etc/apt/apt.conf.d";
    try {
        for (const n of fs.readdirSync(confDir).sort()) {
            const t = readIf(path.join(confDir, n));
            if (t && /Acquire::/i.test(t)) text(`${confDir}/${n}`, t);
        }
    } catch {
        /* none */
    }
    const aptConf = readIf("/etc/apt/apt.conf");
    if (aptConf) text("/etc/apt/apt.conf", aptConf);
    text("/etc/apt/apt.conf.d/90harness-norecommends", 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n');

    // extra CA certificates of the host: outbound HTTPS here passes an intercepting proxy
    const caDir = "/usr/local/share/ca-certificates";
    let extraCa = false;
    try {
        for (const n of fs.readdirSync(caDir).sort()) {
            if (!n.endsWith(".crt")) continue;
            text(`${caDir}/${n}`, fs.readFileSync(path.join(caDir, n), "utf8"));
            extraCa = true;
        }
    } catch {
        /* none */
    }
    // pip uses its own CA bundle unless told otherwise
    const pipConf = readIf("/etc/pip.conf");
    if (pipConf) text("/etc/pip.conf", pipConf);
    else if (extraCa) text("/etc/pip.conf", "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n");
    if (extraCa) {
        text(
            "/etc/environment",
            [
                "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
                "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
                "CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
                "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
                "",
            ].join("\n"),
        );
    }

    text("/etc/hostname", "e2e-vm\n");
    text("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 e2e-vm\n::1 localhost ip6-localhost ip6-loopback\n");
    text("/etc/fstab", "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 1\n");
    text(
        "/etc/systemd/network/10-eth0.network",
        "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n\n[DHCPv4]\nUseDNS=no\n",
    );
    text(
        "/etc/ssh/sshd_config.d/10-harness.conf",
        [
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "UseDNS no",
            "MaxStartups 50:30:200",
            "MaxSessions 50",
            "",
        ].join("\n"),
    );
    // the initramfs only needs the virtio disk (ext4 is built into the cloud kernel)
    text("/etc/initramfs-tools/conf.d/10-harness", "MODULES=list\nCOMPRESS=gzip\n");
    text("/etc/initramfs-tools/modules", "virtio_pci\nvirtio_blk\nvirtio_rng\n");
    text("/etc/modules-load.d/harness.conf", "qemu_fw_cfg\n");
    text("/usr/local/sbin/harness-firstboot", FIRSTBOOT_SCRIPT, 0o755);
    text("/etc/systemd/system/harness-firstboot.service", FIRSTBOOT_UNIT);
    // network-online.target: the first NIC with DHCP is enough (the private NIC has a static address)
    text(
        "/etc/systemd/system/systemd-networkd-wait-online.service.d/harness.conf",
        "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60\n",
    );
    text("/etc/systemd/journald.conf.d/harness.conf", "[Journal]\nStorage=volatile\nRuntimeMaxUse=64M\n");
    return f;
}

export function cacheRoot(): string {
    return path.join(os.homedir(), ".cache", "pulumi-matrix", "vm");
}

function computeKey(files: Record<string, StagedFile>, mirror: string): string {
    const h = createHash("sha256");
    h.update(JSON.stringify({ v: 1, SUITE, BASE_PACKAGES, KERNEL_PACKAGE, DISK_SIZE, KERNEL_APPEND, mirror }));
    h.update(BUILD_SCRIPT);
    for (const p of Object.keys(files).sort()) {
        h.update(`\0${p}\0${files[p].mode}\0`);
        h.update(files[p].content);
    }
    return h.digest("hex").slice(0, 16);
}

function imageAt(key: string, dir: string, cached: boolean, buildSeconds: number): BaseImage {
    return {
        key,
        dir,
        disk: path.join(dir, "base.qcow2"),
        kernel: path.join(dir, "vmlinuz"),
        initrd: path.join(dir, "initrd.img"),
        append: KERNEL_APPEND,
        buildSeconds,
        cached,
        kernelVersion: (readIf(path.join(dir, "kernel-version")) ?? "").trim(),
    };
}

function isComplete(dir: string): boolean {
    return ["base.qcow2", "vmlinuz", "initrd.img", "manifest.json"].every((f) => fs.existsSync(path.join(dir, f)));
}

function pidAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/** A lock directory holding the owner's pid; stale locks (dead owner) are taken over. */
async function withLock<T>(lockDir: string, fn: () => Promise<T>, log: (s: string) => void): Promise<T> {
    let warned = false;
    for (;;) {
        try {
            fs.mkdirSync(lockDir);
            fs.writeFileSync(path.join(lockDir, "pid"), String(process.pid));
            break;
        } catch (e: any) {
            if (e.code !== "EEXIST") throw e;
            const owner = Number(readIf(path.join(lockDir, "pid")) ?? "0");
            if (owner && !pidAlive(owner)) {
                fs.rmSync(lockDir, { recursive: true, force: true });
                continue;
            }
            if (!warned) {
                log(`image: waiting for another build (pid ${owner || "?"}) holding ${lockDir}`);
                warned = true;
            }
            await new Promise((r) => setTimeout(r, 2000));
        }
    }
    try {
        return await fn();
    } finally {
        fs.rmSync(lockDir, { recursive: true, force: true });
    }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, log: (s: string) => void): Promise<void> {
    return new Promise((resolve, reject) => {
        const out = fs.openSync(logFile, "a");
        const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let tail = "";
        const onData = (b: Buffer) => {
            fs.writeSync(out, b);
            tail = (tail + b.toString()).slice(-20000);
            for (const line of b.toString().split("\n")) if (line.startsWith("### ")) log(`image: ${line.slice(4)}`);
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("error", (e) => {
            fs.closeSync(out);
            reject(e);
        });
        child.on("close", (code, sig) => {
            fs.closeSync(out);
            if (code === 0) resolve();
            else {
                const lines = tail.split("\n").slice(-40).join("\n");
                reject(new Error(`image build failed (exit ${code ?? sig}); log ${logFile}; last lines:\n${lines}`));
            }
        });
    });
}

const defaultLog = (s: string) => process.stderr.write(`[e2e] ${s}\n`);
let inProcess: Promise<BaseImage> | undefined;

/**
 * Returns the cached base image, building it first when needed (as root;
 * needs scripts/e2e-deps.sh). Safe against concurrent callers in this and
 * other processes.
 */
export function ensureBaseImage(log: (s: string) => void = defaultLog): Promise<BaseImage> {
    if (!inProcess) {
        inProcess = buildIfNeeded(log);
        inProcess.catch(() => (inProcess = undefined));
    }
    return inProcess;
}

async function buildIfNeeded(log: (s: string) => void): Promise<BaseImage> {
    const files = stagedFiles();
    const { mirror } = hostAptSources();
    const key = computeKey(files, mirror);
    const root = cacheRoot();
    const dir = path.join(root, key);
    if (isComplete(dir)) {
        markUsed(dir);
        return imageAt(key, dir, true, 0);
    }
    fs.mkdirSync(root, { recursive: true });
    return withLock(
        path.join(root, `${key}.lock`),
        async () => {
            if (isComplete(dir)) return imageAt(key, dir, true, 0);
            if (process.getuid && process.getuid() !== 0) throw new Error("building the e2e base image needs root (debootstrap, chroot)");
            for (const tool of ["debootstrap", "mkfs.ext4", "qemu-img", "qemu-system-x86_64"]) {
                if (!whichSync(tool)) throw new Error(`${tool} not found: run scripts/e2e-deps.sh as root first`);
            }
            const started = Date.now();
            const tmp = fs.mkdtempSync(path.join(root, `.build-${key}-`));
            const rootDir = path.join(tmp, "root");
            const stage = path.join(tmp, "stage");
            const out = path.join(tmp, "out");
            fs.mkdirSync(out);
            fs.mkdirSync(rootDir);
            for (const [p, file] of Object.entries(files)) {
                const dest = path.join(stage, p);
                fs.mkdirSync(path.dirname(dest), { recursive: true });
                fs.writeFileSync(dest, file.content, { mode: file.mode });
                fs.chmodSync(dest, file.mode);
            }
            const logFile = path.join(tmp, "build.log");
            log(`image: building ${key} (debian ${SUITE}, mirror ${mirror}) in ${tmp}`);
            try {
                await run(
                    "bash",
                    ["-c", BUILD_SCRIPT],
                    {
                        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        HOME: "/root",
                        ROOT: rootDir,
                        OUT: out,
                        STAGE: stage,
                        MIRROR: mirror,
                        SUITE,
                        INCLUDE: BASE_PACKAGES.join(","),
                        KERNEL_PKG: KERNEL_PACKAGE,
                        DISK_SIZE,
                    },
                    logFile,
                    log,
                );
                const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
                fs.copyFileSync(logFile, path.join(out, "build.log"));
                fs.writeFileSync(
                    path.join(out, "manifest.json"),
                    JSON.stringify(
                        {
                            key,
                            suite: SUITE,
                            mirror,
                            packages: BASE_PACKAGES,
                            kernel: KERNEL_PACKAGE,
                            diskSize: DISK_SIZE,
                            buildSeconds,
                            builtAt: new Date().toISOString(),
                        },
                        null,
                        2,
                    ) + "\n",
                );
                fs.rmSync(dir, { recursive: true, force: true });
                fs.renameSync(out, dir);
                markUsed(dir);
                log(`image: built ${key} in ${buildSeconds}s`);
                pruneStale(root, key, log);
                return imageAt(key, dir, false, buildSeconds);
            } finally {
                // never leave a half-built tree behind (umount first if the script died mid-way)
                for (const mp of mountsUnder(tmp).sort((a, b) => b.length - a.length)) {
                    spawnSync("umount", ["-l", mp], { stdio: "ignore" });
                }
                const left = mountsUnder(tmp);
                if (left.length > 0) {
                    // deleting across a bind mount of /dev would destroy the host's device nodes
                    log(`image: NOT removing ${tmp}: still mounted: ${left.join(", ")}`);
                    // eslint-disable-next-line no-unsafe-finally
                    throw new Error(`image build left mounts under ${tmp}: ${left.join(", ")}`);
                }
                fs.rmSync(tmp, { recursive: true, force: true });
            }
        },
        log,
    );
}

function markUsed(dir: string): void {
    try {
        fs.writeFileSync(path.join(dir, "last-used"), new Date().toISOString() + "\n");
    } catch {
        /* read-only cache is fine */
    }
}

/** Drops other image versions not used for two days (each is a few hundred MB). */
function pruneStale(root: string, keep: string, log: (s: string) => void): void {
    const cutoff = Date.now() - 2 * 24 * 3600_000;
    for (const n of fs.readdirSync(root)) {
        if (n === keep || !/^[0-9a-f]{16}$/.test(n) || fs.existsSync(path.join(root, `${n}.lock`))) continue;
        const d = path.join(root, n);
        let used = 0;
        try {
            used = fs.statSync(path.join(d, "last-used")).mtimeMs;
        } catch {
            used = fs.statSync(d).mtimeMs;
        }
        if (used < cutoff) {
            fs.rmSync(d, { recursive: true, force: true });
            log(`image: removed stale image ${n}`);
        }
    }
}

/** Mount points at or below `p` (from /proc/self/mounts). */
function mountsUnder(p: string): string[] {
    const mounts = readIf("/proc/self/mounts") ?? "";
    return mounts
        .split("\n")
        .map((l) => (l.split(" ")[1] ?? "").replace(/\\040/g, " "))
        .filter((m) => m === p || m.startsWith(p + "/"));
}

function whichSync(tool: string): boolean {
    const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin"]);
    return dirs.some((d) => d && fs.existsSync(path.join(d, tool)));
}
