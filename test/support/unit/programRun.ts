import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";

import { RecordingMocks } from "./mocks";

/**
 * Every default Pulumi.yaml declares, as the CLI hands it to the program
 * (keys without the `matrix:` namespace): text, arrays as JSON, "" and []
 * included.
 */
export function declaredConfig(): Record<string, string> {
    const project = parse(fs.readFileSync(path.join(__dirname, "..", "..", "..", "Pulumi.yaml"), "utf8")) as { config: Record<string, { default?: unknown }> };
    return Object.fromEntries(
        Object.entries(project.config)
            .filter(([, d]) => d.default !== undefined)
            .map(([k, d]) => [k.replace(/^matrix:/, ""), typeof d.default === "string" ? d.default : JSON.stringify(d.default)]),
    );
}

/** Loads src/program.ts afresh under mocks with the given stack config (keys without the `matrix:` namespace). */
export async function runProgram(config: Record<string, string>, secretKeys: string[] = [], mocks = new RecordingMocks()) {
    await pulumi.runtime.setMocks(mocks, "matrix", "dev", false);
    pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(config).map(([k, v]) => [`matrix:${k}`, v])),
        secretKeys.map((k) => `matrix:${k}`),
    );
    const file = require.resolve("../../../src/program");
    delete require.cache[file];
    const program = require(file) as Record<string, pulumi.Output<unknown>>;
    return { mocks, program };
}

/** Runs the program expecting it to fail; returns the error and what reached the mocks meanwhile. */
export async function programError(config: Record<string, string>, secretKeys: string[] = ["sshPrivateKey"], settle = 50) {
    const mocks = new RecordingMocks();
    let error: unknown;
    try {
        await runProgram(config, secretKeys, mocks);
    } catch (e) {
        // The program ends on a bad setting with a RunError (message only); the original error is its cause.
        assert.ok(e instanceof pulumi.RunError, `not a RunError: ${String(e)}`);
        assert.equal(e.message, (e as { cause?: Error }).cause?.message);
        error = (e as { cause?: Error }).cause;
    }
    assert.ok(error instanceof Error, `the program ran with ${JSON.stringify(config)}`);
    // Give registrations begun before the failure time to reach the mocks.
    await new Promise((r) => setTimeout(r, settle));
    return { error, message: error.message, mocks };
}
