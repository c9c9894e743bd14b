/**
 * `npm run bench` (second part): the stack program (src/program.ts) evaluated
 * under Pulumi's mocks with pools of 2, 8, 32 and 128 workers, each in a
 * fresh process: how long until every resource is registered, and the
 * process's peak memory. Printed as a table; no pass/fail, numbers to compare
 * (growth should be linear in the workers; the default stack well under 2 s).
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";

import * as pulumi from "@pulumi/pulumi";

import { WORKER_ROLE_SPECS, WORKER_ROLES, WorkerCounts } from "../src/model/workers";
import { TEST_SSH_KEY } from "../test/support/unit/fixtures";
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

interface Result {
    workers: number;
    resources: number;
    ms: number;
    peakRssMb: number;
}

/** One measurement, in this process: the program under mocks until the last resource is registered. */
async function measure(n: number): Promise<Result> {
    let last = 0;
    class TimedMocks extends RecordingMocks {
        override newResource(args: pulumi.runtime.MockResourceArgs) {
            last = performance.now();
            return super.newResource(args);
        }
    }
    const mocks = new TimedMocks();
    await pulumi.runtime.setMocks(mocks, "matrix", "bench", false);
    const counts = pool(n);
    pulumi.runtime.setAllConfig(
        {
            "matrix:sshHost": "203.0.113.10",
            "matrix:sshPrivateKey": TEST_SSH_KEY,
            "matrix:serverName": "example.com",
            "matrix:adminUser": "admin",
            ...(counts ? { "matrix:workers": JSON.stringify(counts) } : {}),
        },
        ["matrix:sshPrivateKey"],
    );
    const t0 = performance.now();
    require("../src/program");
    // Registration is asynchronous: wait until nothing new arrives for a while.
    let seen = -1;
    for (let quiet = 0; quiet < 20;) {
        await new Promise((r) => setTimeout(r, 10));
        quiet = mocks.resources.length === seen ? quiet + 1 : 0;
        seen = mocks.resources.length;
    }
    const workers = mocks.resources.filter((r) => r.type === "matrix:index:WorkerPool").length ? n : 0;
    return { workers, resources: mocks.resources.length, ms: last - t0, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function main(): Promise<void> {
    const arg = process.argv[2];
    if (arg) {
        process.stdout.write(JSON.stringify(await measure(Number(arg))));
        return;
    }
    const rows: Result[] = [];
    for (const n of [2, 8, 32, 128]) {
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

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
