import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The current major of each action the pull-request preview example uses
 * (checked in late 2026: pulumi/actions 7.0.0 of 2026-05 moved to Node 24,
 * as did actions/checkout 7 and actions/setup-node 7). Older majors run on
 * a Node that GitHub's runners have deprecated.
 */
const CURRENT_MAJORS: Record<string, number> = { "pulumi/actions": 7, "actions/checkout": 7, "actions/setup-node": 7 };

describe("the pull-request preview example (examples/github-actions/pulumi-preview.yml)", () => {
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "examples", "github-actions", "pulumi-preview.yml"), "utf8");
    const uses = [...text.matchAll(/^\s*-?\s*uses:\s*([^\s@]+)@(\S+)/gm)].map((m) => ({ action: m[1], ref: m[2] }));

    it("uses each action at its current major, and only actions whose current major is known", () => {
        assert.deepEqual(uses.map((u) => u.action).sort(), Object.keys(CURRENT_MAJORS).sort());
        for (const u of uses) assert.equal(u.ref, `v${CURRENT_MAJORS[u.action]}`, `${u.action}@${u.ref}`);
    });
});
