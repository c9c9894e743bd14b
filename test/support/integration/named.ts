// BIND's named as a throw-away authoritative server for one zone file: its
// own temp dir, 127.0.0.1 and a free port, no control channel, run as the
// unprivileged test user, stopped by `stop()` or the suite's cleanup.

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
export async function startNamed(zone: string, zoneFile: string): Promise<NamedServer> {
    ensureTestUser();
    const dir = makeTempDir("named", { owner: TEST_USER });
    const port = await freePort();
    const zonePath = path.join(dir, `${zone}.zone`);
    const confPath = path.join(dir, "named.conf");
    fs.writeFileSync(zonePath, zoneFile, { mode: 0o644 });
    fs.writeFileSync(
        confPath,
        `options {
    directory "${dir}";
    pid-file none;
    session-keyfile none;
    managed-keys-directory "${dir}";
    listen-on port ${port} { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer { 127.0.0.1; };
};
controls { };
zone "${zone}" { type primary; file "${zonePath}"; };
`,
        { mode: 0o644 },
    );
    await run("named-checkconf", [confPath]);
    const check = await run("named-checkzone", [zone, zonePath], { allowFailure: true });
    if (check.code !== 0) throw new Error(`named-checkzone refused the zone file:\n${check.stdout}${check.stderr}`);

    // -g: foreground, logs to stderr; -n 1: one worker thread (the machine is shared).
    const daemon = spawnDaemon("named", ["-g", "-n", "1", "-c", confPath], { name: "named", user: TEST_USER });
    const digArgs = (...q: string[]) => ["@127.0.0.1", "-p", String(port), "+norecurse", "+time=2", "+tries=1", ...q];
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
