import * as assert from "node:assert/strict";

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
