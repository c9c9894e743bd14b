/**
 * `npm run bench:matrix` (issue 20, section 2; as root, not in CI): what the
 * library's default stack is worth against the monoliths the seed guides
 * start, measured side by side in one run on the federation suite's harness
 * (test/support/federation/): each configuration is a pair of homeservers,
 * planned by planStack and set up by the components' own scripts in network
 * namespaces on a bridge of their own (10.231.78.0/24, not the suite's),
 * certificates from Pebble through certbot, discovery through the rendered
 * zone files. The configurations, one pair at a time:
 *   (a) the default stack: nginx, PostgreSQL, Redis, the default worker pool;
 *   (b) a Synapse monolith on SQLite (no workers, no Redis), behind nginx;
 *   (c) a Synapse monolith on PostgreSQL, behind nginx.
 * Measured on hs1 of each pair through its nginx: event send latency and rate
 * at 10 and 50 senders (each in a room of its own; all in one room), the time
 * until another client's /sync on the same server returns a message, the
 * time until a client's /sync on hs2 returns a message sent on hs1, the rate
 * hs2's client sees a burst from 10 senders on hs1, and every process's peak
 * RSS (VmHWM). Prints a table with ratios and writes bench/results.json.
 *
 * BENCH_QUICK=1: a small-scale run (2 and 5 senders, seconds per load) to try
 * it; BENCH_CONFIGS=a,c: only those configurations.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

import { planStack, type StackPlan } from "../src/model/stack";
import { useSuiteNetwork } from "../test/support/federation/client";
import {
    type AnyHomeserver,
    type HomeserverOptions,
    type HomeserverSpec,
    homeserverStackArgs,
    type PlanCa,
    planHomeserver,
    startAnyHomeserver,
} from "../test/support/federation/homeserver";
import { FederationNetwork, type Namespace } from "../test/support/federation/network";
import { startNamedZones } from "../test/support/integration/named";
import { startPebble } from "../test/support/integration/pebble";
import { findPgBinDir } from "../test/support/integration/postgres";
import { cleanupAll } from "../test/support/integration/processes";
import { ensureSynapseVenv } from "../test/support/integration/synapse-venv";
import { Api, deliveryLatencies, mapLimit, registerUser, sendLoad, SyncWatcher } from "./matrix/load";
import {
    COMPARISON_HEADER,
    comparisonRows,
    type ConfigId,
    type ConfigResult,
    evaluateTargets,
    formatTable,
    groupMemory,
    markdownTable,
    markdownTargets,
    type ProcSample,
    type SendResult,
    type Shape,
    summarize,
} from "./matrix/stats";

/** The bench's own bridge: a run of the federation suite (10.231.77.0/24, pmfed0) at the same time does not meet it. */
const SUBNET = "10.231.78.0/24";
const HUB = "10.231.78.1";
const DNS = "10.231.78.2";
const BRIDGE = "pmbench0";

/** A configuration: what the homeservers of its pair are. */
export interface BenchConfig {
    id: ConfigId;
    name: string;
    opts: HomeserverOptions;
}

const COMMON: HomeserverOptions = { subnet: SUBNET, hubAddress: HUB, rateLimits: false };

export const CONFIGS: readonly BenchConfig[] = [
    { id: "a", name: "default stack: nginx, PostgreSQL, Redis, default workers", opts: { ...COMMON, workers: "default" } },
    { id: "b", name: "monolith on SQLite (no workers, no Redis), nginx", opts: { ...COMMON, database: "sqlite" } },
    { id: "c", name: "monolith on PostgreSQL (no workers, no Redis), nginx", opts: { ...COMMON, workers: "none" } },
];

/** The pair of homeservers of configuration `id`: hs1 found by well-known delegation, hs2 by its SRV record (as the suite's). */
export function pairSpecs(id: ConfigId): [HomeserverSpec, HomeserverSpec] {
    const base = { a: 10, b: 20, c: 30 }[id];
    const spec = (n: 1 | 2): HomeserverSpec => ({
        ns: { name: `pmb-${id}${n}`, address: `10.231.78.${base + n}` },
        serverName: `${id}${n}.test`,
        domain: `matrix.${id}${n}.test`,
        delegation: n === 1 ? "well-known" : "srv",
    });
    return [spec(1), spec(2)];
}

/** Plans hs1 of configuration `id` as the bench does, without touching this machine (what test/unit/bench.test.ts runs). */
export function planConfig(id: ConfigId, dir: string, venv: string, ca: PlanCa): StackPlan {
    const cfg = CONFIGS.find((c) => c.id === id)!;
    const [spec] = pairSpecs(id);
    return planStackFor(spec, dir, venv, ca, cfg.opts);
}

function planStackFor(spec: HomeserverSpec, dir: string, venv: string, ca: PlanCa, opts: HomeserverOptions): StackPlan {
    return planStack(spec.ns.name, homeserverStackArgs(spec, dir, venv, ca, opts), { stack: "bench" });
}

/** How much of each is measured. */
export interface Scale {
    senders: number[];
    /** Each send load runs this long. */
    durationMs: number;
    /** Messages timed one at a time (same-server /sync, federation). */
    deliveries: number;
    deliveryGapMs: number;
    /** The federation burst: senders on hs1, messages each. */
    burstSenders: number;
    burstMessages: number;
}

export const FULL: Scale = { senders: [10, 50], durationMs: 15_000, deliveries: 30, deliveryGapMs: 250, burstSenders: 10, burstMessages: 20 };
export const QUICK: Scale = { senders: [2, 5], durationMs: 2_000, deliveries: 5, deliveryGapMs: 100, burstSenders: 2, burstMessages: 5 };

const log = (line: string) => process.stderr.write(`[bench:matrix ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Every process in the namespace with its peak RSS. */
function sampleNamespace(ns: Namespace): ProcSample[] {
    const pids = execFileSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
    const out: ProcSample[] = [];
    for (const pid of pids) {
        try {
            const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
            const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
            if (!hwm) continue; // a kernel thread or a zombie
            const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
            out.push({ pid, comm: fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim(), argv, peakKb: Number(hwm[1]) });
        } catch {
            // it ended meanwhile
        }
    }
    return out;
}

/** Measures one configuration's pair. */
async function measureConfig(cfg: BenchConfig, hs1: AnyHomeserver, hs2: AnyHomeserver, scale: Scale): Promise<ConfigResult> {
    const most = Math.max(...scale.senders);
    log(`${cfg.id}: registering ${most} senders and 2 observers`);
    const senders = await mapLimit([...Array(most).keys()], 4, (i) => registerUser(hs1, `sender${i}`));
    const [observer, remote] = await Promise.all([registerUser(hs1, "observer"), registerUser(hs2, "remote")]);
    log(`${cfg.id}: each sender creates a room of its own; one busy room everyone joins`);
    const ownRooms = await mapLimit(senders, 8, (api) => api.createRoom("private_chat"));
    const busy = await senders[0]!.createRoom("public_chat");
    await mapLimit(senders.slice(1), 4, (api) => api.join(busy));

    const send: SendResult[] = [];
    for (const shape of ["many-rooms", "one-room"] as Shape[]) {
        for (const n of scale.senders) {
            const load = senders.slice(0, n).map((api, i) => ({ api, roomId: shape === "many-rooms" ? ownRooms[i]! : busy }));
            // One message each first: connections opened, caches warm.
            await sendLoad(load, 1, `warm-${shape}-${n}`);
            const r = await sendLoad(load, scale.durationMs, `${shape}-${n}`);
            const s = { shape, senders: n, ...summarize(r.latencies, r.wallMs, r.errors) };
            log(`${cfg.id}: send ${shape} x${n}: ${s.count} sent (${s.errors} failed), p50 ${s.p50} p95 ${s.p95} p99 ${s.p99} ms, ${s.perSecond} msgs/s`);
            send.push(s);
        }
    }

    log(`${cfg.id}: same-server delivery to another client's /sync`);
    const syncRoom = await senders[0]!.createRoom("public_chat");
    await observer.join(syncRoom);
    const watcher = new SyncWatcher(observer, syncRoom);
    await watcher.start();
    const syncLat = await deliveryLatencies(senders[0]!, syncRoom, watcher, scale.deliveries, scale.deliveryGapMs, "sync");
    await watcher.stop();
    const sync = summarize(syncLat, 0, scale.deliveries - syncLat.length);
    log(`${cfg.id}: /sync p50 ${sync.p50} p95 ${sync.p95} ms (${sync.count}/${scale.deliveries} seen)`);

    log(`${cfg.id}: federation ${hs1.spec.serverName} -> ${hs2.spec.serverName}`);
    const fedRoom = await senders[0]!.createRoom("public_chat");
    await remoteJoin(remote, fedRoom, hs1.spec.serverName);
    const burst = senders.slice(0, scale.burstSenders);
    await mapLimit(burst.slice(1), 4, (api) => api.join(fedRoom));
    const fedWatcher = new SyncWatcher(remote, fedRoom);
    await fedWatcher.start();
    const fedLat = await deliveryLatencies(senders[0]!, fedRoom, fedWatcher, scale.deliveries, scale.deliveryGapMs, "fed");
    const federation = summarize(fedLat, 0, scale.deliveries - fedLat.length);
    log(`${cfg.id}: federation p50 ${federation.p50} p95 ${federation.p95} ms (${federation.count}/${scale.deliveries} seen)`);
    // The burst: every sender sends its messages one after another; done when hs2's client saw each one's last.
    const t0 = performance.now();
    await Promise.all(
        burst.map(async (api, s) => {
            for (let i = 0; i < scale.burstMessages; i++) await api.send(fedRoom, `burst ${s}.${i}`, `burst-${s}-${i}`);
        }),
    );
    const lasts = burst.map((_, s) => `burst ${s}.${scale.burstMessages - 1}`);
    const all = await fedWatcher.waitFor(lasts, 120_000);
    const lastSeen = Math.max(...lasts.map((b) => fedWatcher.seen.get(b) ?? NaN));
    await fedWatcher.stop();
    const total = scale.burstSenders * scale.burstMessages;
    const federationPerSecond = all ? Math.round((total * 10000) / (lastSeen - t0)) / 10 : NaN;
    const seenBurst = [...fedWatcher.seen.keys()].filter((k) => k.startsWith("burst ")).length;
    log(`${cfg.id}: federation burst: ${total} sent, ${seenBurst} seen by hs2's /sync, ${federationPerSecond} msgs/s`);

    const memory = groupMemory(sampleNamespace(hs1.spec.ns));
    return {
        id: cfg.id,
        name: cfg.name,
        synapseProcesses: 1 + hs1.workers.size,
        send,
        sync,
        federation,
        federationPerSecond,
        memory,
    };
}

/** Joins a room of another server; the first join over federation may wait for keys, so it is retried for a while. */
async function remoteJoin(api: Api, roomId: string, via: string): Promise<void> {
    const deadline = Date.now() + 180_000;
    for (;;) {
        try {
            return await api.join(roomId, via);
        } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 2000));
        }
    }
}

/** The versions of what was measured. */
function versions(venv: string): Record<string, string> {
    const out = (cmd: string, args: string[]) => {
        try {
            return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
        } catch (err) {
            const e = err as { stderr?: string };
            return (e.stderr ?? String(err)).trim();
        }
    };
    const nginx = execFileSync("bash", ["-c", "nginx -v 2>&1"], { encoding: "utf8" }).trim();
    return {
        synapse: out(path.join(venv, "bin", "python"), ["-c", "import synapse; print(synapse.__version__)"]),
        postgresql: out(path.join(findPgBinDir().binDir, "postgres"), ["--version"]),
        redis: out("redis-server", ["--version"]),
        nginx: nginx.replace(/^nginx version: /, ""),
        node: process.version,
    };
}

function machine(): Record<string, unknown> {
    const cpus = os.cpus();
    return { cores: cpus.length, memoryMb: Math.round(os.totalmem() / 2 ** 20), cpuModel: cpus[0]?.model ?? "unknown", loadAverageAtStart: os.loadavg() };
}

async function main(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error("npm run bench:matrix runs as root (network namespaces, nginx on port 443)");
    const quick = process.env.BENCH_QUICK === "1";
    const scale = quick ? QUICK : FULL;
    const chosen = (process.env.BENCH_CONFIGS ?? "a,b,c").split(",").map((s) => s.trim());
    const configs = CONFIGS.filter((c) => chosen.includes(c.id));
    const started = new Date();
    const host = machine();
    log(
        `${quick ? "quick" : "full"} run of ${configs.map((c) => c.id).join(", ")} on ${host.cores} cores (${host.cpuModel}), load ${os
            .loadavg()
            .map((l) => l.toFixed(2))
            .join(" ")}`,
    );

    const venvP = ensureSynapseVenv();
    const dnsNs: Namespace = { name: "pmb-dns", address: DNS };
    const pairs = configs.map((c) => ({ cfg: c, specs: pairSpecs(c.id) }));
    const net = await FederationNetwork.create([dnsNs, ...pairs.flatMap((p) => p.specs.map((s) => s.ns))], {
        bridge: BRIDGE,
        hubAddress: HUB,
        dnsAddress: DNS,
    });
    const results: ConfigResult[] = [];
    try {
        const pebble = await startPebble({ httpPort: 80, listenAddress: HUB });
        const venv = await venvP;
        const planned = pairs.map((p) => ({ cfg: p.cfg, plans: p.specs.map((s) => planHomeserver(s, venv, pebble, p.cfg.opts)) }));
        for (const p of planned.flatMap((x) => x.plans))
            for (const name of [p.spec.serverName, p.spec.domain]) await pebble.addARecord(name, p.spec.ns.address);
        const named = await startNamedZones(
            planned.flatMap((x) => x.plans.map((p) => p.zone)),
            { address: DNS, port: 53, netns: dnsNs.name },
        );
        useSuiteNetwork(fs.readFileSync(pebble.issuingRootFile, "utf8"), DNS);
        for (const { cfg, plans } of planned) {
            const t0 = Date.now();
            log(`${cfg.id}: starting ${plans.map((p) => p.spec.serverName).join(" and ")} (${cfg.name})`);
            const [hs1, hs2] = await Promise.all(plans.map((p) => startAnyHomeserver(p)));
            log(`${cfg.id}: up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
            try {
                results.push(await measureConfig(cfg, hs1!, hs2!, scale));
            } catch (err) {
                // One configuration failing (a timeout on a loaded machine) leaves the others' numbers.
                log(`${cfg.id}: FAILED: ${String(err)}`);
            } finally {
                await Promise.all([hs1!.stop(), hs2!.stop()]);
            }
        }
        await named.stop();
        await pebble.stop();
    } finally {
        await net.teardown();
        await cleanupAll();
    }

    const targets = evaluateTargets(results);
    const report = {
        date: started.toISOString(),
        quick,
        scale,
        machine: { ...host, loadAverageAtEnd: os.loadavg() },
        versions: versions(await venvP),
        configs: results,
        targets,
    };
    const table = formatTable(COMPARISON_HEADER, comparisonRows(results));
    console.log(`\nMatrix homeserver, three configurations (${report.date}, ${host.cores} cores, ${host.cpuModel})`);
    for (const c of results) console.log(`(${c.id}) ${c.name}`);
    console.log(`\n${table}\n`);
    for (const c of results) {
        console.log(
            `peak RSS of (${c.id})'s hs1: ${c.memory.map((m) => `${m.process}${m.processes > 1 ? ` x${m.processes}` : ""} ${m.peakRssMb}`).join(", ")} MiB`,
        );
    }
    console.log("\ntargets");
    for (const t of targets) console.log(`  ${t.met === undefined ? "n/a " : t.met ? "met " : "MISS"}  ${t.target}: ${t.measured}`);
    const file = path.join(__dirname, quick ? "results.quick.json" : "results.json");
    fs.writeFileSync(file, JSON.stringify(report, null, 4) + "\n");
    console.log(`\nfor the README:\n\n${markdownTable(results)}\n\n${markdownTargets(targets)}\n`);
    console.log(`written: ${path.relative(process.cwd(), file)}`);
}

if (require.main === module)
    main().catch((e) => {
        console.error(e);
        process.exit(1);
    });
