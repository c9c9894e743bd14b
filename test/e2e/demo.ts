/**
 * `npm run demo`: a homeserver on a local VM, without a cloud. Boots a VM
 * from the e2e harness's Debian image (kept running in the background),
 * starts Pebble (Let's Encrypt's test CA, also kept running: the VM's certbot
 * renews against it) on this machine's loopback, deploys the default
 * MatrixStack with its nginx into the VM through the real Pulumi engine (an
 * inline program, its state in a file backend beside the VM), and prints how
 * to log in at https://matrix.demo.localhost/ (the VM's 443 and 8448 are
 * forwarded from this machine's 127.0.0.1). A second `npm run demo` reads the
 * same from the state; `npm run demo -- --down` removes the VM, Pebble and
 * the state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MatrixStack, MatrixStackArgs } from "../../components/MatrixStack";
import { Vm, bootVm, cacheRoot, detachedVmRunning, stopDetachedVm } from "../support/vm";
import { InlineStack, inlineStack, useEngine } from "../support/vm/engine";
import { PebbleServer, detachedPebbleRunning, startPebble, stopDetachedPebble } from "../support/integration/pebble";

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
const log = (s: string) => process.stderr.write(`[demo] ${s}\n`);

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

async function main(): Promise<void> {
    if (process.argv.includes("--down")) {
        const vmWas = await stopDetachedVm(VM_DIR);
        const pebbleWas = await stopDetachedPebble(PEBBLE_DIR);
        // The state only describes this VM: it goes with it.
        fs.rmSync(DIR, { recursive: true, force: true });
        log(
            `${vmWas ? "demo VM stopped" : "no demo VM was running"}, ${pebbleWas ? "Pebble stopped" : "no Pebble was running"}; ` +
                `${DIR} (VM, Pebble, Pulumi state) removed`,
        );
        return;
    }
    useEngine(log);
    if (detachedVmRunning(VM_DIR) && fs.existsSync(INFO)) {
        log(`the demo VM is already running (Pulumi state in ${PULUMI_DIR})`);
        if (!detachedPebbleRunning(PEBBLE_DIR))
            log("Pebble (the demo's CA) is no longer running: the VM cannot renew its certificate; `npm run demo -- --down` and `npm run demo` start afresh");
        const stack = await demoStack(() => Promise.reject(new Error("the demo is already deployed")));
        const outputs = Object.fromEntries(Object.entries(await stack.stack.outputs()).map(([k, v]) => [k, v.value]));
        print(JSON.parse(fs.readFileSync(INFO, "utf8")) as DemoInfo, outputs);
        return;
    }
    requirePebble();
    // A state without its running VM (or a VM without a finished deployment) is stale: start over.
    await stopDetachedVm(VM_DIR);
    await stopDetachedPebble(PEBBLE_DIR);
    fs.rmSync(PULUMI_DIR, { recursive: true, force: true });
    for (const f of [INFO, CA_FILE]) fs.rmSync(f, { force: true });
    fs.mkdirSync(DIR, { recursive: true, mode: 0o700 });
    // Guest 80 on a free port: Pebble validates HTTP-01 there (its DNS answers 127.0.0.1 for every name).
    const vm = await bootVm({ name: "matrix-demo", memoryMb: 3072, forwardTcp: [80], forwardFixed: FIXED_PORTS, detachedDir: VM_DIR, log });
    try {
        // The API on loopback: the VM reaches it at 10.0.2.2, which qemu maps to this machine's 127.0.0.1.
        const pebble = await startPebble({ httpPort: vm.forwardedPort(80), extraApiHosts: ["10.0.2.2"], detachedDir: PEBBLE_DIR });
        log(`Pebble (the demo's CA) runs in the background: ${pebble.directoryUrl}`);
        const args = demoArgs(vm, pebble);
        const stack = await demoStack(async () => {
            const s = new MatrixStack("demo", args).synapse;
            return { serverName: s.serverName, adminUserId: s.adminUserId, adminPassword: s.adminPassword, signingKeyId: s.signingKeyId };
        });
        log("deploying the stack through the Pulumi engine (about 15 minutes under software emulation)");
        const up = await stack.up("demo up");
        fs.writeFileSync(CA_FILE, await pebble.issuingRootPem());
        const keyFile = path.join(DIR, "id_ed25519");
        fs.writeFileSync(keyFile, vm.privateKeyPem, { mode: 0o600 });
        const info: DemoInfo = {
            url: BASE_URL,
            caFile: CA_FILE,
            ssh: `ssh -i ${keyFile} -p ${vm.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1`,
        };
        fs.writeFileSync(INFO, JSON.stringify(info, null, 2), { mode: 0o600 });
        print(info, up.outputs);
    } catch (e) {
        await vm.stop();
        await stopDetachedPebble(PEBBLE_DIR);
        throw e;
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        process.stderr.write(`[demo] failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
    },
);
