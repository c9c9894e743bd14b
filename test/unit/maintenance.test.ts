import * as assert from "node:assert/strict";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { SynapseMaintenance } from "../../components/SynapseMaintenance";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import {
    COMPRESSOR_REQUIREMENT,
    MAINTENANCE_DEFAULTS,
    MaintenanceOptions,
    maintenanceTimers,
    NO_MAINTENANCE,
    resolveMaintenanceSettings,
} from "../../src/model/maintenance";
import { planStack } from "../../src/model/stack";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { maintenanceScript } from "../../src/provision/maintenance";
import {
    renderCompressorRequirements,
    renderCompressorScript,
    renderMaintenanceUnits,
    renderPurgeScript,
    STALE_PROGRESS_SQL,
} from "../../src/render/maintenance";
import { golden } from "../support/golden";
import { goldenSynapseSettings, stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";

const C = 'SynapseMaintenance "m"';
const LOCAL_PG = { database: "synapse", port: 5432 };
const resolve = (o: MaintenanceOptions = {}, ctx: { sqlite?: boolean; noLocal?: boolean } = {}) =>
    resolveMaintenanceSettings(C, o, {
        synapse: ctx.sqlite ? resolveSynapseSettings("s", { serverName: "example.com", sqlite: {} }) : goldenSynapseSettings(),
        ...(ctx.noLocal || ctx.sqlite ? {} : { localPostgres: LOCAL_PG }),
    });
const SHA = "ab".repeat(32);
const binary = () => resolve({ compressor: { binaryUrl: "https://example.com/synapse_auto_compressor", binarySha256: SHA } });

/** The error names the component, the setting, the value and what is valid. */
function rejects(f: () => unknown, ...messages: RegExp[]): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        for (const m of messages) assert.match(e.message, m);
        for (const line of e.message.split("\n")) assert.match(line, /^SynapseMaintenance "m": /);
        return true;
    });
}

describe("SynapseMaintenance: the model", () => {
    it("turns every timer on by default, the room deletion as a dry run, with the compressor's recommended chunking", () => {
        const s = resolve();
        assert.deepEqual(maintenanceTimers(s), ["compressor", "mediaCache", "emptyRooms"]);
        assert.equal(s.compressor!.chunkSize, 500);
        assert.equal(s.compressor!.chunks, 100);
        assert.deepEqual(s.compressor!.levels, [100, 50, 25]);
        assert.deepEqual(s.compressor!.source, { kind: "pypi", requirement: COMPRESSOR_REQUIREMENT });
        assert.deepEqual(s.compressor!.database, { name: "synapse", port: 5432, socketDir: "/var/run/postgresql", osUser: "postgres" });
        assert.equal(s.emptyRooms!.dryRun, true);
        assert.equal(s.mediaCache!.olderThanDays, MAINTENANCE_DEFAULTS.mediaCache.olderThanDays);
        assert.match(COMPRESSOR_REQUIREMENT, /^synapse-auto-compressor==0\.1\.2 --hash=sha256:[0-9a-f]{64}$/);
    });

    it("turns timers off one by one, or all at once", () => {
        assert.deepEqual(maintenanceTimers(resolve({ compressor: { enabled: false } })), ["mediaCache", "emptyRooms"]);
        assert.deepEqual(maintenanceTimers(resolve(NO_MAINTENANCE)), []);
        // All off: nothing to refuse, even with SQLite.
        assert.deepEqual(maintenanceTimers(resolve(NO_MAINTENANCE, { sqlite: true })), []);
    });

    it("refuses the compressor and the purges with SQLite", () => {
        rejects(
            () => resolve({}, { sqlite: true }),
            /compressor\.enabled is true \(the default\); the compressor works on PostgreSQL only, and Synapse uses SQLite/,
            /mediaCache\.enabled is true \(the default\); the purges are for PostgreSQL deployments/,
            /emptyRooms\.enabled is true \(the default\); the purges are for PostgreSQL deployments/,
        );
    });

    it("refuses the compressor without PostgreSQL on Synapse's host", () => {
        rejects(() => resolve({}, { noLocal: true }), /compressor\.enabled .*the database is not on Synapse's host/);
        assert.deepEqual(maintenanceTimers(resolve({ compressor: { enabled: false } }, { noLocal: true })), ["mediaCache", "emptyRooms"]);
    });

    it("refuses retention under one day", () => {
        rejects(
            () => resolve({ mediaCache: { olderThanDays: 0 } }),
            /mediaCache\.olderThanDays is 0; expected a whole number of days, at least 1 \(retention under one day is refused\)/,
        );
        rejects(() => resolve({ emptyRooms: { emptyForDays: 0.5 } }), /emptyRooms\.emptyForDays is 0\.5; .*retention under one day is refused/);
    });

    it("refuses a binary URL without its SHA-256, a bad SHA-256, a plain-http URL, or a SHA-256 alone", () => {
        rejects(
            () => resolve({ compressor: { binaryUrl: "https://example.com/c" } }),
            /compressor\.binaryUrl is "https:\/\/example\.com\/c"; expected compressor\.binarySha256 with it/,
        );
        rejects(
            () => resolve({ compressor: { binaryUrl: "https://example.com/c", binarySha256: "abc" } }),
            /compressor\.binarySha256 is "abc"; expected the binary's SHA-256/,
        );
        rejects(() => resolve({ compressor: { binaryUrl: "http://example.com/c", binarySha256: SHA } }), /compressor\.binaryUrl .*expected an https:\/\/ URL/);
        rejects(() => resolve({ compressor: { binarySha256: SHA } }), /compressor\.binarySha256 .*only together with compressor\.binaryUrl/);
        assert.deepEqual(binary().compressor!.source, { kind: "binary", url: "https://example.com/synapse_auto_compressor", sha256: SHA });
    });

    it("refuses bad schedules, chunk sizes below the first level, bad levels and non-boolean switches", () => {
        rejects(() => resolve({ compressor: { schedule: "daily\nExecStart=/bin/sh" } }), /compressor\.schedule .*systemd calendar expression/);
        rejects(() => resolve({ compressor: { chunkSize: 50 } }), /compressor\.chunkSize is 50; expected at least the first level's size \(100\)/);
        rejects(() => resolve({ compressor: { levels: [] } }), /compressor\.levels is \[\]; expected 1 to 10 level sizes/);
        rejects(
            () => resolve({ emptyRooms: { dryRun: "no" as unknown as boolean } }),
            /emptyRooms\.dryRun is "no"; expected true \(only log\) or false \(delete\)/,
        );
        rejects(() => resolve({ enabled: "yes" as unknown as boolean }), /enabled is "yes"; expected true or false/);
    });
});

describe("SynapseMaintenance: the files", () => {
    it("runs the compressor as postgres through the local socket, with no password anywhere, after removing progress rows of gone rooms", () => {
        const text = renderCompressorScript(resolve());
        assert.match(text, /^conninfo='host=\/var\/run\/postgresql port=5432 user=postgres dbname=synapse'$/m);
        assert.doesNotMatch(text, /password/i);
        assert.ok(text.indexOf(STALE_PROGRESS_SQL) < text.indexOf("compress_state_events_table"));
        assert.match(
            text,
            /compress_state_events_table\(sys\.argv\[1\], int\(sys\.argv\[2\]\), sys\.argv\[3\], int\(sys\.argv\[4\]\)\)\n' "\$conninfo" 500 100,50,25 100$/m,
        );
        assert.match(renderCompressorScript(binary()), /synapse_auto_compressor-(ab){32}" -p "\$conninfo" -c 500 -n 100 -l 100,50,25$/m);
        const unit = renderMaintenanceUnits(resolve(), "compressor").service;
        for (const line of ["User=postgres", "Nice=10", "IOSchedulingClass=idle", "ProtectSystem=strict", "IPAddressDeny=any", "CapabilityBoundingSet="])
            assert.ok(unit.split("\n").includes(line), line);
    });

    it("keeps the purges' admin token out of units and command lines; a real run needs dryRun false", () => {
        const s = resolve();
        const rooms = renderMaintenanceUnits(s, "emptyRooms").service;
        assert.match(
            rooms,
            /^ExecStart=\/opt\/venvs\/matrix-synapse\/bin\/python -I \/usr\/local\/lib\/pulumi-matrix\/maintenance\/synapse-purge\.py rooms --empty-for-days 30$/m,
        );
        assert.match(renderMaintenanceUnits(resolve({ emptyRooms: { dryRun: false } }), "emptyRooms").service, /rooms --empty-for-days 30 --delete$/m);
        assert.doesNotMatch(rooms, /token|Environment=/i);
        assert.match(rooms, /^ReadWritePaths=\/var\/lib\/pulumi-matrix\/maintenance$/m);
        assert.match(renderMaintenanceUnits(s, "mediaCache").service, /synapse-purge\.py media --older-than-days 30$/m);
        const purge = renderPurgeScript(s);
        assert.match(purge, /^TOKEN_FILE = os\.path\.join\(STATE_DIR, "admin-token"\)$/m);
        // The token goes only into the request's header, never into what the script prints.
        assert.match(purge, /headers\["Authorization"\] = "Bearer " \+ token/);
        assert.doesNotMatch(purge, /print\([^)]*token/);
    });

    it("a step with every timer off stops and disables them and installs nothing", () => {
        const text = maintenanceScript(resolve(NO_MAINTENANCE));
        for (const t of ["compress-state", "purge-media-cache", "purge-empty-rooms"])
            assert.match(text, new RegExp(`systemctl disable -q --now matrix-maintenance-${t}\\.timer`));
        // The step's own part (after the shared prelude).
        const body = text.slice(text.indexOf("if systemctl is-enabled -q matrix-maintenance-"));
        assert.doesNotMatch(body, /pm_apt_install|install -d|enable -q --now|pm_write/);
    });

    golden("maintenance", "requirements.txt", () => renderCompressorRequirements(resolve()));
    golden("maintenance", "compress-state", () => renderCompressorScript(resolve()));
    golden("maintenance", "compress-state-binary", () => renderCompressorScript(binary()));
    golden("maintenance", "synapse-purge.py", () => renderPurgeScript(resolve()));
    for (const t of ["compressor", "mediaCache", "emptyRooms"] as const) {
        const u = renderMaintenanceUnits(resolve(), t);
        const name = { compressor: "compress-state", mediaCache: "purge-media-cache", emptyRooms: "purge-empty-rooms" }[t];
        golden("maintenance", `matrix-maintenance-${name}.service`, () => u.service);
        golden("maintenance", `matrix-maintenance-${name}.timer`, () => u.timer);
    }
    golden("maintenance", "scripts/maintenance.sh", () => maintenanceScript(resolve()));
    golden("maintenance", "scripts/maintenance-binary.sh", () => maintenanceScript(binary()));
    golden("maintenance", "scripts/maintenance-off.sh", () => maintenanceScript(resolve(NO_MAINTENANCE)));
});

describe("SynapseMaintenance: the component and the stack", () => {
    const commands = (mocks: { resources: { type: string; name: string }[] }) => mocks.resources.filter((r) => r.type === "command:remote:Command");

    it("runs its one step on Synapse's host after Synapse and the database", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const database = new PostgresDatabase("pg", { host });
            const synapse = new SynapseHomeserver("s", { host, database, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" });
            return new SynapseMaintenance("m", { synapse, database, emptyRooms: { emptyForDays: 60 } });
        });
        const step = mocks.byName("m-timers");
        assert.ok(mocks.byName("s-config").seq < step.seq);
        assert.ok(mocks.byName("pg-database").seq < step.seq);
        assert.match(String(step.inputs.stdin), /rooms --empty-for-days 60/);
        assert.ok(!mocks.byName("m-timers").secretInputs.includes("stdin"), "nothing secret in the step");
    });

    it("refuses the compressor without a database on Synapse's host, naming the component", async () => {
        await assert.rejects(
            runWithMocks(() => {
                const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
                const synapse = new SynapseHomeserver("s", { host, serverName: "example.com", sqlite: {} });
                return new SynapseMaintenance("m", { synapse, mediaCache: { enabled: false }, emptyRooms: { enabled: false } });
            }),
            /SynapseMaintenance "m": compressor\.enabled is true \(the default\); the compressor works on PostgreSQL only/,
        );
    });

    it("MatrixStack: every timer off without maintenance (taking away an earlier deployment's), on with it", async () => {
        assert.deepEqual(maintenanceTimers(planStack("dev", stackArgs(), { stack: "dev" }).maintenance), []);
        const plan = planStack("dev", { ...stackArgs(), maintenance: {} }, { stack: "dev" });
        assert.deepEqual(maintenanceTimers(plan.maintenance), ["compressor", "mediaCache", "emptyRooms"]);
        const { mocks } = await runWithMocks(() => new MatrixStack("dev", { ...stackArgs(), maintenance: { compressor: { chunks: 10 } } }));
        assert.ok(commands(mocks).some((r) => r.name === "dev-maintenance-timers"));
        assert.match(String(mocks.byName("dev-maintenance-timers").inputs.stdin), /500 100,50,25 10/);
    });

    it("MatrixStack: refuses the timers with SQLite, or the compressor with the database on another VM", () => {
        assert.throws(
            () => planStack("dev", { ...stackArgs({ sqlite: {} }), postgres: undefined, workers: { instances: {} }, maintenance: {} }, { stack: "dev" }),
            /SynapseMaintenance "dev-maintenance": compressor\.enabled is true \(the default\); the compressor works on PostgreSQL only/,
        );
        assert.throws(
            () =>
                planStack(
                    "dev",
                    {
                        ...stackArgs(),
                        postgres: { host: {}, reachableAt: "10.0.0.5" },
                        maintenance: {},
                    },
                    { stack: "dev" },
                ),
            /SynapseMaintenance "dev-maintenance": compressor\.enabled .*the database is not on Synapse's host/,
        );
    });
});
