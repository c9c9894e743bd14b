/**
 * `npm run demo`: a homeserver on a local VM, without a cloud. Boots a VM
 * from the e2e harness's Debian image (kept running in the background),
 * deploys the default MatrixStack into it through the real Pulumi engine (an
 * inline program, its state in a file backend beside the VM), and prints how
 * to log in. A second `npm run demo` reads the same from the state;
 * `npm run demo -- --down` removes the VM and the state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MatrixStack, MatrixStackArgs } from "../../components/MatrixStack";
import { Vm, bootVm, cacheRoot, detachedVmRunning, ensureBaseImage, stopDetachedVm } from "./harness";
import { InlineStack, inlineStack, useEngine } from "./engine";

// Beside the image cache (~/.cache/pulumi-matrix/demo), not inside it.
const DIR = path.join(path.dirname(cacheRoot()), "demo");
const VM_DIR = path.join(DIR, "vm");
/** The inline program's workspace; the file backend is its `state/`. */
const PULUMI_DIR = path.join(DIR, "pulumi");
/** What the state does not hold: the URL and the SSH command (no secrets). */
const INFO = path.join(DIR, "demo.json");
const log = (s: string) => process.stderr.write(`[demo] ${s}\n`);

/** The stack of the demo; `program` runs only on `up`. */
function demoStack(program: () => Promise<Record<string, unknown>>): Promise<InlineStack> {
    return inlineStack(program, log, { dir: PULUMI_DIR, projectName: "matrix-demo", stackName: "demo" });
}

/** The demo's MatrixStack: pip method (matrix.org's apt repository is out of reach here), NTP from qemu's host side, Synapse on the VM's addresses. */
function demoArgs(vm: Vm, port: number): MatrixStackArgs {
    const c = vm.connection();
    return {
        host: {
            host: c.host,
            port: c.port,
            user: c.user,
            privateKey: c.privateKey,
            hostKey: c.hostKey,
            ntpServers: ["10.0.2.2"],
            firewall: { rules: [{ port: 8008, protocol: "tcp", sources: ["10.0.2.2/32"], owner: "demo: forwarded to this machine's loopback" }] },
        },
        proxy: false,
        synapse: {
            serverName: "demo.localhost",
            publicBaseUrl: `http://127.0.0.1:${port}/`,
            installMethod: "pip",
            adminUser: "admin",
            // The VM's Synapse answers on its network address too, so qemu can forward it
            // to this machine's loopback; the firewall admits only qemu's host side.
            httpBindAddresses: ["0.0.0.0"],
        },
    };
}

interface DemoInfo {
    url: string;
    ssh: string;
}

function print(info: DemoInfo, outputs: Record<string, unknown>): void {
    const { serverName, adminUserId, adminPassword } = outputs as Record<string, string>;
    process.stdout.write(`
Your Matrix homeserver is running in a local VM.

  Homeserver URL : ${info.url}
  Server name    : ${serverName}
  Admin user     : ${adminUserId}
  Admin password : ${adminPassword}

Log in with any Matrix client (Element, FluffyChat, Cinny, nheko...): choose
"other homeserver" / "edit", enter ${info.url}, then the user "admin" and the
password above. From a shell:

  curl -s ${info.url}_matrix/client/v3/login -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"admin"},"password":"${adminPassword}"}'

SSH into the VM:  ${info.ssh}
Remove it:        npm run demo -- --down
`);
}

async function main(): Promise<void> {
    if (process.argv.includes("--down")) {
        const was = await stopDetachedVm(VM_DIR);
        // The state only describes this VM: it goes with it.
        fs.rmSync(DIR, { recursive: true, force: true });
        log(was ? "demo VM stopped, it and its Pulumi state removed" : "no demo VM was running; its directory is removed");
        return;
    }
    useEngine(log);
    if (detachedVmRunning(VM_DIR) && fs.existsSync(INFO)) {
        log(`the demo VM is already running (Pulumi state in ${PULUMI_DIR})`);
        const stack = await demoStack(() => Promise.reject(new Error("the demo is already deployed")));
        const outputs = Object.fromEntries(Object.entries(await stack.stack.outputs()).map(([k, v]) => [k, v.value]));
        print(JSON.parse(fs.readFileSync(INFO, "utf8")) as DemoInfo, outputs);
        return;
    }
    // A state without its running VM (or a VM without a finished deployment) is stale: start over.
    await stopDetachedVm(VM_DIR);
    fs.rmSync(PULUMI_DIR, { recursive: true, force: true });
    fs.rmSync(INFO, { force: true });
    fs.mkdirSync(DIR, { recursive: true, mode: 0o700 });
    await ensureBaseImage(log);
    const vm = await bootVm({ name: "matrix-demo", memoryMb: 3072, forwardTcp: [8008], detachedDir: VM_DIR, log });
    try {
        const port = vm.forwardedPort(8008);
        const stack = await demoStack(async () => {
            const s = new MatrixStack("demo", demoArgs(vm, port)).synapse;
            return { serverName: s.serverName, adminUserId: s.adminUserId, adminPassword: s.adminPassword, signingKeyId: s.signingKeyId };
        });
        log("deploying the stack through the Pulumi engine (about 10 minutes under software emulation)");
        const up = await stack.up("demo up");
        const keyFile = path.join(DIR, "id_ed25519");
        fs.writeFileSync(keyFile, vm.privateKeyPem, { mode: 0o600 });
        const info: DemoInfo = {
            url: `http://127.0.0.1:${port}/`,
            ssh: `ssh -i ${keyFile} -p ${vm.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1`,
        };
        fs.writeFileSync(INFO, JSON.stringify(info, null, 2), { mode: 0o600 });
        print(info, up.outputs);
    } catch (e) {
        await vm.stop();
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
