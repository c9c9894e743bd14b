/**
 * Helpers of the VM suites around a deployed homeserver: an SSH tunnel to a
 * port on the VM's loopback, and the units' start times (unchanged means not
 * restarted).
 */
import { spawn, ChildProcess } from "node:child_process";
import { Vm, freeTcpPort } from "./harness";
import { sshOptions } from "./harness/ssh";

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
