/**
 * `npm run bench` (second part): the stack program (src/program.ts) evaluated
 * under Pulumi's mocks with pools of 2, 8, 32 and 128 workers, each in a
 * fresh process: how long until every resource is registered, and the
 * process's peak memory. Printed as a table; no pass/fail, numbers to compare
 * (growth should be linear in the workers; the default stack well under 2 s).
 * `stackConfig()` and `measure()` are what test/unit/bench.test.ts runs once,
 * so the config keeps passing the program's checks; the table is made only
 * when this file is executed directly.
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";

import * as pulumi from "@pulumi/pulumi";

import { WORKER_ROLE_SPECS, WORKER_ROLES, WorkerCounts } from "../src/model/workers";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../test/support/unit/fixtures";
import { RecordingMocks } from "../test/support/unit/mocks";

/** Counts by role adding up to `n`: the default pool for 2, then spread over the roles (at most 20 each, the default port block). */
function pool(n: number): WorkerCounts | undefined {
    if (n === 2) return undefined;
    const counts: WorkerCounts = {};
    let left = n;
    for (const role of WORKER_ROLES.filter((r) => WORKER_ROLE_SPECS[r].instances === "one")) {
        if (left <= 0 || n < 32) break;
        counts[role] = 1;
        left--;
    }
    const many = WORKER_ROLES.filter((r) => WORKER_ROLE_SPECS[r].instances === "many" && r !== "media_repository");
    for (let i = 0; left > 0; i++, left--) {
        const role = many[i % (n < 32 ? 3 : many.length)];
        counts[role] = (counts[role] ?? 0) + 1;
    }
    return counts;
}

export interface Result {
    /** Workers the program configured (counted in the pool's config script, not taken from the request). */
    workers: number;
    resources: number;
    ms: number;
    peakRssMb: number;
}

/** The pool sizes measured, each in a fresh process. */
export const SIZES = [2, 8, 32, 128];

/** The stack config of a default single-host stack with a pool of `n` workers (every key a stack needs today). */
export function stackConfig(n: number): Record<string, string> {
    const counts = pool(n);
    return {
        "matrix:sshHost": "203.0.113.10",
        "matrix:sshPrivateKey": TEST_SSH_KEY,
        "matrix:sshHostKey": TEST_HOST_KEY,
        "matrix:serverName": "example.com",
        "matrix:adminUser": "admin",
        "matrix:acmeEmail": "admin@example.com",
        // Without MatrixRTC: its releases must be pinned (rtc.test.ts covers it).
        "matrix:rtc": "none",
        ...(counts ? { "matrix:workers": JSON.stringify(counts) } : {}),
        // From the default 8100, 20 ports per role reach nginx's federation port 8448 with this many roles: such a pool takes another block, as the program asks.
        ...(n > 32 ? { "matrix:workerBasePort": "10100" } : {}),
    };
}

/** One measurement, in this process: the program under mocks until the last resource is registered. */
export async function measure(n: number): Promise<Result> {
    let last = 0;
    class TimedMocks extends RecordingMocks {
        override newResource(args: pulumi.runtime.MockResourceArgs) {
            last = performance.now();
            return super.newResource(args);
        }
    }
    const mocks = new TimedMocks();
    await pulumi.runtime.setMocks(mocks, "matrix", "bench", false);
    pulumi.runtime.setAllConfig(stackConfig(n), ["matrix:sshPrivateKey"]);
    // Loaded afresh: in the unit test another file may have loaded the program already.
    const program = require.resolve("../src/program");
    delete require.cache[program];
    const t0 = performance.now();
    require(program);
    // Registration is asynchronous: wait until nothing new arrives for a while.
    let seen = -1;
    for (let quiet = 0; quiet < 20;) {
        await new Promise((r) => setTimeout(r, 10));
        quiet = mocks.resources.length === seen ? quiet + 1 : 0;
        seen = mocks.resources.length;
    }
    // The workers the program configured: one `worker_name:` per worker's config file in the pool's config script.
    const config = mocks.resources.find((r) => r.type === "command:remote:Command" && r.name.endsWith("-workers-config"));
    const workers = (String(config?.inputs.stdin ?? "").match(/^\s*worker_name: /gm) ?? []).length;
    return { workers, resources: mocks.resources.length, ms: last - t0, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function main(): Promise<void> {
    const arg = process.argv[2];
    if (arg) {
        process.stdout.write(JSON.stringify(await measure(Number(arg))));
        return;
    }
    const rows: Result[] = [];
    for (const n of SIZES) {
        // A fresh process per size, so peak memory is that size's own.
        const out = execFileSync(process.execPath, [...process.execArgv, __filename, String(n)], { encoding: "utf8" });
        rows.push(JSON.parse(out.trim().split("\n").pop()!) as Result);
    }
    console.log("\nstack program under mocks, by pool size (each in a fresh process)");
    console.log(`${"workers".padStart(8)} ${"resources".padStart(10)} ${"time ms".padStart(9)} ${"ms/worker".padStart(10)} ${"peak RSS MiB".padStart(13)}`);
    for (const r of rows) {
        console.log(
            `${String(r.workers).padStart(8)} ${String(r.resources).padStart(10)} ${r.ms.toFixed(0).padStart(9)} ${(r.ms / r.workers).toFixed(1).padStart(10)} ${r.peakRssMb.toFixed(0).padStart(13)}`,
        );
    }
    const [small, large] = [rows[0], rows[rows.length - 1]];
    const perWorker = (large.ms - small.ms) / (large.workers - small.workers);
    console.log(`growth: ${perWorker.toFixed(1)} ms per added worker between ${small.workers} and ${large.workers} workers`);
}

if (require.main === module)
    main().catch((e) => {
        console.error(e);
        process.exit(1);
    });
