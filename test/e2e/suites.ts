/**
 * Mocha entry of the e2e suite (the only "spec" of test/e2e/.mocharc.json).
 *
 * Mocha appends a config file's `spec` to the files named on the command
 * line, so a plain glob there would run every e2e test even when one file is
 * named. This entry loads test/e2e/**\/*.test.ts (the harness self-test
 * first) only when no test file was named:
 *
 *   npm run test:e2e                                                -> every e2e test
 *   npx mocha --config test/e2e/.mocharc.json test/e2e/x.test.ts   -> only x.test.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";

const TEST_FILE = /\.(test|spec)\.[cm]?[jt]s$/;

function findTests(dir: string): string[] {
    const out: string[] = [];
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
            if (e.name !== "node_modules" && !e.name.startsWith(".")) out.push(...findTests(p));
        } else if (TEST_FILE.test(e.name)) {
            out.push(p);
        }
    }
    return out;
}

const named = process.argv.slice(2).some((a) => !a.startsWith("-") && TEST_FILE.test(a));
if (!named) {
    const e2eDir = __dirname;
    const first = path.join(e2eDir, "harness.test.ts");
    const files = findTests(e2eDir).sort((a, b) => (a === first ? -1 : b === first ? 1 : a.localeCompare(b)));
    for (const f of files) require(f);
}
