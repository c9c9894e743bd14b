import * as assert from "node:assert/strict";

import { MatrixStack, MatrixStackArgs } from "../../../components/MatrixStack";
import { resolveSynapseSettings, SynapseOptions } from "../../../src/model/synapse";
import { stackArgs } from "./fixtures";
import { runWithMocks } from "./mocks";

/** Deploys a MatrixStack "prod" under mocks; resolves once its signing key id and admin password are known. */
export async function deployStack(args: MatrixStackArgs = stackArgs()) {
    return runWithMocks(
        () => new MatrixStack("prod", args),
        (s) => [s.synapse.signingKeyId, s.synapse.adminPassword!],
    );
}

/** Resolving Synapse's settings for example.com with `o`, as a thunk for `assert.throws`. */
export const resolveSynapse = (o: Partial<SynapseOptions>) => () => resolveSynapseSettings('SynapseHomeserver "s"', { serverName: "example.com", ...o });

/** `fn` throws an error that names `setting is value` and matches `valid` (what would be valid). */
export function rejects(fn: () => unknown, setting: string, value: string, valid: RegExp): void {
    assert.throws(fn, (e: Error) => {
        assert.match(e.message, new RegExp(`${setting.replace(/[.[\]]/g, "\\$&")} is ${value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
        assert.match(e.message, valid);
        return true;
    });
}
