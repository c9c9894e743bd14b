// Mocha root hook plugin (registered in test/integration/.mocharc.json under
// "require"): after the whole run, passed or failed, stop every process and
// remove every temp dir the support helpers started. processes.ts also does
// it synchronously on exit and on SIGINT/SIGTERM.

import { cleanupAll, pendingCleanups } from "./processes";

export const mochaHooks = {
    async afterAll(this: unknown): Promise<void> {
        const pending = pendingCleanups();
        if (pending.length > 0 && process.env.PULUMI_MATRIX_VERBOSE === "1") {
            process.stderr.write(`[cleanup] ${pending.length} resource(s): ${pending.join(", ")}\n`);
        }
        await cleanupAll();
    },
};
