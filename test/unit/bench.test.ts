import * as assert from "node:assert/strict";

import { CONFIGS, FULL, pairSpecs, planConfig, QUICK } from "../../bench/matrix.bench";
import {
    COMPARISON_HEADER,
    comparisonRows,
    type ConfigResult,
    evaluateTargets,
    formatTable,
    groupMemory,
    percentile,
    summarize,
} from "../../bench/matrix/stats";
import { measureCase, renderCases } from "../../bench/render.bench";
import { measure, SIZES, stackConfig } from "../../bench/workers.bench";

/**
 * `npm run bench` is run by hand, not in CI: this runs each benchmark's setup
 * and one iteration of what it measures, so a benchmark whose inputs no longer
 * pass today's checks (as when the ACME e-mail became required) fails here.
 */
describe("benchmarks (npm run bench) still run", () => {
    it("render.bench: every case renders something, and one measured iteration gives a time", () => {
        const cases = renderCases();
        assert.ok(cases.length >= 6, `only ${cases.length} cases`);
        for (const c of cases) {
            const out = c.run();
            const nonEmpty = typeof out === "string" ? out.trim().length > 0 : typeof out === "object" && out !== null && Object.keys(out).length > 0;
            assert.ok(nonEmpty, `${c.name} rendered nothing`);
            const r = measureCase(c, 1);
            assert.equal(r.name, c.name);
            assert.ok(Number.isFinite(r.usPerOp) && r.usPerOp > 0, `${c.name}: ${r.usPerOp} µs/op`);
        }
    });

    it("workers.bench: the program accepts its stack config at every pool size it measures", async function () {
        this.timeout(120000);
        assert.equal(stackConfig(2)["matrix:workers"], undefined, "the default pool sets no workers key");
        for (const n of SIZES) {
            const r = await measure(n);
            assert.equal(r.workers, n, `${n} workers asked for, ${r.workers} configured`);
            assert.ok(r.resources > 20, `only ${r.resources} resources registered with ${n} workers`);
            assert.ok(Number.isFinite(r.ms) && r.ms > 0, `${n} workers: ${r.ms} ms`);
        }
    });
});

/**
 * `npm run bench:matrix` needs root and network namespaces, so it is run by
 * hand: here its pure parts (statistics, memory grouping, the table, the
 * targets) and that each configuration still plans as the bench asks.
 */
describe("benchmark (npm run bench:matrix): its parts and its plans", () => {
    const ca = {
        directoryUrl: "https://10.231.78.1:14000/dir",
        issuingRootFile: "/tmp/pebble-root.pem",
        apiCaPem: "-----BEGIN CERTIFICATE-----\nMIIBbenchPlaceholder\n-----END CERTIFICATE-----\n",
    };

    it("percentiles are nearest-rank observed values; rates are per second of wall time", () => {
        const values = [...Array(100).keys()].map((i) => i + 1); // 1..100
        assert.equal(percentile(values, 50), 50);
        assert.equal(percentile(values, 95), 95);
        assert.equal(percentile(values, 99), 99);
        assert.equal(percentile([7], 99), 7);
        assert.ok(Number.isNaN(percentile([], 50)));
        const s = summarize([30, 10, 20, 40], 2000, 1);
        assert.deepEqual(s, { count: 4, errors: 1, p50: 20, p95: 40, p99: 40, perSecond: 2 });
    });

    it("groups processes by what they are: Synapse's main process, each worker by its config, the programs", () => {
        const rows = groupMemory([
            {
                pid: 1,
                comm: "python3",
                argv: ["/venv/bin/python", "-m", "synapse.app.homeserver", "--config-path", "/etc/homeserver.yaml"],
                peakKb: 200 * 1024,
            },
            {
                pid: 2,
                comm: "python3",
                argv: [
                    "/venv/bin/python",
                    "-m",
                    "synapse.app.generic_worker",
                    "--config-path",
                    "/etc/homeserver.yaml",
                    "--config-path",
                    "/etc/workers/federation_sender1.yaml",
                ],
                peakKb: 120 * 1024,
            },
            { pid: 3, comm: "postgres", argv: ["postgres", "-D", "/data"], peakKb: 30 * 1024 },
            { pid: 4, comm: "postgres", argv: ["postgres: checkpointer"], peakKb: 10 * 1024 },
        ]);
        assert.deepEqual(
            rows.map((r) => [r.process, r.processes, r.peakRssMb, r.sumPeakRssMb]),
            [
                ["synapse main", 1, 200, 200],
                ["synapse federation_sender1", 1, 120, 120],
                ["postgres", 2, 30, 40],
            ],
        );
    });

    it("the table puts the configurations side by side with ratios, and the targets say met or missed", () => {
        const config = (id: "a" | "b" | "c", p50: number, p95: number, perSecond: number): ConfigResult => ({
            id,
            name: id,
            synapseProcesses: id === "a" ? 3 : 1,
            send: (["many-rooms", "one-room"] as const).flatMap((shape) =>
                [10, 50].map((senders) => ({ shape, senders, count: 100, errors: 0, p50, p95, p99: p95, perSecond })),
            ),
            sync: summarize([50, 60], 0),
            federation: summarize([300, 400], 0),
            federationPerSecond: 10,
            memory: [{ process: "synapse main", processes: 1, peakRssMb: 200, sumPeakRssMb: 200 }],
        });
        const results = [config("a", 80, 150, 40), config("b", 200, 400, 10), config("c", 100, 200, 20)];
        const rows = comparisonRows(results);
        const row = rows.find((r) => r[0] === "send one-room x50 msgs/s")!;
        assert.deepEqual(row, ["send one-room x50 msgs/s", "40.0", "10.0", "20.0", "4.00x", "2.00x"]);
        const table = formatTable(COMPARISON_HEADER, rows);
        assert.match(table, /^metric\s+\(a\) default\s+\(b\) SQLite\s+\(c\) PostgreSQL\s+a\/b\s+a\/c$/m);
        assert.equal(table.split("\n").length, rows.length + 2);
        const targets = evaluateTargets(results);
        assert.equal(targets.length, 5);
        assert.ok(
            targets.every((t) => t.met === true),
            JSON.stringify(targets),
        );
        const slow = evaluateTargets([config("a", 150, 500, 15), results[1]!]);
        assert.deepEqual(
            slow.map((t) => t.met),
            [false, false, false, false, true],
        );
        assert.equal(evaluateTargets([])[0]!.met, undefined);
    });

    it("each configuration plans as the bench asks: (a) the default pool with Redis and PostgreSQL, (b) SQLite alone, (c) PostgreSQL alone", () => {
        const a = planConfig("a", "/tmp/bench-a", "/opt/venv", ca);
        assert.equal(a.postgres.kind, "local");
        assert.equal(a.redis?.kind, "local");
        assert.deepEqual(
            a.workers!.workers.map((w) => w.name),
            ["federation_reader1", "federation_sender1"],
        );
        const b = planConfig("b", "/tmp/bench-b", "/opt/venv", ca);
        assert.equal(b.postgres.kind, "sqlite");
        assert.equal(b.redis, undefined);
        assert.equal(b.workers?.workers.length ?? 0, 0);
        const c = planConfig("c", "/tmp/bench-c", "/opt/venv", ca);
        assert.equal(c.postgres.kind, "local");
        assert.equal(c.redis, undefined);
        assert.equal(c.workers?.workers.length ?? 0, 0);
        for (const [plan, id] of [
            [a, "a"],
            [b, "b"],
            [c, "c"],
        ] as const) {
            assert.equal(plan.synapse.serverName, `${id}1.test`);
            assert.ok(
                plan.proxy && plan.proxy.settings.rateLimits.registration === false && plan.proxy.settings.rateLimits.login === false,
                `${id}: the bench registers its senders through nginx`,
            );
            assert.equal(pairSpecs(id)[1].delegation, "srv");
        }
        assert.deepEqual(
            CONFIGS.map((c) => c.id),
            ["a", "b", "c"],
        );
        assert.ok(QUICK.senders.every((n, i) => n < FULL.senders[i]!));
    });
});
