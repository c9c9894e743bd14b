// BIND's named as a throw-away authoritative server for zone files: its own
// temp dir, 127.0.0.1 and a free port (or an address and port of a network
// namespace), no control channel, run as the unprivileged test user, stopped
// by `stop()` or the suite's cleanup.

import * as fs from "node:fs";
import * as path from "node:path";

import { freePort } from "./net";
import { ensureTestUser, makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon, TEST_USER } from "./processes";

export interface NamedServer {
    port: number;
    daemon: SpawnedDaemon;
    /** The answer section of `dig <name> <type>`, one record per entry, whitespace collapsed (`name ttl class type rdata`). */
    dig(name: string, type: string): Promise<string[]>;
    /** The response code dig reports for a query (NOERROR, NXDOMAIN, ...). */
    status(name: string, type: string): Promise<string>;
    /** Every record of the zone, by zone transfer (AXFR). */
    transfer(): Promise<string[]>;
    stop(): Promise<void>;
}

const answers = (stdout: string): string[] =>
    stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/).join(" "))
        .filter((l) => l !== "" && !l.startsWith(";"));

/** Checks the zone file with named-checkzone, then serves it. */
export function startNamed(zone: string, zoneFile: string): Promise<NamedServer> {
    return startNamedZones([{ zone, file: zoneFile }]);
}

export interface NamedOptions {
    /** The address it listens on and dig asks (default 127.0.0.1). */
    address?: string;
    /** Default: a free port of this machine. */
    port?: number;
    /** Run in this network namespace (where `address` is). */
    netns?: string;
}

/** Checks each zone file with named-checkzone, then serves them all (`dig`, `status` and `transfer` ask about the first zone). */
export async function startNamedZones(zones: { zone: string; file: string }[], opts: NamedOptions = {}): Promise<NamedServer> {
    ensureTestUser();
    const dir = makeTempDir("named", { owner: TEST_USER });
    const address = opts.address ?? "127.0.0.1";
    const port = opts.port ?? (await freePort());
    const zone = zones[0]!.zone;
    const confPath = path.join(dir, "named.conf");
    const zoneLines: string[] = [];
    for (const z of zones) {
        const zonePath = path.join(dir, `${z.zone}.zone`);
        fs.writeFileSync(zonePath, z.file, { mode: 0o644 });
        zoneLines.push(`zone "${z.zone}" { type primary; file "${zonePath}"; };`);
        const check = await run("named-checkzone", [z.zone, zonePath], { allowFailure: true });
        if (check.code !== 0) throw new Error(`named-checkzone refused the zone file of ${z.zone}:\n${check.stdout}${check.stderr}`);
    }
    fs.writeFileSync(
        confPath,
        `options {
    directory "${dir}";
    pid-file none;
    session-keyfile none;
    managed-keys-directory "${dir}";
    listen-on port ${port} { ${address}; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer { any; };
};
controls { };
${zoneLines.join("\n")}
`,
        { mode: 0o644 },
    );
    await run("named-checkconf", [confPath]);

    // -g: foreground, logs to stderr; -n 1: one worker thread (the machine is shared).
    const daemon = spawnDaemon("named", ["-g", "-n", "1", "-c", confPath], { name: "named", user: TEST_USER, netns: opts.netns });
    const digArgs = (...q: string[]) => [`@${address}`, "-p", String(port), "+norecurse", "+time=2", "+tries=1", ...q];
    const server: NamedServer = {
        port,
        daemon,
        dig: async (name, type) => answers((await run("dig", digArgs("+noall", "+answer", name, type))).stdout),
        status: async (name, type) => /status: ([A-Z]+)/.exec((await run("dig", digArgs(name, type))).stdout)?.[1] ?? "no answer",
        transfer: async () => answers((await run("dig", digArgs("+noall", "+answer", zone, "AXFR"))).stdout),
        stop: () => daemon.stop(),
    };
    // Ready once it answers for the zone's SOA.
    const deadline = Date.now() + 30_000;
    for (;;) {
        if (daemon.hasExited()) throw new Error(`named exited:\n${daemon.tail(30)}`);
        const r = await run("dig", digArgs("+short", zone, "SOA"), { allowFailure: true });
        if (r.code === 0 && r.stdout.trim() !== "") return server;
        if (Date.now() > deadline) {
            await daemon.stop();
            throw new Error(`named did not answer within 30 s:\n${daemon.tail(30)}`);
        }
        await sleep(200);
    }
}
