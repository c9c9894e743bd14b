import * as assert from "node:assert/strict";

import { MatrixStack } from "../../components/MatrixStack";
import { ADOPT_FILES, AdoptOptions, resolveAdoptSettings, SYNAPSE_SCHEMA_VERSIONS } from "../../src/model/adopt";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { planStack } from "../../src/model/stack";
import { DEFAULT_SYNAPSE_VERSION } from "../../src/model/synapse";
import { adoptPreflightScript, adoptScript } from "../../src/provision/adopt";
import { renderAdoptConfigs } from "../../src/render/adopt";
import { golden } from "../support/golden";
import { goldenSynapseSettings, stackArgs } from "../support/unit/fixtures";
import { ADOPTED_TEST_KEY, runWithMocks, valueOf } from "../support/unit/mocks";

const C = 'SynapseAdoption "adopt"';
const PEERS = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };
const resolve = (o: AdoptOptions = {}, sqlite = false) => resolveAdoptSettings(C, o, { ...goldenSynapseSettings(), sqlite });

function rejects(f: () => unknown, message: RegExp, component = /^SynapseAdoption "adopt": /): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, component);
        assert.match(e.message, message);
        return true;
    });
}

describe("adoption: the model", () => {
    it("defaults to the Debian package's layout", () => {
        const s = resolve();
        assert.equal(s.configDir, "/etc/matrix-synapse");
        assert.deepEqual(s.configPaths, ["/etc/matrix-synapse/homeserver.yaml", "/etc/matrix-synapse/conf.d/"]);
        assert.equal(s.venvDir, "/opt/venvs/matrix-synapse");
        assert.equal(s.unit, "matrix-synapse.service");
        assert.equal(s.synapse.schemaVersion, SYNAPSE_SCHEMA_VERSIONS[DEFAULT_SYNAPSE_VERSION]);
    });

    it("refuses paths that are not absolute, a unit that is no service and a key URL elsewhere", () => {
        rejects(
            () => resolve({ configDir: "etc/matrix-synapse" }),
            /configDir is "etc\/matrix-synapse"; expected an absolute path such as \/etc\/matrix-synapse/,
        );
        rejects(() => resolve({ venvDir: "venv" }), /venvDir is "venv"; expected an absolute path/);
        rejects(() => resolve({ unit: "synapse; rm -rf /" }), /unit is .*expected a systemd service name/);
        rejects(() => resolve({ keyUrl: "http://127.0.0.1:8008/other" }), /keyUrl is .*expected the server's key URL/);
    });

    it("refuses SQLite for the stack's Synapse", () => {
        rejects(() => resolve({}, true), /sqlite is "set"; expected Synapse on PostgreSQL: .*ported into the stack's PostgreSQL database/);
    });
});

describe("adoption: the stack plan", () => {
    it("refuses adoption together with a restore, and with synapse.sqlite, before any host is touched", () => {
        rejects(
            () =>
                planStack(
                    "prod",
                    {
                        ...stackArgs(),
                        adopt: {},
                        backup: {
                            repository: "s3:https://s3.example.com/bucket",
                            restoreFrom: "latest",
                            password: "x",
                            s3AccessKeyId: "a",
                            s3SecretAccessKey: "b",
                        },
                    },
                    { stack: "prod" },
                ),
            /adopt is set together with backup\.restoreFrom "latest"; expected one source for the server's data/,
            /^MatrixStack "prod"/,
        );
        rejects(
            () => planStack("prod", { ...stackArgs({ sqlite: {} }), postgres: undefined, adopt: {} }, { stack: "prod" }),
            /adopt is set together with synapse\.sqlite; expected .*remove synapse\.sqlite/,
            /MatrixStack "prod"/,
        );
        rejects(
            () => planStack("prod", { ...stackArgs(), adopt: { configDir: "relative" } }, { stack: "prod" }),
            /configDir is "relative"/,
            /SynapseAdoption "prod-adopt"/,
        );
    });
});

describe("adoption: scripts", () => {
    const s = () => resolve();
    golden("adopt", "scripts/preflight.sh", () => adoptPreflightScript(s()));
    golden("adopt", "scripts/adopt.sh", () => adoptScript(s(), goldenSynapseSettings(), PEERS));
    golden("adopt", "snapshot.yaml", () => renderAdoptConfigs(s(), goldenSynapseSettings(), PEERS, ADOPT_FILES).sqlite);
    golden("adopt", "postgres.yaml", () => renderAdoptConfigs(s(), goldenSynapseSettings(), PEERS, ADOPT_FILES).postgres);

    it("the preflight only reads: the SQLite file opened read only, nothing installed, moved or stopped", () => {
        const text = adoptPreflightScript(s());
        assert.match(text, /\?mode=ro/);
        for (const change of [
            /systemctl (stop|disable)/,
            /pre-adoption/,
            /install -d -m 0700 -o root -g root \/var\/lib\/pulumi-matrix\/adopt/,
            /synapse_port_db/,
            /pm_write /,
        ])
            assert.doesNotMatch(text, change);
    });

    it("the port never names the SQLite file as its source: it ports snapshot copies", () => {
        const text = adoptScript(s(), goldenSynapseSettings(), PEERS);
        assert.match(text, /synapse_port_db --sqlite-database \/var\/lib\/pulumi-matrix\/adopt\/snapshot\.db/);
        assert.match(text, /update_synapse_database --database-config \/var\/lib\/pulumi-matrix\/adopt\/snapshot\.yaml --run-background-updates/);
    });
});

describe("adoption: SynapseAdoption in a MatrixStack, under mocks", () => {
    it("preflight first, Synapse takes the adopted key, the port between Synapse's secrets and its first start", async () => {
        const { mocks, result } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), adopt: {} }),
            (r) => [r.synapse.signingKeyId],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-synapse-config"); i++) await new Promise((r) => setTimeout(r, 100));
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("prod-adopt-preflight") < seq("prod-synapse-install"), "the preflight runs before Synapse is installed");
        assert.ok(seq("prod-synapse-secrets") < seq("prod-adopt-port"));
        assert.ok(seq("prod-adopt-port") < seq("prod-synapse-config"), "Synapse first starts after the port");
        const preflight = mocks.byName("prod-adopt-preflight");
        assert.ok(preflight.secretInputs.includes("stdin") && preflight.inputs.logging === "none", "the preflight's output (the key) is secret");
        assert.ok(!mocks.byName("prod-adopt-port").secretInputs.includes("stdin"), "the port shows in previews");
        assert.equal(await valueOf(result.synapse.signingKeyId), ADOPTED_TEST_KEY.split(" ")[1]);
        assert.ok(!mocks.resources.some((r) => r.name === "prod-synapse-signing-key"), "no new key is generated");
        for (const r of mocks.resources.filter((r) => r.type === "command:remote:Command" && !r.secretInputs.includes("stdin")))
            assert.ok(!String(r.inputs.stdin).includes(ADOPTED_TEST_KEY.split(" ")[2]), `${r.name} shows the adopted key`);
    });
});
