/**
 * Runs the library's real MatrixStack against harness VMs: the Pulumi SDK
 * registers resources in the order the components declare, and the
 * executing mocks run each command over SSH as the provider would on create.
 */
import { spawn, ChildProcess } from "node:child_process";
import { MatrixStack, MatrixStackArgs } from "../../components/MatrixStack";
import { ExecutingMocks, Vm, freeTcpPort, runProgram, settle } from "./harness";
import { sshOptions } from "./harness/ssh";

export interface Deployment {
    stack: MatrixStack;
    mocks: ExecutingMocks;
    outputs: { signingKeyId: string; adminUserId: string; adminPassword: string; registrationSharedSecret: string; serverName: string; version: string };
    seconds: number;
}

/** Settings for a VM of the harness: pip method (matrix.org's apt repository is out of reach here), NTP to the host's loopback. */
export function vmStackArgs(vm: Vm, synapse: Partial<MatrixStackArgs["synapse"]> = {}, extra: Partial<MatrixStackArgs> = {}): MatrixStackArgs {
    const c = vm.connection();
    return {
        host: { host: c.host, port: c.port, user: c.user, privateKey: c.privateKey, hostKey: c.hostKey, ntpServers: ["10.0.2.2"] },
        synapse: { serverName: "matrix.test", publicBaseUrl: "https://matrix.test/", installMethod: "pip", adminUser: "admin", ...synapse },
        ...extra,
    };
}

/** Deploys (or re-deploys with the same Pulumi-side state) and resolves the stack outputs. */
export async function deploy(args: MatrixStackArgs, state: Map<string, Record<string, any>>, log: (s: string) => void): Promise<Deployment> {
    const mocks = new ExecutingMocks({ state, log });
    const t0 = Date.now();
    const stack = await runProgram(() => new MatrixStack("e2e", args), mocks, { project: "matrix", stack: "e2e" });
    const s = stack.synapse;
    const [signingKeyId, adminUserId, adminPassword, registrationSharedSecret, serverName, version] = await Promise.all([
        settle(s.signingKeyId),
        settle(s.adminUserId!),
        settle(s.adminPassword!),
        settle(s.registrationSharedSecret),
        settle(s.serverName),
        settle(s.version),
    ]);
    const seconds = Math.round((Date.now() - t0) / 1000);
    log(`deployment took ${seconds} s; per component:\n${mocks.summaryText()}`);
    return { stack, mocks, outputs: { signingKeyId, adminUserId, adminPassword, registrationSharedSecret, serverName, version }, seconds };
}

/** An SSH local forward from 127.0.0.1:<free port> to a port on the VM's loopback (Synapse listens there until the reverse proxy exists). */
export async function tunnel(vm: Vm, remotePort: number): Promise<{ port: number; close(): void }> {
    const port = await freeTcpPort();
    const c = vm.connection();
    const child: ChildProcess = spawn(
        "ssh",
        [
            ...sshOptions({ host: c.host, port: c.port, user: c.user, privateKey: c.privateKey, hostKey: c.hostKey }),
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            `127.0.0.1:${port}:127.0.0.1:${remotePort}`,
            c.host,
        ],
        { stdio: "ignore" },
    );
    const close = () => {
        if (child.exitCode === null) child.kill("SIGTERM");
    };
    process.once("exit", close);
    for (let i = 0; i < 100; i++) {
        try {
            await fetch(`http://127.0.0.1:${port}/health`);
            return { port, close };
        } catch {
            if (child.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 200));
        }
    }
    close();
    throw new Error(`ssh tunnel to ${vm.name}:${remotePort} did not come up`);
}

/** When each unit last entered the active state: unchanged means not restarted. */
export async function startTimestamps(vm: Vm, units: string[]): Promise<Record<string, string>> {
    const r = await vm.exec(units.map((u) => `echo "${u}=$(systemctl show -p ActiveEnterTimestampMonotonic --value ${u})"`).join("; "));
    return Object.fromEntries(
        r.stdout
            .trim()
            .split("\n")
            .map((l) => l.split("=") as [string, string]),
    );
}
