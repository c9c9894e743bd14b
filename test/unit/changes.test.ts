import * as assert from "node:assert/strict";
import { MatrixStack } from "../../components/MatrixStack";
import { RecordingMocks, runWithMocks } from "./mocks";
import { stackArgs } from "./fixtures";

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

    it("maxUploadSize: only Synapse's config command (which restarts Synapse), not PostgreSQL's", async () => {
        assert.deepEqual(changed(await run(), await run({ maxUploadSize: "100M" })), ["prod-synapse-config"]);
    });

    it("a new Synapse version: the install and config commands", async () => {
        assert.deepEqual(changed(await run(), await run({ version: "1.164.0" })).sort(), ["prod-synapse-config", "prod-synapse-install"]);
    });
});
