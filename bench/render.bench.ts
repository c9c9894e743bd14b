/**
 * `npm run bench`: how long rendering takes (it runs in every `pulumi preview`).
 * Prints time per render and heap growth; no pass/fail, numbers to compare.
 */
import { performance } from "node:perf_hooks";

import { checkSupportedOs, resolveHostSettings } from "../src/model/host";
import { resolvePostgresSettings } from "../src/model/postgres";
import { resolveSynapseSettings } from "../src/model/synapse";
import { hostBootstrapScript } from "../src/provision/host";
import { postgresInstallScript } from "../src/provision/postgres";
import { synapseConfigScript, synapseInstallScript } from "../src/provision/synapse";
import { renderHomeserverYaml, renderLogConfig } from "../src/render/synapse/homeserver";

function bench(name: string, iterations: number, fn: () => unknown): void {
    for (let i = 0; i < Math.min(50, iterations); i++) fn();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    const ms = (performance.now() - t0) / iterations;
    const heap = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
    console.log(`${name.padEnd(40)} ${(ms * 1000).toFixed(1).padStart(9)} µs/op  heap ${heap >= 0 ? "+" : ""}${heap.toFixed(1)} MiB over ${iterations} ops`);
}

const os = checkSupportedOs("bench", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"');
const pg = resolvePostgresSettings("bench", {});
const settings = () => resolveSynapseSettings("bench", { serverName: "example.com", installMethod: "pip" });
const peers = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };
const host = resolveHostSettings("bench", {});
const s = settings();

bench("resolve + validate Synapse settings", 5000, settings);
bench("homeserver.yaml", 5000, () => renderHomeserverYaml("bench", s, peers));
bench("log.yaml", 5000, () => renderLogConfig(s));
bench("host bootstrap script", 5000, () => hostBootstrapScript(host, os));
bench("PostgreSQL server script", 5000, () => postgresInstallScript(pg, "bench"));
bench("Synapse install + config scripts", 5000, () => {
    synapseInstallScript(s, os);
    synapseConfigScript(s, peers, "bench");
});
