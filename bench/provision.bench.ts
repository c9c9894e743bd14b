/**
 * `npm run bench:provision` (by hand, not in CI): what the library costs over
 * the least anyone must do to get the same services running, on fresh VMs
 * booted from the e2e harness's image, one after the other:
 *
 * - the floor: a plain bash script (bench/provision.ts floorScript) installs
 *   the packages the library's own scripts install, Synapse from the same
 *   pinned requirements, and starts PostgreSQL, Redis, nginx, Synapse and the
 *   same workers;
 * - the library: the README quickstart's config on a fresh VM, the first
 *   `pulumi up` through the real engine (Pebble on loopback for certificates,
 *   Element's fixture release served from here), timed per step from the
 *   engine's events and summed per component; then a no-op `up`, and the
 *   drift check of the full stack on the VM.
 *
 * Prints a table and writes bench/results.json under `provision` (other keys
 * are other benchmarks', kept).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import type { EngineEvent } from "@pulumi/pulumi/automation";

import { ReleaseServer } from "../test/support/integration/elementReleases";
import { PebbleServer, startPebble } from "../test/support/integration/pebble";
import { bootVm, ensureBaseImage, Vm } from "../test/support/vm";
import { EngineStack, projectCopy, readmeBlock, ROOT, runShell, useEngine } from "../test/support/vm/engine";
import { quickstartScript } from "../test/support/vm/quickstart";
import { byComponent, floorScript, InstallPlan, mergeResults, parsePhases, ProvisionResults, stepsOf, table, TimedEvent } from "./provision";

const log = (s: string) => process.stderr.write(`[bench:provision] ${s}\n`);
const ELEMENT_VERSION = "1.11.999";
const TARGET = 1.3;
// A long boot timeout: on a loaded machine under TCG, SSH can take minutes to come up.
const VM_OPTIONS = { memoryMb: 3072, bootTimeoutMs: 15 * 60_000, log };
const RESULTS = path.join(ROOT, "bench", "results.json");

/** The plan, from the program under mocks in a fresh process (mocks and the engine do not share one). */
function plan(): InstallPlan {
    const out = execFileSync(process.execPath, [...process.execArgv, path.join(__dirname, "provision.ts"), "plan"], { encoding: "utf8", maxBuffer: 64 << 20 });
    return JSON.parse(out.trim().split("\n").pop()!) as InstallPlan;
}

async function floor(p: InstallPlan): Promise<ProvisionResults["floor"]> {
    const vm = await bootVm({ name: "bench-floor", ...VM_OPTIONS });
    try {
        log(`floor VM up in ${vm.bootSeconds} s (${vm.accel}); running the plain script`);
        const t0 = Date.now();
        const r = await vm.exec("bash -s", { stdin: floorScript(p), timeoutMs: 90 * 60_000 });
        const seconds = (Date.now() - t0) / 1000;
        if (r.code !== 0) throw new Error(`the floor script failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        return { seconds, phases: parsePhases(r.stdout) };
    } finally {
        await vm.stop();
    }
}

/** Waits while another build of the engine runs on this machine (its --env would start a second one). */
async function engineBuildIdle(): Promise<void> {
    for (;;) {
        let busy = "";
        try {
            busy = execFileSync("pgrep", ["-f", "pulumi-engine/build.sh"], { encoding: "utf8" }).trim();
        } catch {
            return;
        }
        log(`waiting for the engine build already running (pid ${busy.split("\n").join(", ")})`);
        await new Promise((r) => setTimeout(r, 30_000));
    }
}

async function library(): Promise<{
    lib: ProvisionResults["library"];
    noop: ProvisionResults["noopUp"];
    drift: ProvisionResults["drift"];
    engine: string;
    accel: string;
}> {
    await engineBuildIdle();
    const engine = useEngine(log);
    const vm: Vm = await bootVm({ name: "bench-lib", forwardTcp: [80, 443, 8448], ...VM_OPTIONS });
    let pebble: PebbleServer | undefined;
    const releases = new ReleaseServer();
    try {
        log(`library VM up in ${vm.bootSeconds} s (${vm.accel})`);
        pebble = await startPebble({ httpPort: vm.forwardedPort(80), extraApiHosts: ["10.0.2.2"] });
        await releases.start(fs.mkdtempSync(path.join(os.tmpdir(), "bench-element-")), [ELEMENT_VERSION]);
        const dir = projectCopy("pm-bench-provision-");
        const c = vm.connection();
        const keyFile = path.join(dir, ".bench-ssh-key");
        fs.writeFileSync(keyFile, c.privateKey, { mode: 0o600 });
        // The quickstart's config lines, as the smoke suite follows them; the `up` is run below, timed.
        const script = quickstartScript(
            readmeBlock("## Quickstart"),
            { port: c.port, keyFile, hostKey: c.hostKey },
            {
                acmeDirectoryUrl: `https://10.0.2.2:${pebble.apiPort}/dir`,
                acmeCaFile: pebble.apiCaFile,
                element: {
                    version: ELEMENT_VERSION,
                    sha256: releases.sha256.get(ELEMENT_VERSION)!,
                    downloadUrl: `http://10.0.2.2:${releases.port}/element-v{version}.tar.gz`,
                },
                // No MatrixRTC (bench/provision.ts's mock config says the same): the floor script has no counterpart for it.
            },
        )
            .split("\n")
            .filter((l) => !/^pulumi (preview|up|stack output)\b/.test(l))
            .join("\n");
        const cfg = await runShell(dir, script);
        if (cfg.code !== 0) throw new Error(`the quickstart's config failed:\n${cfg.stdout}\n${cfg.stderr}`);
        const stack = await EngineStack.select(dir, "dev", log);
        const events: TimedEvent[] = [];
        const t0 = Date.now();
        let text = "";
        try {
            await stack.stack.up({
                color: "never",
                onOutput: (s) => (text += s),
                onEvent: (e: EngineEvent) => events.push({ ...e, at: Date.now() } as TimedEvent),
            });
        } catch (e) {
            log(`first up failed:\n${text.slice(-6000)}`);
            throw e;
        }
        const firstUpSeconds = (Date.now() - t0) / 1000;
        const components = byComponent(stepsOf(events, t0));
        log(`first up: ${firstUpSeconds.toFixed(0)} s`);
        const noop = await stack.up("no-op up");
        const d0 = Date.now();
        const drift = await vm.exec("/usr/local/sbin/pulumi-matrix-drift", { timeoutMs: 30 * 60_000 });
        const driftSeconds = (Date.now() - d0) / 1000;
        if (drift.code !== 0) log(`drift check exit ${drift.code}:\n${drift.stdout.slice(-2000)}\n${drift.stderr.slice(-2000)}`);
        return {
            lib: { firstUpSeconds, components },
            noop: { seconds: noop.seconds, changes: noop.changes as Record<string, number> },
            drift: { seconds: driftSeconds, exitCode: drift.code },
            engine: engine.version,
            accel: vm.accel,
        };
    } finally {
        await vm.stop();
        await pebble?.stop();
        await releases.stop();
    }
}

async function main(): Promise<void> {
    const img = await ensureBaseImage(log);
    log(`image: ${img.cached ? "cached" : `built in ${img.buildSeconds} s`}`);
    const p = plan();
    log(`plan: ${p.packages.length} packages (${p.packages.join(" ")}), Synapse ${p.synapseVersion}, workers ${p.workers.join(", ")}`);
    // The floor first: it needs no engine, which may still be building.
    const fl = await floor(p);
    log(`floor: ${fl.seconds.toFixed(0)} s (${fl.phases.map((x) => `${x.name} at ${x.at.toFixed(0)}`).join(", ")})`);
    const cpu = os.cpus();
    const machine = `${cpu.length} x ${cpu[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`;
    // Kept at once: the library's run takes far longer and may be cut short.
    writeResults({ date: new Date().toISOString(), machine, synapseVersion: p.synapseVersion, packages: p.packages, floor: fl, library: "not measured yet" });
    const lib = await library();
    const results: ProvisionResults = {
        date: new Date().toISOString(),
        machine,
        accel: lib.accel,
        engine: lib.engine,
        synapseVersion: p.synapseVersion,
        packages: p.packages,
        workers: p.workers,
        library: lib.lib,
        floor: fl,
        ratio: lib.lib.firstUpSeconds / fl.seconds,
        target: TARGET,
        noopUp: lib.noop,
        drift: lib.drift,
        note:
            lib.accel === "tcg"
                ? "VMs under qemu TCG (no KVM): installs about ten times slower than on a cloud VM; the machine was shared with other work"
                : "the machine was shared with other work",
    };
    console.log(`\nprovisioning: library vs. plain script, fresh VMs from one image (${results.accel})\n${table(results)}`);
    writeResults(results);
}

/** Sets bench/results.json's `provision`, keeping every other benchmark's key. */
function writeResults(value: unknown): void {
    const existing = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, "utf8") : undefined;
    fs.writeFileSync(RESULTS, mergeResults(existing, "provision", value));
    // In the repository's style (`npm run lint` checks it), so a committed run keeps the tree green.
    execFileSync(path.join(ROOT, "node_modules", ".bin", "prettier"), ["--write", RESULTS], { stdio: "ignore" });
    log(`written to ${RESULTS} under "provision"`);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
