/**
 * `npm run demo`: a homeserver on a local VM, without a cloud. Boots a VM
 * from the e2e harness's Debian image (kept running in the background),
 * starts Pebble (Let's Encrypt's test CA, also kept running: the VM's certbot
 * renews against it) on this machine's loopback, deploys the default
 * MatrixStack with its nginx into the VM through the real Pulumi engine (an
 * inline program, its state in a file backend beside the VM), and prints how
 * to log in at https://matrix.demo.localhost/ (the VM's 443 and 8448 are
 * forwarded from this machine's 127.0.0.1). Every step prints as it starts
 * and ends, with the time since the demo started: the engine, the image, the
 * boot, Pebble, and each command the deployment runs on the VM (from the
 * engine's events). A second `npm run demo` reads the same from the state;
 * `npm run demo -- --down` removes the VM, Pebble, the state and the
 * /etc/hosts entry. `--dry-run` says what it would do and how long it takes.
 */
import * as dns from "node:dns";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { MatrixStack, MatrixStackArgs } from "../components/MatrixStack";
import { detachedPebbleRunning, PebbleServer, startPebble, stopDetachedPebble } from "../test/support/integration/pebble";
import { bootVm, cacheRoot, detachedVmRunning, ensureBaseImage, stopDetachedVm, Vm } from "../test/support/vm";
import { InlineStack, inlineStack, useEngine } from "../test/support/vm/engine";
import { engineEventsTo, estimateLines, HOSTS_BEGIN, HOSTS_END, hostsLine, Progress, withHostsEntry, withoutHostsEntry } from "./demoProgress";

// Beside the image cache (~/.cache/pulumi-matrix/demo), not inside it.
const DIR = path.join(path.dirname(cacheRoot()), "demo");
const VM_DIR = path.join(DIR, "vm");
/** Pebble's config, certificates, logs and pid files. */
const PEBBLE_DIR = path.join(DIR, "pebble");
/** The inline program's workspace; the file backend is its `state/`. */
const PULUMI_DIR = path.join(DIR, "pulumi");
/** What the state does not hold: the URL, the CA file and the SSH command (no secrets). */
const INFO = path.join(DIR, "demo.json");
/** Pebble's issuing root: clients trust the homeserver's certificate through it. */
const CA_FILE = path.join(DIR, "ca.pem");
/** The homeserver's name and its server_name (one name: no well-known delegation to serve). */
const DOMAIN = "matrix.demo.localhost";
const BASE_URL = `https://${DOMAIN}/`;
/** Host ports on 127.0.0.1 for the VM's nginx: 443 so that the URL has no port, 8448 for federation. */
const FIXED_PORTS = { 443: 443, 8448: 8448 };
/** The system's hosts file: the demo's name is added there between markers for the demo's lifetime. */
const HOSTS_FILE = "/etc/hosts";
/** Every child of the demo's MatrixStack is named `demo-<step>`. */
const STACK_PREFIX = "demo-";

const progress = new Progress((line) => process.stderr.write(`${line}\n`));
/** Details from the harness and the engine (a step's own lines), on the progress clock. */
const log = (s: string) => progress.note(`  ${s}`);

/** The stack of the demo; `program` runs only on `up`. */
function demoStack(program: () => Promise<Record<string, unknown>>): Promise<InlineStack> {
    return inlineStack(program, log, { dir: PULUMI_DIR, projectName: "matrix-demo", stackName: "demo" });
}

/**
 * The demo's MatrixStack: pip method (matrix.org's apt repository is out of
 * reach here), NTP from qemu's host side, nginx with a certificate from
 * Pebble, which the VM reaches at qemu's host address 10.0.2.2. No Element
 * (its release cannot be downloaded here).
 */
function demoArgs(vm: Vm, pebble: PebbleServer): MatrixStackArgs {
    const c = vm.connection();
    return {
        host: { host: c.host, port: c.port, user: c.user, privateKey: c.privateKey, hostKey: c.hostKey, ntpServers: ["10.0.2.2"] },
        proxy: {
            acme: {
                email: "admin@demo.localhost",
                directoryUrl: `https://10.0.2.2:${pebble.apiPort}/dir`,
                caBundle: fs.readFileSync(pebble.apiCaFile, "utf8"),
            },
        },
        synapse: { serverName: DOMAIN, publicBaseUrl: BASE_URL, installMethod: "pip", adminUser: "admin" },
    };
}

interface DemoInfo {
    url: string;
    caFile: string;
    ssh: string;
}

function print(info: DemoInfo, outputs: Record<string, unknown>): void {
    const { serverName, adminUserId, adminPassword } = outputs as Record<string, string>;
    process.stdout.write(`
Your Matrix homeserver is running in a local VM, behind nginx.

  Homeserver URL : ${info.url}
  Server name    : ${serverName}
  Admin user     : ${adminUserId}
  Admin password : ${adminPassword}
  Demo CA        : ${info.caFile}

Its certificate comes from the demo's own test CA (Pebble, running on this
machine), which no client trusts by default: trust the CA file above (curl:
--cacert; a browser or desktop client: import it as a certificate authority,
and remove it again after --down). ${DOMAIN} reaches this machine's
127.0.0.1, where ports 443 and 8448 lead to the VM.

Log in with any Matrix client (Element, FluffyChat, Cinny, nheko...): choose
"other homeserver" / "edit", enter ${info.url}, then the user "admin" and the
password above. From a shell:

  curl -s --cacert ${info.caFile} ${info.url}_matrix/client/v3/login -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"admin"},"password":"${adminPassword}"}'

SSH into the VM:  ${info.ssh}
Remove it:        npm run demo -- --down
`);
}

/** Pebble comes from Debian's package `pebble`: say so before booting anything. */
function requirePebble(): void {
    const dirs = (process.env.PATH ?? "").split(":").filter(Boolean);
    for (const program of ["pebble", "pebble-challtestsrv"]) {
        const found = dirs.some((d) => {
            try {
                fs.accessSync(path.join(d, program), fs.constants.X_OK);
                return true;
            } catch {
                return false;
            }
        });
        if (!found) throw new Error(`${program} is not on the PATH: the demo's certificate authority is Debian's package pebble (apt-get install pebble)`);
    }
}

const USAGE = `npm run demo [-- --down | --dry-run | --help]

  (no option)  boot a local Debian VM and deploy the whole stack into it; when it
               runs already, print how to log in again
  --down       stop the VM and Pebble, remove their directory and the Pulumi state,
               and the /etc/hosts entry
  --dry-run    say what would be done and how long it would take; change nothing
  --help       this text

Needs root on Debian (scripts/e2e-deps.sh installs qemu, debootstrap, Pebble).
`;

/** Whether the Pulumi engine that useEngine() would use is built already (or a pulumi is on the PATH). */
function engineCached(): boolean {
    const cache = process.env.PULUMI_ENGINE_CACHE ?? path.join(os.homedir(), ".cache", "pulumi-engine");
    const built = fs.existsSync(cache) && fs.readdirSync(cache).some((d) => fs.existsSync(path.join(cache, d, "bin", "pulumi")));
    const onPath = (process.env.PATH ?? "").split(":").some((d) => d !== "" && fs.existsSync(path.join(d, "pulumi")));
    return built || onPath;
}

/** Whether a VM image was built before (its key may have changed since: then it is built again, about a minute). */
function imageCached(): boolean {
    const root = cacheRoot();
    return fs.existsSync(root) && fs.readdirSync(root).some((d) => fs.existsSync(path.join(root, d, "manifest.json")));
}

/** Whether the system resolver (what most non-browser clients use) already maps the demo's name to this machine. */
async function nameResolves(): Promise<boolean> {
    try {
        const all = await dns.promises.lookup(DOMAIN, { all: true });
        return all.some((a) => a.address === "127.0.0.1");
    } catch {
        return false;
    }
}

const isRoot = () => process.getuid?.() === 0;

/**
 * Makes the demo's name resolve for clients that use the system resolver:
 * browsers and curl map *.localhost to loopback themselves, but plain Debian's
 * resolver does not. As root, an /etc/hosts block between markers (removed by
 * --down); otherwise the one command that adds it.
 */
async function addHostsEntry(dryRun = false): Promise<void> {
    const hosts = fs.existsSync(HOSTS_FILE) ? fs.readFileSync(HOSTS_FILE, "utf8") : "";
    if (withoutHostsEntry(hosts) !== hosts) return progress.note(`${DOMAIN} is in ${HOSTS_FILE} (the demo's entry)`);
    if (await nameResolves()) return progress.note(`${DOMAIN} resolves to 127.0.0.1 already: ${HOSTS_FILE} is left as it is`);
    if (dryRun) return progress.note(`would add "${hostsLine("127.0.0.1", [DOMAIN])}" to ${HOSTS_FILE}, between markers, until --down`);
    if (isRoot()) {
        fs.writeFileSync(HOSTS_FILE, withHostsEntry(hosts, "127.0.0.1", [DOMAIN]));
        return progress.note(`added "${hostsLine("127.0.0.1", [DOMAIN])}" to ${HOSTS_FILE} (removed by --down)`);
    }
    progress.note(
        `${DOMAIN} does not resolve for clients that use the system resolver; add it with:\n` +
            `  printf '%s\\n' '${HOSTS_BEGIN}' '${hostsLine("127.0.0.1", [DOMAIN])}' '${HOSTS_END}' | sudo tee -a ${HOSTS_FILE}`,
    );
}

function removeHostsEntry(): string {
    if (!fs.existsSync(HOSTS_FILE)) return "";
    const hosts = fs.readFileSync(HOSTS_FILE, "utf8");
    const without = withoutHostsEntry(hosts);
    if (without === hosts) return "";
    if (!isRoot()) return `; the ${HOSTS_FILE} entry stays (run --down as root to remove it)`;
    fs.writeFileSync(HOSTS_FILE, without);
    return `; ${DOMAIN} removed from ${HOSTS_FILE}`;
}

function printEstimate(): void {
    progress.note("what takes time (measured on a 2-core machine without KVM; a fresh clone took 54 minutes with npm ci):");
    for (const line of estimateLines({ engineCached: engineCached(), imageCached: imageCached(), accel: "unknown" })) progress.note(line);
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const unknown = args.filter((a) => !["--down", "--dry-run", "--help", "-h"].includes(a));
    if (args.includes("--help") || args.includes("-h") || unknown.length > 0) {
        process.stdout.write(unknown.length > 0 ? `unknown option ${unknown.join(" ")}\n\n${USAGE}` : USAGE);
        process.exitCode = unknown.length > 0 ? 2 : 0;
        return;
    }
    if (args.includes("--down")) {
        const vmWas = await stopDetachedVm(VM_DIR);
        const pebbleWas = await stopDetachedPebble(PEBBLE_DIR);
        // The state only describes this VM: it goes with it.
        fs.rmSync(DIR, { recursive: true, force: true });
        progress.note(
            `${vmWas ? "demo VM stopped" : "no demo VM was running"}, ${pebbleWas ? "Pebble stopped" : "no Pebble was running"}; ` +
                `${DIR} (VM, Pebble, Pulumi state) removed${removeHostsEntry()}`,
        );
        return;
    }
    if (args.includes("--dry-run")) {
        const running = detachedVmRunning(VM_DIR) && fs.existsSync(INFO);
        progress.note(running ? "the demo VM runs: would print how to log in, from the state" : "would run these steps, each printed as it starts and ends:");
        if (!running) {
            for (const step of [
                "the Pulumi engine (useEngine: ../shared/pulumi-engine/build.sh, or pulumi on the PATH)",
                `the VM image (${cacheRoot()})`,
                "booting the VM matrix-demo (3 GiB, 127.0.0.1:443 and :8448 forwarded to it)",
                "Pebble, the demo's certificate authority, on 127.0.0.1",
                "pulumi up: each command on the VM (Host bootstrap, PostgreSQL, Synapse install/secrets/config, workers, Redis, nginx, certificate...)",
            ])
                progress.note(`  ${step}`);
            printEstimate();
        }
        await addHostsEntry(true);
        return;
    }
    const ticker = setInterval(() => progress.tick(), 120_000);
    ticker.unref();
    await progress.step("engine: the Pulumi CLI and plugins", () => useEngine(log));
    if (detachedVmRunning(VM_DIR) && fs.existsSync(INFO)) {
        progress.note(`the demo VM is already running (Pulumi state in ${PULUMI_DIR})`);
        if (!detachedPebbleRunning(PEBBLE_DIR))
            progress.note(
                "Pebble (the demo's CA) is no longer running: the VM cannot renew its certificate; `npm run demo -- --down` and `npm run demo` start afresh",
            );
        const stack = await demoStack(() => Promise.reject(new Error("the demo is already deployed")));
        const outputs = Object.fromEntries(Object.entries(await stack.stack.outputs()).map(([k, v]) => [k, v.value]));
        await addHostsEntry();
        print(JSON.parse(fs.readFileSync(INFO, "utf8")) as DemoInfo, outputs);
        return;
    }
    requirePebble();
    printEstimate();
    // A state without its running VM (or a VM without a finished deployment) is stale: start over.
    await stopDetachedVm(VM_DIR);
    await stopDetachedPebble(PEBBLE_DIR);
    fs.rmSync(PULUMI_DIR, { recursive: true, force: true });
    for (const f of [INFO, CA_FILE]) fs.rmSync(f, { force: true });
    fs.mkdirSync(DIR, { recursive: true, mode: 0o700 });
    await progress.step("the VM image (Debian bookworm, cached after the first build)", () => ensureBaseImage(log));
    // Guest 80 on a free port: Pebble validates HTTP-01 there (its DNS answers 127.0.0.1 for every name).
    const vm = await progress.step("booting the VM", () =>
        bootVm({ name: "matrix-demo", memoryMb: 3072, forwardTcp: [80], forwardFixed: FIXED_PORTS, detachedDir: VM_DIR, log }),
    );
    try {
        progress.note(
            vm.accel === "kvm"
                ? "the VM runs with KVM: the deployment takes well under the 34 minutes measured under emulation"
                : "the VM runs under software emulation (no usable KVM): the deployment takes about 34 minutes on 2 cores",
        );
        // The API on loopback: the VM reaches it at 10.0.2.2, which qemu maps to this machine's 127.0.0.1.
        const pebble = await progress.step("Pebble, the demo's certificate authority", () =>
            startPebble({ httpPort: vm.forwardedPort(80), extraApiHosts: ["10.0.2.2"], detachedDir: PEBBLE_DIR }),
        );
        log(`Pebble runs in the background: ${pebble.directoryUrl}`);
        const args = demoArgs(vm, pebble);
        const stack = await demoStack(async () => {
            const s = new MatrixStack("demo", args).synapse;
            return { serverName: s.serverName, adminUserId: s.adminUserId, adminPassword: s.adminPassword, signingKeyId: s.signingKeyId };
        });
        const up = await progress.step("pulumi up: the stack, through the Pulumi engine", () => stack.up("demo up", engineEventsTo(progress, STACK_PREFIX)));
        fs.writeFileSync(CA_FILE, await pebble.issuingRootPem());
        const keyFile = path.join(DIR, "id_ed25519");
        fs.writeFileSync(keyFile, vm.privateKeyPem, { mode: 0o600 });
        // The VM's host key is known (the harness injected it): the printed command verifies it, as the deployment did.
        const knownHosts = path.join(DIR, "known_hosts");
        fs.writeFileSync(knownHosts, `[127.0.0.1]:${vm.sshPort} ${vm.hostKey}\n`, { mode: 0o600 });
        const info: DemoInfo = {
            url: BASE_URL,
            caFile: CA_FILE,
            ssh: `ssh -i ${keyFile} -p ${vm.sshPort} -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts} root@127.0.0.1`,
        };
        fs.writeFileSync(INFO, JSON.stringify(info, null, 2), { mode: 0o600 });
        await addHostsEntry();
        print(info, up.outputs);
    } catch (e) {
        await vm.stop();
        await stopDetachedPebble(PEBBLE_DIR);
        throw e;
    }
}

main().then(
    () => process.exit(process.exitCode ?? 0),
    (e) => {
        progress.note(`failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
    },
);
