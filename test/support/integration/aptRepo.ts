// Real apt, real dpkg, isolated: a throw-away Debian root (debootstrap,
// cached) where the library's rendered install scripts run through chroot, a
// signed apt repository on loopback serving a test `matrix-synapse-py3` built
// with debhelper with the real package's layout and maintainer behaviour (and
// a real Synapse as its payload), and a systemctl stand-in inside the root
// that really runs the units and records who started what.
//
// Nothing here touches this machine's own dpkg database, apt sources or
// services: every package operation happens inside the root, which is
// removed afterwards (PULUMI_MATRIX_KEEP_TMP=1 keeps it).

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { freePort, waitForHttp } from "./net";
import { makeTempDir, registerCleanup, removeTempDir, run, RunOptions, RunResult, sleep, spawnDaemon } from "./processes";

/** The Debian release of the root (this machine's, so the cached Synapse virtualenvs run in it unchanged). */
export const ROOT_SUITE = "bookworm";

/**
 * Packages the root gets from debootstrap: what the library's scripts and the test package need, so no Debian mirror is used
 * later (python3-yaml: a Debian package Synapse also depends on, which the pip method must not lean on).
 */
const ROOT_PACKAGES = ["gnupg", "curl", "ca-certificates", "python3", "python3-venv", "python3-psycopg2", "python3-yaml", "adduser", "procps"];

const FAKE_SYSTEMD = path.join(__dirname, "fake-systemd.py");

function cacheRoot(): string {
    return process.env.PULUMI_MATRIX_CACHE_DIR ?? path.join(os.homedir(), ".cache", "pulumi-matrix");
}

/** The first Debian mirror this machine's apt sources name (debootstrap uses the same). */
function hostMirror(): string {
    const files = ["/etc/apt/sources.list"];
    try {
        for (const n of fs.readdirSync("/etc/apt/sources.list.d").sort()) files.push(path.join("/etc/apt/sources.list.d", n));
    } catch {
        /* none */
    }
    for (const f of files) {
        let text = "";
        try {
            text = fs.readFileSync(f, "utf8");
        } catch {
            continue;
        }
        for (const line of text.split("\n")) {
            const m = /^\s*URIs:\s*(\S+)/.exec(line) ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
            if (m && /\/debian\/?$/.test(m[1])) return m[1];
        }
    }
    return "http://deb.debian.org/debian";
}

/**
 * A Debian root made by debootstrap, cached under
 * ~/.cache/pulumi-matrix/apt-root/<key>/ (about a minute cold). Its apt
 * sources are emptied: the tests' repository is the only one it uses.
 */
export function ensureBaseRoot(): Promise<string> {
    baseRoot ??= buildBaseRoot();
    baseRoot.catch(() => (baseRoot = undefined));
    return baseRoot;
}

let baseRoot: Promise<string> | undefined;

async function buildBaseRoot(): Promise<string> {
    const mirror = hostMirror();
    const key = createHash("sha256")
        .update(JSON.stringify({ v: 1, ROOT_SUITE, ROOT_PACKAGES, mirror }))
        .digest("hex")
        .slice(0, 12);
    const dir = path.join(cacheRoot(), "apt-root", key);
    if (fs.existsSync(path.join(dir, ".complete"))) return path.join(dir, "root");
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const r = await run("debootstrap", ["--variant=minbase", `--include=${ROOT_PACKAGES.join(",")}`, ROOT_SUITE, path.join(tmp, "root"), mirror], {
        timeoutMs: 900_000,
        allowFailure: true,
    });
    if (r.code !== 0) throw new Error(`debootstrap failed (scripts/integration-deps.sh installs it):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    const root = path.join(tmp, "root");
    fs.writeFileSync(path.join(root, "etc/apt/sources.list"), "");
    fs.rmSync(path.join(root, "var/lib/apt/lists"), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, "var/lib/apt/lists/partial"), { recursive: true });
    await run("chroot", [root, "apt-get", "clean"]);
    fs.writeFileSync(path.join(tmp, ".complete"), `${mirror}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    return path.join(dir, "root");
}

/** A throw-away copy of the base root, with the systemd stand-in. */
export interface Chroot {
    readonly root: string;
    /** Runs a command inside the root (its own mount namespace with /proc), as root, with a plain environment. */
    exec(args: string[], opts?: RunOptions): Promise<RunResult>;
    /** Runs a bash script inside the root on stdin, as the components send scripts to a host. */
    script(text: string, opts?: RunOptions): Promise<RunResult>;
    /** A path inside the root, as seen from this machine. */
    path(p: string): string;
    /** Every systemctl call so far (see fake-systemd.py). */
    calls(): { argv: string[]; maintscript: string; package: string }[];
    /** Every unit start so far (who started it: `maintscript` empty for the library). */
    starts(): { unit: string; pid: number; maintscript: string }[];
    /** PIDs of processes whose root directory is this root and whose command line mentions synapse. */
    synapsePids(): number[];
    /** The output of a unit so far. */
    unitLog(unit: string): string;
    /** Stops every unit the stand-in started. */
    stopAll(): Promise<void>;
}

export async function makeChroot(): Promise<Chroot> {
    const base = await ensureBaseRoot();
    const dir = makeTempDir("apt-root");
    const root = path.join(dir, "root");
    await run("cp", ["-a", base, root], { timeoutMs: 300_000 });
    const inRoot = (p: string) => path.join(root, p);
    fs.copyFileSync(FAKE_SYSTEMD, inRoot("usr/bin/systemctl"));
    fs.chmodSync(inRoot("usr/bin/systemctl"), 0o755);
    fs.symlinkSync("systemctl", inRoot("usr/bin/journalctl"));
    // debhelper's snippets act only when systemd runs: this is how they tell.
    fs.mkdirSync(inRoot("run/systemd/system"), { recursive: true });
    fs.writeFileSync(inRoot("etc/hostname"), "apt-test\n");
    // No /dev/pts in the root: dpkg's output goes straight through.
    fs.writeFileSync(inRoot("etc/apt/apt.conf.d/90pulumi-matrix-test"), 'Dpkg::Use-Pty "0";\n');

    const env = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", HOME: "/root", TERM: "dumb" };
    const exec = (args: string[], opts: RunOptions = {}) =>
        run("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', root, ...args], {
            timeoutMs: 600_000,
            ...opts,
            env: { ...env, ...(opts.env ?? {}) },
        });
    const readJsonLines = <T>(file: string): T[] => {
        try {
            return fs
                .readFileSync(inRoot(file), "utf8")
                .split("\n")
                .filter((l) => l.trim())
                .map((l) => JSON.parse(l) as T);
        } catch {
            return [];
        }
    };
    const synapsePids = (): number[] => {
        const pids: number[] = [];
        for (const e of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(e)) continue;
            try {
                if (fs.readlinkSync(`/proc/${e}/root`) !== root) continue;
                const cmd = fs.readFileSync(`/proc/${e}/cmdline`, "utf8");
                if (/synapse/.test(cmd) && !/systemctl/.test(cmd)) pids.push(Number(e));
            } catch {
                /* gone */
            }
        }
        return pids;
    };
    const killAll = () => {
        for (const pid of synapsePids()) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }
    };
    const stopAll = async () => {
        for (const pid of synapsePids()) {
            try {
                process.kill(pid, "SIGTERM");
            } catch {
                /* gone */
            }
        }
        for (let i = 0; i < 100 && synapsePids().length; i++) await sleep(100);
        killAll();
    };
    // Registered after the temp dir: cleanup runs newest first, so the processes stop before their root goes.
    registerCleanup({ name: `processes in ${root}`, run: stopAll, runSync: killAll });
    return {
        root,
        exec,
        script: (text, opts = {}) => exec(["bash", "-s"], { ...opts, input: text }),
        path: inRoot,
        calls: () => readJsonLines("run/fake-systemd/calls"),
        starts: () => readJsonLines("run/fake-systemd/starts"),
        synapsePids,
        unitLog: (unit) => {
            try {
                return fs.readFileSync(inRoot(`run/fake-systemd/${unit}.log`), "utf8");
            } catch {
                return "";
            }
        },
        stopAll,
    };
}

// ---------------------------------------------------------------- keys

export interface TestKey {
    fingerprint: string;
    /** The public key as a binary keyring file (what apt's signed-by reads). */
    keyring: string;
    /** GnuPG home holding the secret key (for signing the repository). */
    home: string;
}

/** A new Ed25519 signing key; `expireSeconds` makes one that expires (wait that long for it to have expired). */
export async function makeTestKey(name: string, opts: { expireSeconds?: number } = {}): Promise<TestKey> {
    const home = makeTempDir(`gpg-${name}`);
    const expire = opts.expireSeconds ? `seconds=${opts.expireSeconds}` : "1y";
    await run("gpg", [
        "--batch",
        "--homedir",
        home,
        "--passphrase",
        "",
        "--quick-gen-key",
        `pulumi-matrix test ${name} <${name}@repo.test>`,
        "ed25519",
        "sign",
        expire,
    ]);
    const list = await run("gpg", ["--batch", "--homedir", home, "--with-colons", "--list-keys"]);
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(list.stdout)?.[1];
    if (!fingerprint) throw new Error(`no fingerprint for the test key ${name}:\n${list.stdout}`);
    const keyring = path.join(home, `${name}.gpg`);
    await run("gpg", ["--batch", "--yes", "--homedir", home, "--output", keyring, "--export", fingerprint]);
    return { fingerprint, keyring, home };
}

// ---------------------------------------------------------------- packages

/**
 * Maintainer scripts and files of the test `matrix-synapse-py3`, written for
 * this test with the behaviour of matrix.org's package (debian/ in the Synapse
 * repository): the postinst creates conf.d/server_name.yaml and
 * report_stats.yaml when they are missing (so they come back on every
 * upgrade), writes the debconf answers into every `server_name:` /
 * `report_stats:` line of homeserver.yaml and conf.d/*.yaml whose value
 * differs (unquoted), creates the system user, and registers statoverrides
 * (user, 0755) for its three directories only when none exists; the config
 * script reads those lines back into debconf; the unit generates keys before
 * each start. debhelper adds the systemd handling (enable on install, start
 * on install, restart on upgrade, through deb-systemd-helper and
 * deb-systemd-invoke) and the debconf glue.
 */
const DEBIAN_FILES: Record<string, string> = {
    "debian/control": `Source: matrix-synapse-py3
Section: net
Priority: optional
Maintainer: pulumi-matrix tests <tests@repo.test>
Build-Depends: debhelper-compat (= 12)
Standards-Version: 4.6.2

Package: matrix-synapse-py3
Architecture: amd64
Provides: matrix-synapse
Pre-Depends: dpkg (>= 1.16.1)
Depends: adduser, debconf, python3 (>= 3.11), \${misc:Depends}
Recommends: matrix-org-archive-keyring
Description: Synapse Matrix homeserver (pulumi-matrix test build)
 Test build of matrix.org's package layout, with a real Synapse virtualenv.
`,
    "debian/source/format": "3.0 (native)\n",
    "debian/rules": `#!/usr/bin/make -f
%:
\tdh $@

override_dh_installsystemd:
\tdh_installsystemd --name=matrix-synapse

override_dh_auto_configure override_dh_auto_build override_dh_auto_test override_dh_auto_install override_dh_auto_clean:

# The payload is a prebuilt virtualenv: nothing to strip, scan or rewrite.
override_dh_strip override_dh_dwz override_dh_shlibdeps override_dh_makeshlibs override_dh_strip_nondeterminism override_dh_compress:

override_dh_builddeb:
\tdh_builddeb -- -Znone
`,
    "debian/dirs": "etc/matrix-synapse\nvar/lib/matrix-synapse\nvar/log/matrix-synapse\n",
    "debian/install":
        "payload/opt/venvs/matrix-synapse opt/venvs\npayload/etc/matrix-synapse/homeserver.yaml etc/matrix-synapse\npayload/etc/matrix-synapse/log.yaml etc/matrix-synapse\nmaintscripts/debconf-yaml opt/venvs/matrix-synapse/lib\n",
    "debian/templates": `Template: matrix-synapse/server-name
Type: string
Description: Server name:
 The domain of this homeserver's Matrix IDs.

Template: matrix-synapse/report-stats
Type: boolean
Default: false
Description: Report usage statistics?
 Whether Synapse reports anonymous usage statistics.
`,
    "debian/matrix-synapse.service": `[Unit]
Description=Synapse Matrix homeserver (package unit)

[Service]
Type=notify
User=matrix-synapse
WorkingDirectory=/var/lib/matrix-synapse
ExecStartPre=/opt/venvs/matrix-synapse/bin/python -m synapse.app.homeserver --config-path=/etc/matrix-synapse/homeserver.yaml --config-path=/etc/matrix-synapse/conf.d/ --generate-keys
ExecStart=/opt/venvs/matrix-synapse/bin/python -m synapse.app.homeserver --config-path=/etc/matrix-synapse/homeserver.yaml --config-path=/etc/matrix-synapse/conf.d/
Restart=always

[Install]
WantedBy=multi-user.target
`,
    // read: yaml -> debconf (the last line found wins); update: debconf -> every differing line, unquoted.
    "maintscripts/debconf-yaml": `#!/bin/sh
set -e
. /usr/share/debconf/confmodule
files=$(ls /etc/matrix-synapse/homeserver.yaml /etc/matrix-synapse/conf.d/*.yaml 2>/dev/null || true)
for pair in server_name:matrix-synapse/server-name report_stats:matrix-synapse/report-stats; do
    key=\${pair%%:*}; question=\${pair#*:}
    case "$1" in
    read)
        for f in $files; do
            value=$(sed -n "s/^$key[[:space:]]*:\\(.*\\)$/\\1/p" "$f" | tail -n 1 | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e "s/^\\"\\(.*\\)\\"$/\\1/" -e "s/^'\\(.*\\)'$/\\1/")
            if grep -q "^$key[[:space:]]*:" "$f"; then db_set "$question" "$value"; fi
        done
        ;;
    update)
        db_get "$question" || continue
        want=$RET
        for f in $files; do
            awk -v key="$key" -v want="$want" '
                $0 ~ "^" key "[[:space:]]*:" { v = $0; sub("^" key "[[:space:]]*:[[:space:]]*", "", v); if (v != want) { $0 = key ": " want; changed = 1 } }
                { print }
                END { exit changed ? 0 : 1 }' "$f" >"$f.new" && cat "$f.new" >"$f"
            rm -f "$f.new"
        done
        ;;
    esac
done
`,
    "debian/matrix-synapse-py3.config": `#!/bin/sh
set -e
. /usr/share/debconf/confmodule
if [ -x /opt/venvs/matrix-synapse/lib/debconf-yaml ]; then /opt/venvs/matrix-synapse/lib/debconf-yaml read; fi
db_input high matrix-synapse/server-name || true
db_input high matrix-synapse/report-stats || true
db_go
`,
    "debian/matrix-synapse-py3.postinst": `#!/bin/sh
set -e
. /usr/share/debconf/confmodule
case "$1" in
configure|reconfigure)
    mkdir -p /etc/matrix-synapse/conf.d
    if [ ! -e /etc/matrix-synapse/conf.d/server_name.yaml ]; then
        printf '# Created by the package; recreated on upgrade when deleted.\\nserver_name: \\047\\047\\n' >/etc/matrix-synapse/conf.d/server_name.yaml
    fi
    if [ ! -e /etc/matrix-synapse/conf.d/report_stats.yaml ]; then
        printf '# Created by the package; recreated on upgrade when deleted.\\nreport_stats: false\\n' >/etc/matrix-synapse/conf.d/report_stats.yaml
    fi
    /opt/venvs/matrix-synapse/lib/debconf-yaml update
    if ! getent passwd matrix-synapse >/dev/null; then
        adduser --quiet --system --group --no-create-home --home /var/lib/matrix-synapse matrix-synapse
    fi
    for dir in /var/lib/matrix-synapse /var/log/matrix-synapse /etc/matrix-synapse; do
        if ! dpkg-statoverride --list --quiet "$dir" >/dev/null; then
            dpkg-statoverride --force-statoverride-add --quiet --update --add matrix-synapse "$(id -gn matrix-synapse)" 0755 "$dir"
        fi
    done
    ;;
esac

#DEBHELPER#

exit 0
`,
    "payload/etc/matrix-synapse/homeserver.yaml": `# The package's default configuration (server_name and report_stats are in conf.d/).
pid_file: "/var/run/matrix-synapse.pid"
listeners:
  - port: 8008
    tls: false
    type: http
    x_forwarded: true
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client, federation]
database:
  name: sqlite3
  args:
    database: /var/lib/matrix-synapse/homeserver.db
log_config: "/etc/matrix-synapse/log.yaml"
media_store_path: /var/lib/matrix-synapse/media
signing_key_path: "/etc/matrix-synapse/homeserver.signing.key"
trusted_key_servers:
  - server_name: "matrix.org"
`,
    "payload/etc/matrix-synapse/log.yaml": `version: 1
handlers:
  console:
    class: logging.StreamHandler
root:
  level: INFO
  handlers: [console]
`,
};

function changelog(pkg: string, version: string): string {
    return `${pkg} (${version}) ${ROOT_SUITE}; urgency=medium\n\n  * Test build.\n\n -- pulumi-matrix tests <tests@repo.test>  Thu, 01 Jan 2026 00:00:00 +0000\n`;
}

/**
 * Builds `matrix-synapse-py3_<version>_amd64.deb` with debhelper
 * (dpkg-buildpackage), the virtualenv `venv` (a copy) as its payload.
 */
export async function buildSynapsePackage(version: string, venv: string, outDir: string): Promise<string> {
    const work = makeTempDir(`deb-${version}`);
    const src = path.join(work, "matrix-synapse-py3");
    for (const [p, content] of Object.entries(DEBIAN_FILES)) {
        fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
        fs.writeFileSync(path.join(src, p), content, { mode: p === "debian/rules" || p.startsWith("maintscripts/") ? 0o755 : 0o644 });
    }
    fs.writeFileSync(path.join(src, "debian/changelog"), changelog("matrix-synapse-py3", version));
    fs.mkdirSync(path.join(src, "payload/opt/venvs"), { recursive: true });
    await run("cp", ["-a", venv, path.join(src, "payload/opt/venvs/matrix-synapse")], { timeoutMs: 300_000 });
    const r = await run("dpkg-buildpackage", ["-b", "-uc", "-us", "-d", "--no-sign"], { cwd: src, timeoutMs: 600_000, allowFailure: true });
    if (r.code !== 0) throw new Error(`dpkg-buildpackage ${version} failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    const deb = `matrix-synapse-py3_${version}_amd64.deb`;
    fs.mkdirSync(outDir, { recursive: true });
    fs.renameSync(path.join(work, deb), path.join(outDir, deb));
    fs.rmSync(work, { recursive: true, force: true });
    return path.join(outDir, deb);
}

/** `matrix-org-archive-keyring_<version>_all.deb` shipping `keyring` where the real one does. */
export async function buildKeyringPackage(version: string, keyring: string, outDir: string): Promise<string> {
    const work = makeTempDir("deb-keyring");
    fs.mkdirSync(path.join(work, "DEBIAN"), { recursive: true });
    fs.mkdirSync(path.join(work, "usr/share/keyrings"), { recursive: true });
    fs.copyFileSync(keyring, path.join(work, "usr/share/keyrings/matrix-org-archive-keyring.gpg"));
    fs.writeFileSync(
        path.join(work, "DEBIAN/control"),
        `Package: matrix-org-archive-keyring\nVersion: ${version}\nArchitecture: all\nMaintainer: pulumi-matrix tests <tests@repo.test>\nDescription: test repository keyring\n`,
    );
    fs.mkdirSync(outDir, { recursive: true });
    const deb = path.join(outDir, `matrix-org-archive-keyring_${version}_all.deb`);
    await run("dpkg-deb", ["--root-owner-group", "-Znone", "--build", work, deb]);
    return deb;
}

// ---------------------------------------------------------------- repository

export interface AptTestRepository {
    /** http://127.0.0.1:<port>/ */
    base: string;
    /** The repository root (aptRepository.url). */
    url: string;
    /** Serves any file put under `dir` at base + name. */
    dir: string;
    /** The pool (`dir`/debian/pool/main): a .deb built here is published without a copy. */
    pool: string;
    /** Publishes an index of exactly these .debs (already in the pool or copied there), signed with `key`. */
    publish(debs: string[], key: TestKey): Promise<void>;
    /** Stops the server and removes `dir` (otherwise both go when the process exits). */
    stop(): Promise<void>;
}

/** A signed apt repository (apt-ftparchive) served by python3 -m http.server on 127.0.0.1. */
export async function startAptRepository(): Promise<AptTestRepository> {
    const dir = makeTempDir("apt-repo");
    const port = await freePort();
    const repo = path.join(dir, "debian");
    const pool = path.join(repo, "pool/main");
    fs.mkdirSync(pool, { recursive: true });
    const server = spawnDaemon("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], { name: "apt-repo-http" });
    const base = `http://127.0.0.1:${port}/`;
    await waitForHttp(base, { timeoutMs: 20_000 });
    return {
        base,
        url: `${base}debian/`,
        dir,
        pool,
        async stop() {
            await server.stop();
            removeTempDir(dir);
        },
        async publish(debs, key) {
            const dists = path.join(repo, "dists", ROOT_SUITE);
            fs.rmSync(dists, { recursive: true, force: true });
            const binary = path.join(dists, "main/binary-amd64");
            fs.mkdirSync(binary, { recursive: true });
            for (const deb of debs) {
                const inPool = path.join(pool, path.basename(deb));
                if (!fs.existsSync(inPool)) fs.copyFileSync(deb, inPool);
            }
            // Paths in the index are relative to the repository root; the pool keeps every .deb, the index lists only these.
            const packages = await run("apt-ftparchive", ["packages", "pool/main"], { cwd: repo, timeoutMs: 300_000 });
            const wanted = new Set(debs.map((d) => `pool/main/${path.basename(d)}`));
            const stanzas = packages.stdout
                .split(/\n\n+/)
                .filter((st) => st.trim() && wanted.has(/^Filename: (.+)$/m.exec(st)?.[1] ?? ""))
                .map((st) => st.trim() + "\n");
            fs.writeFileSync(path.join(binary, "Packages"), stanzas.join("\n"));
            await run("gzip", ["-k", "-9", path.join(binary, "Packages")]);
            const o = (k: string, v: string) => ["-o", `APT::FTPArchive::Release::${k}=${v}`];
            const release = await run(
                "apt-ftparchive",
                [
                    ...o("Origin", "pulumi-matrix-test"),
                    ...o("Label", "pulumi-matrix-test"),
                    ...o("Suite", ROOT_SUITE),
                    ...o("Codename", ROOT_SUITE),
                    ...o("Architectures", "amd64"),
                    ...o("Components", "main"),
                    "release",
                    ".",
                ],
                { cwd: dists },
            );
            fs.writeFileSync(path.join(dists, "Release"), release.stdout);
            const gpg = ["--batch", "--yes", "--homedir", key.home, "--local-user", key.fingerprint];
            await run("gpg", [...gpg, "--clearsign", "--output", path.join(dists, "InRelease"), path.join(dists, "Release")]);
            await run("gpg", [...gpg, "--armor", "--detach-sign", "--output", path.join(dists, "Release.gpg"), path.join(dists, "Release")]);
        },
    };
}
