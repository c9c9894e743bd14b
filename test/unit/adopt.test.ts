import * as assert from "node:assert/strict";

import { MatrixStack } from "../../components/MatrixStack";
import { ADOPT_FILES, AdoptOptions, resolveAdoptSettings, SYNAPSE_SCHEMA_VERSIONS } from "../../src/model/adopt";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { planStack } from "../../src/model/stack";
import { DEFAULT_SYNAPSE_VERSION } from "../../src/model/synapse";
import { adoptPreflightScript, adoptScript } from "../../src/provision/adopt";
import { ADOPT_OLD_DATABASE_PY, libpqConninfo, renderAdoptConfigs } from "../../src/render/adopt";

const renderAdoptOldDatabasePy = () => ADOPT_OLD_DATABASE_PY;
import { golden } from "../support/golden";
import { goldenSynapseSettings, stackArgs } from "../support/unit/fixtures";
import { ADOPTED_TEST_KEY, runWithMocks, valueOf } from "../support/unit/mocks";

const C = 'SynapseAdoption "adopt"';
const PEERS = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };
const LOCAL_DB = { database: "synapse", user: "synapse", port: 5432 };
const resolve = (o: AdoptOptions = {}, sqlite = false, database: typeof LOCAL_DB | null = LOCAL_DB) =>
    resolveAdoptSettings(C, o, { ...goldenSynapseSettings(), sqlite }, database ?? undefined);

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

    it("takes a server on PostgreSQL over by dump unless in-place is asked for", () => {
        assert.equal(resolve().postgres, "dump");
        assert.equal(resolve({ postgres: "in-place" }).postgres, "in-place");
        assert.deepEqual(resolve({ postgres: "in-place" }).database, LOCAL_DB);
        assert.equal(resolve({}, false, null).database, undefined, "dump needs no database on this host");
    });

    it("refuses an unknown postgres mode, and in-place without the stack's PostgreSQL on this host", () => {
        rejects(() => resolve({ postgres: "copy" as never }), /postgres is "copy"; expected one of "dump", "in-place"/);
        rejects(
            () => resolve({ postgres: "in-place" }, false, null),
            /postgres is "in-place"; expected "dump" here: "in-place" takes over a database of the stack's own PostgreSQL/,
        );
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
        // In place needs the stack's PostgreSQL on the VM: not an external server, not a database host of its own.
        rejects(
            () =>
                planStack(
                    "prod",
                    {
                        ...stackArgs(),
                        postgres: { external: { host: "db.example.com", database: "synapse", user: "synapse" } },
                        adopt: { postgres: "in-place" },
                    },
                    { stack: "prod" },
                ),
            /postgres is "in-place"; expected "dump" here/,
            /SynapseAdoption "prod-adopt"/,
        );
        rejects(
            () =>
                planStack(
                    "prod",
                    {
                        ...stackArgs(),
                        postgres: {
                            host: { user: "debian" },
                            reachableAt: "10.0.0.2",
                            listenAddresses: ["127.0.0.1", "10.0.0.2"],
                            allowedClients: ["10.0.0.0/24"],
                        },
                        adopt: { postgres: "in-place" },
                    },
                    { stack: "prod" },
                ),
            /postgres is "in-place"; expected "dump" here/,
            /SynapseAdoption "prod-adopt"/,
        );
        assert.equal(planStack("prod", { ...stackArgs(), adopt: { postgres: "in-place" } }, { stack: "prod" }).adopt?.database?.database, "synapse");
    });
});

describe("adoption: scripts", () => {
    const s = () => resolve();
    golden("adopt", "scripts/preflight.sh", () => adoptPreflightScript(s()));
    golden("adopt", "scripts/adopt.sh", () => adoptScript(s(), goldenSynapseSettings(), PEERS));
    golden("adopt", "snapshot.yaml", () => renderAdoptConfigs(s(), goldenSynapseSettings(), PEERS, ADOPT_FILES).sqlite);
    golden("adopt", "scripts/adopt-in-place.sh", () => adoptScript(resolve({ postgres: "in-place" }), goldenSynapseSettings(), PEERS));
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

    it("a dump is taken after the old unit stopped and restored in one transaction as the stack's role; in place nothing is dumped", () => {
        const text = adoptScript(s(), goldenSynapseSettings(), PEERS);
        const stop = text.indexOf("systemctl stop matrix-synapse.service; fi\n");
        assert.ok(stop > 0 && stop < text.indexOf("pg_dump --format=custom"), "stopped before the dump");
        assert.match(
            text,
            /pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname='user='\\''synapse'\\'' dbname='\\''synapse'\\''/,
        );
        assert.doesNotMatch(text, /DROP|dropdb/);
        const inPlace = adoptScript(resolve({ postgres: "in-place" }), goldenSynapseSettings(), PEERS);
        for (const never of [/pg_dump --/, /pg_restore --/, /synapse_port_db/, /DROP|dropdb|createdb/]) assert.doesNotMatch(inPlace, never);
        assert.match(inPlace, /"postgres":"in-place","database":\{"database":"synapse","user":"synapse","port":5432\}/);
    });

    it("the old database's password goes to a root-only passfile, never to a command line", () => {
        const text = renderAdoptOldDatabasePy();
        assert.match(text, /os\.open\(sys\.argv\[1\], os\.O_WRONLY \| os\.O_CREAT \| os\.O_TRUNC, 0o600\)/);
        assert.match(text, /k not in \("password", "passfile"\)/);
    });

    it("the port never names the SQLite file as its source: it ports snapshot copies", () => {
        const text = adoptScript(s(), goldenSynapseSettings(), PEERS);
        assert.match(text, /synapse_port_db --sqlite-database \/var\/lib\/pulumi-matrix\/adopt\/snapshot\.db/);
        assert.match(text, /update_synapse_database --database-config \/var\/lib\/pulumi-matrix\/adopt\/snapshot\.yaml --run-background-updates/);
    });
});

describe("adoption: the stack's database as libpq reads it", () => {
    it("quotes every value, leaves out the pool's settings", () => {
        assert.equal(
            libpqConninfo({ user: "syn", dbname: "a b", passfile: "/x/it's\\", cp_min: 5, port: 5432 }),
            "user='syn' dbname='a b' passfile='/x/it\\'s\\\\' port='5432'",
        );
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

    it("dump: the stack's PostgreSQL waits for the preflight (a refusal changes nothing of the old server's database), the dump for the database", async () => {
        const { mocks } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), adopt: { postgres: "dump" } }),
            () => [],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-synapse-config"); i++) await new Promise((r) => setTimeout(r, 100));
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("prod-adopt-preflight") < seq("prod-postgres-server"));
        assert.ok(seq("prod-postgres-database") < seq("prod-adopt-port"));
        assert.ok(seq("prod-adopt-port") < seq("prod-synapse-config"));
    });

    it("in-place: the old unit stops before the stack's PostgreSQL takes over the role; Synapse starts after both", async () => {
        const { mocks } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), adopt: { postgres: "in-place" } }),
            () => [],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-synapse-config"); i++) await new Promise((r) => setTimeout(r, 100));
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("prod-adopt-preflight") < seq("prod-adopt-port"));
        assert.ok(seq("prod-synapse-secrets") < seq("prod-adopt-port"), "Synapse is installed before the old one stops");
        assert.ok(seq("prod-adopt-port") < seq("prod-postgres-server"), "the role's password changes only once the old server stopped");
        assert.ok(seq("prod-postgres-database") < seq("prod-synapse-config"));
        assert.match(String(mocks.byName("prod-adopt-port").inputs.stdin), /PostgreSQL in place/);
    });
});
