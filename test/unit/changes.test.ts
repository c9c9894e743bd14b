import * as assert from "node:assert/strict";
import { MatrixStack } from "../../components/MatrixStack";
import { RecordingMocks, runWithMocks } from "../support/unit/mocks";
import { stackArgs } from "../support/unit/fixtures";

/** Which resources would update: those whose inputs differ between two runs. */
function changed(a: RecordingMocks, b: RecordingMocks): string[] {
    const before = new Map(a.resources.map((r) => [`${r.type}/${r.name}`, JSON.stringify(r.inputs)]));
    return b.resources.filter((r) => before.get(`${r.type}/${r.name}`) !== JSON.stringify(r.inputs)).map((r) => r.name);
}

async function run(overrides = {}) {
    const { mocks } = await runWithMocks(
        () => new MatrixStack("prod", stackArgs(overrides)),
        (s) => [s.synapse.signingKeyId],
    );
    return mocks;
}

describe("what a change re-runs", () => {
    it("the same settings twice: nothing changes", async () => {
        assert.deepEqual(changed(await run(), await run()), []);
    });

    it("maxUploadSize: Synapse's config command (which restarts Synapse) and nginx's (client_max_body_size follows), not PostgreSQL's", async () => {
        const before = await run();
        const after = await run({ maxUploadSize: "100M" });
        assert.deepEqual(changed(before, after).sort(), ["prod-proxy-nginx", "prod-synapse-config"]);
        const diff = (name: string) => {
            const lines = (m: RecordingMocks) => new Set(String(m.byName(name).inputs.stdin).split("\n"));
            const [a, b] = [lines(before), lines(after)];
            return [...b].filter((l) => !a.has(l));
        };
        assert.deepEqual(diff("prod-proxy-nginx"), ["    client_max_body_size 100M;"]);
    });

    it("a new Synapse version: the install and config commands", async () => {
        assert.deepEqual(changed(await run(), await run({ version: "1.164.0" })).sort(), ["prod-synapse-config", "prod-synapse-install"]);
    });
});
