/**
 * `npm run demo`: a homeserver on a local VM, without a cloud. Boots a VM
 * from the e2e harness's Debian image (kept running in the background),
 * deploys the default MatrixStack into it with the components' own
 * commands, and prints how to log in. `npm run demo -- --down` removes it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { bootVm, cacheRoot, detachedVmRunning, ensureBaseImage, stopDetachedVm } from "./harness";
import { deploy, vmStackArgs } from "./deploy";

// Beside the image cache (~/.cache/pulumi-matrix/demo), not inside it.
const DIR = path.join(path.dirname(cacheRoot()), "demo");
const VM_DIR = path.join(DIR, "vm");
const INFO = path.join(DIR, "demo.json");
const log = (s: string) => process.stderr.write(`[demo] ${s}\n`);

interface DemoInfo {
    url: string;
    serverName: string;
    adminUserId: string;
    adminPassword: string;
    ssh: string;
}

function print(info: DemoInfo): void {
    process.stdout.write(`
Your Matrix homeserver is running in a local VM.

  Homeserver URL : ${info.url}
  Server name    : ${info.serverName}
  Admin user     : ${info.adminUserId}
  Admin password : ${info.adminPassword}

Log in with any Matrix client (Element, FluffyChat, Cinny, nheko...): choose
"other homeserver" / "edit", enter ${info.url}, then the user "admin" and the
password above. From a shell:

  curl -s ${info.url}_matrix/client/v3/login -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"admin"},"password":"${info.adminPassword}"}'

SSH into the VM:  ${info.ssh}
Remove it:        npm run demo -- --down
`);
}

async function main(): Promise<void> {
    if (process.argv.includes("--down")) {
        const was = await stopDetachedVm(VM_DIR);
        fs.rmSync(DIR, { recursive: true, force: true });
        log(was ? "demo VM stopped and removed" : "no demo VM was running");
        return;
    }
    if (detachedVmRunning(VM_DIR) && fs.existsSync(INFO)) {
        log("the demo VM is already running");
        print(JSON.parse(fs.readFileSync(INFO, "utf8")) as DemoInfo);
        return;
    }
    await stopDetachedVm(VM_DIR);
    fs.mkdirSync(DIR, { recursive: true, mode: 0o700 });
    await ensureBaseImage(log);
    const vm = await bootVm({ name: "matrix-demo", memoryMb: 3072, forwardTcp: [8008], detachedDir: VM_DIR, log });
    try {
        const port = vm.forwardedPort(8008);
        const args = vmStackArgs(vm, {
            serverName: "demo.localhost",
            publicBaseUrl: `http://127.0.0.1:${port}/`,
            // The VM's Synapse answers on its network address too, so qemu can forward it
            // to this machine's loopback; the firewall admits only qemu's host side.
            httpBindAddresses: ["0.0.0.0"],
        });
        args.host.firewall = { rules: [{ port: 8008, protocol: "tcp", sources: ["10.0.2.2/32"], owner: "demo: forwarded to this machine's loopback" }] };
        log("deploying the stack (about 10 minutes under software emulation)");
        const d = await deploy(args, new Map(), log);
        const keyFile = path.join(DIR, "id_ed25519");
        fs.writeFileSync(keyFile, vm.privateKeyPem, { mode: 0o600 });
        const info: DemoInfo = {
            url: `http://127.0.0.1:${port}/`,
            serverName: d.outputs.serverName,
            adminUserId: d.outputs.adminUserId,
            adminPassword: d.outputs.adminPassword,
            ssh: `ssh -i ${keyFile} -p ${vm.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1`,
        };
        fs.writeFileSync(INFO, JSON.stringify(info, null, 2), { mode: 0o600 });
        print(info);
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
