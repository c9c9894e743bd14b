/**
 * Helpers of the VM suites around a deployed homeserver: an SSH tunnel to a
 * port on the VM's loopback, the units' start times (unchanged means not
 * restarted), and HTTPS requests to nginx through a forwarded port.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";

import { freeTcpPort, Vm } from "./";
import { sshOptions } from "./ssh";

/** An SSH local forward from 127.0.0.1:<free port> to a port on the VM's loopback (Synapse's own listener, behind nginx). */
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

type HttpsReply = { status: number; body: string; headers: Record<string, string | string[] | undefined>; issuer: string; names: string[] };

/** A GET over TLS to nginx on this machine's forwarded port, with SNI and Host `name`, trusting only `ca`. */
export function httpsGet(port: number, name: string, p: string, ca: string, headers: Record<string, string> = {}): Promise<HttpsReply> {
    return httpsRequest("GET", port, name, p, ca, headers);
}

/** A POST of `body` as JSON, otherwise as `httpsGet`. */
export function httpsPost(port: number, name: string, p: string, ca: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpsReply> {
    return httpsRequest("POST", port, name, p, ca, { ...headers, "content-type": "application/json" }, JSON.stringify(body));
}

function httpsRequest(method: string, port: number, name: string, p: string, ca: string, headers: Record<string, string>, body?: string): Promise<HttpsReply> {
    return new Promise((resolve, reject) => {
        const req = https.request(
            // A connection of its own (agent: false): a TLS session resumed from the agent's cache carries no peer certificate,
            // and the certificate nginx presents now is what callers check.
            { host: "127.0.0.1", port, method, path: p, servername: name, headers: { ...headers, host: name }, ca, timeout: 30_000, agent: false },
            (res) => {
                const cert = (res.socket as TLSSocket).getPeerCertificate();
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (d: string) => (text += d));
                res.on("end", () =>
                    resolve({
                        status: res.statusCode ?? 0,
                        body: text,
                        headers: res.headers,
                        issuer: JSON.stringify(cert.issuer),
                        names: (cert.subjectaltname ?? "").split(/,\s*/).filter(Boolean),
                    }),
                );
            },
        );
        req.on("timeout", () => req.destroy(new Error(`https://${name}${p} on port ${port}: no answer`)));
        req.on("error", reject);
        req.end(body);
    });
}
