/**
 * `npm run bench`: how long rendering takes (it runs in every `pulumi preview`).
 * Prints time per render and heap growth; no pass/fail, numbers to compare.
 * The cases are built by `renderCases()`, which test/unit/bench.test.ts runs
 * once, so the inputs keep passing today's checks; the timing loop runs only
 * when this file is executed directly.
 */
import { performance } from "node:perf_hooks";

import { checkSupportedOs, resolveHostSettings } from "../src/model/host";
import { resolvePostgresSettings } from "../src/model/postgres";
import { resolveSynapseSettings } from "../src/model/synapse";
import { hostBootstrapScript } from "../src/provision/host";
import { postgresInstallScript } from "../src/provision/postgres";
import { synapseConfigScript, synapseInstallScript } from "../src/provision/synapse";
import { renderHomeserverYaml, renderLogConfig } from "../src/render/synapse/homeserver";

/** One thing to time: `run` does it once and returns what it produced. */
export interface RenderCase {
    name: string;
    iterations: number;
    run: () => unknown;
}

export interface CaseResult {
    name: string;
    iterations: number;
    usPerOp: number;
    heapMiB: number;
}

/** The inputs (settings as a default single-host stack resolves them) and the renders measured on them. */
export function renderCases(): RenderCase[] {
    const os = checkSupportedOs("bench", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"');
    const pg = resolvePostgresSettings("bench", {});
    const settings = () => resolveSynapseSettings("bench", { serverName: "example.com", installMethod: "pip" });
    const peers = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };
    const host = resolveHostSettings("bench", {});
    const s = settings();
    return [
        { name: "resolve + validate Synapse settings", iterations: 5000, run: settings },
        { name: "homeserver.yaml", iterations: 5000, run: () => renderHomeserverYaml("bench", s, peers) },
        { name: "log.yaml", iterations: 5000, run: () => renderLogConfig(s) },
        { name: "host bootstrap script", iterations: 5000, run: () => hostBootstrapScript(host, os) },
        { name: "PostgreSQL server script", iterations: 5000, run: () => postgresInstallScript(pg, "bench") },
        { name: "Synapse install + config scripts", iterations: 5000, run: () => synapseInstallScript(s, os) + synapseConfigScript(s, peers, "bench") },
    ];
}

/** Times `iterations` runs of a case after a warm-up (up to 50 runs, so the JIT has seen it). */
export function measureCase(c: RenderCase, iterations = c.iterations): CaseResult {
    for (let i = 0; i < Math.min(50, iterations); i++) c.run();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) c.run();
    const ms = (performance.now() - t0) / iterations;
    return { name: c.name, iterations, usPerOp: ms * 1000, heapMiB: (process.memoryUsage().heapUsed - heap0) / 1024 / 1024 };
}

function main(): void {
    for (const c of renderCases()) {
        const r = measureCase(c);
        const heap = `${r.heapMiB >= 0 ? "+" : ""}${r.heapMiB.toFixed(1)}`;
        console.log(`${r.name.padEnd(40)} ${r.usPerOp.toFixed(1).padStart(9)} µs/op  heap ${heap} MiB over ${r.iterations} ops`);
    }
}

if (require.main === module) main();
