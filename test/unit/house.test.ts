/** Tests of the house rules that hold across every service. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { declaredGoldens, goldenFiles } from "../support/golden";

/** Every unit test file, as mocha's spec (.mocharc.json) finds them. */
function unitTestFiles(dir = __dirname): string[] {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? unitTestFiles(path.join(dir, e.name)) : e.name.endsWith(".test.ts") ? [path.join(dir, e.name)] : []));
}

describe("golden files, all services", () => {
    it("every file under test/unit/golden/ is declared by a test (no golden lingers after its render is renamed or gone)", function () {
        // The goldens are declared while the test files load: only a run that loaded them all knows every one.
        let root = this.test!.parent!;
        while (root.parent) root = root.parent;
        const loaded = new Set(root.suites.map((s) => s.file));
        const missing = unitTestFiles().filter((f) => !loaded.has(f));
        if (missing.length > 0) this.skip();
        const declared = new Set(declaredGoldens());
        const orphans = goldenFiles().filter((f) => !declared.has(f));
        assert.deepEqual(orphans, [], `golden files no test declares (remove them, or declare them with golden()): ${orphans.join(", ")}`);
    });
});
