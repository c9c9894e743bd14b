// TXT records in the mock DNS server (pebble-challtestsrv) of a running
// Pebble (support/pebble.ts), for DNS-01 validations: Pebble's validation
// authority asks that server for `_acme-challenge.<name>` TXT records.
//
// pebble.ts starts challtestsrv with a management API on a free loopback
// port but does not hand that port out (its API is being extended by
// others); until it does, the port is read from the command line of the
// challtestsrv process pebble.ts started in Pebble's own directory (the
// directory of `apiCaFile`, which is that process's working directory).

import * as fs from "node:fs";
import * as path from "node:path";
import type { PebbleServer } from "./pebble";

/** The TXT side of challtestsrv's management API. */
export interface ChalltestsrvTxt {
    /** The management API's base URL, e.g. http://127.0.0.1:40201 */
    readonly managementUrl: string;
    /** Adds a TXT value for `name` (`_acme-challenge.example.com`, with or without the final dot). */
    setTxt(name: string, value: string): Promise<void>;
    /** Removes every TXT value of `name`. */
    clearTxt(name: string): Promise<void>;
}

/** The management API of the challtestsrv that `pebble` asks for DNS. */
export function challtestsrvOf(pebble: Pick<PebbleServer, "apiCaFile">): ChalltestsrvTxt {
    const dir = fs.realpathSync(path.dirname(pebble.apiCaFile));
    const found: string[] = [];
    for (const e of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(e)) continue;
        try {
            const argv = fs.readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
            if (path.basename(argv[0] ?? "") !== "pebble-challtestsrv" || fs.readlinkSync(`/proc/${e}/cwd`) !== dir) continue;
            const i = argv.indexOf("-management");
            if (i >= 0 && argv[i + 1]) found.push(argv[i + 1]);
        } catch {
            /* exited meanwhile, or not ours to read */
        }
    }
    if (found.length !== 1) throw new Error(`expected one pebble-challtestsrv running in ${dir}, found ${found.length}`);
    const managementUrl = `http://${found[0]}`;
    const post = async (endpoint: string, body: unknown): Promise<void> => {
        const res = await fetch(`${managementUrl}${endpoint}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`POST ${managementUrl}${endpoint}: HTTP ${res.status} ${await res.text()}`);
    };
    const fqdn = (name: string) => (name.endsWith(".") ? name : `${name}.`);
    return {
        managementUrl,
        setTxt: (name, value) => post("/set-txt", { host: fqdn(name), value }),
        clearTxt: (name) => post("/clear-txt", { host: fqdn(name) }),
    };
}
