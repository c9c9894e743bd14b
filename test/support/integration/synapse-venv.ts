// Wrapper around scripts/synapse-venv.sh: a cached virtualenv with
// matrix-synapse[SYNAPSE_PIP_EXTRAS]==VERSION from PyPI on Debian's /usr/bin/python3.

import * as path from "node:path";

import { DEFAULT_SYNAPSE_VERSION, SYNAPSE_PIP_EXTRAS } from "../../../src/model/synapse";
import { run } from "./processes";

/**
 * The Synapse release the integration suite runs: the one the library pins
 * and installs by default (1.163.2, the newest on PyPI when this was written).
 */
export const SYNAPSE_TEST_VERSION: string = DEFAULT_SYNAPSE_VERSION;

export const SYNAPSE_VENV_SCRIPT = path.resolve(__dirname, "..", "..", "..", "scripts", "synapse-venv.sh");

export interface SynapseVenvOptions {
    /**
     * Cache root (default $PULUMI_MATRIX_CACHE_DIR or ~/.cache/pulumi-matrix).
     * Pick one outside /root when Synapse must run as another OS user.
     */
    cacheDir?: string;
    /** Bound on a cold build (default 10 min). */
    timeoutMs?: number;
}

const inFlight = new Map<string, Promise<string>>();

/** Ensures the venv (cached; built once, ~20 s cold) and returns its directory. */
export function ensureSynapseVenv(version: string = SYNAPSE_TEST_VERSION, opts: SynapseVenvOptions = {}): Promise<string> {
    const key = `${version}|${opts.cacheDir ?? ""}`;
    let p = inFlight.get(key);
    if (!p) {
        const env: NodeJS.ProcessEnv = { ...process.env };
        if (opts.cacheDir) env.PULUMI_MATRIX_CACHE_DIR = opts.cacheDir;
        p = run("bash", [SYNAPSE_VENV_SCRIPT, version, SYNAPSE_PIP_EXTRAS], { env, timeoutMs: opts.timeoutMs ?? 600_000 }).then((r) => {
            const dir = r.stdout.trim().split("\n").pop() ?? "";
            if (!dir.startsWith("/")) throw new Error(`synapse-venv.sh printed no directory:\n${r.stdout}\n${r.stderr}`);
            return dir;
        });
        inFlight.set(key, p);
        p.catch(() => inFlight.delete(key));
    }
    return p;
}
