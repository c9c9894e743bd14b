// A "remote" client for a server on this machine, and a certificate like the
// library's private CA makes (components/privateCa.ts): what the TLS-between-
// hosts tests (PostgreSQL, Redis) need, written once.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { registerCleanup, run } from "./processes";

/**
 * A network namespace `ns` joined to this one by a veth pair: `hostIf`
 * carries `server`/30 here, the namespace's `v1` carries `client`/30, so a
 * server here sees the namespace's connections from a non-loopback address.
 * Removed when the suite ends.
 */
export async function addClientNamespace(ns: string, hostIf: string, server: string, client: string): Promise<void> {
    const ip = (...a: string[]) => run("ip", a);
    const remove = () => {
        spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        spawnSync("ip", ["link", "del", hostIf], { stdio: "ignore" });
    };
    registerCleanup({ name: `network namespace ${ns}`, run: remove, runSync: remove });
    await ip("netns", "add", ns);
    await ip("link", "add", hostIf, "type", "veth", "peer", "name", "v1", "netns", ns);
    await ip("addr", "add", `${server}/30`, "dev", hostIf);
    await ip("link", "set", hostIf, "up");
    await ip("-n", ns, "addr", "add", `${client}/30`, "dev", "v1");
    await ip("-n", ns, "link", "set", "v1", "up");
    await ip("-n", ns, "link", "set", "lo", "up");
}

/**
 * In `dir`: `ca.key`/`ca.crt` (a CA) and `server.key`/`server.crt` signed by
 * it for `commonName` with `ips` as IP SANs; EC P-256, valid two days, as
 * the shape components/privateCa.ts makes with @pulumi/tls (whose provider
 * runs only inside the engine).
 */
export async function makeServerCertificate(dir: string, commonName: string, ips: string[]): Promise<void> {
    const o = (...a: string[]) => run("openssl", a, { cwd: dir });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    await o("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test CA", "-days", "2");
    await o("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${commonName}`);
    fs.writeFileSync(path.join(dir, "san.ext"), `subjectAltName=${ips.map((a) => `IP:${a}`).join(",")}\n`);
    await o(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    );
}
