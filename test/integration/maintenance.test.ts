// The maintenance timers' scripts against the real programs: PostgreSQL from
// Debian, Synapse from PyPI, synapse-auto-compressor 0.1.2 from PyPI installed
// by the component's own install commands. Each script is the rendered text
// the component ships, run with the command line of its unit's ExecStart.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { MAINTENANCE_FILES, MaintenanceOptions, MaintenanceSettings, MaintenanceTimer, resolveMaintenanceSettings } from "../../src/model/maintenance";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { compressorInstall } from "../../src/provision/maintenance";
import { synapseSecretsScript } from "../../src/provision/synapse";
import {
    maintenanceScriptPaths,
    maintenanceUnitNames,
    renderCompressorRequirements,
    renderCompressorScript,
    renderMaintenanceUnits,
    renderPurgeScript,
} from "../../src/render/maintenance";
import { pgpassSecretFile, renderHomeserverYaml, renderLogConfig } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, type RunResult } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const random = () => crypto.randomBytes(24).toString("hex");

describe("the maintenance timers against real Synapse and PostgreSQL", function () {
    let pg: PgServer;
    let venv: string;
    let dir: string;
    let settings: SynapseSettings;
    let peers: SynapsePeers;
    let synapse: SynapseProcess | undefined;
    let baseUrl: string;
    let alice: string;
    let bob: string;
    const rooms: Record<"busy" | "left" | "joined", string> = { busy: "", left: "", joined: "" };
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret: random(), databasePassword: random() };
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

    async function api<T = Record<string, unknown>>(method: string, p: string, token: string, body?: unknown): Promise<T> {
        const r = await fetch(baseUrl + p, {
            method,
            headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await r.text();
        if (!r.ok) throw new Error(`${method} ${p}: HTTP ${r.status} ${text}`);
        return JSON.parse(text) as T;
    }

    /** The maintenance settings for this Synapse and PostgreSQL, with the host paths moved into the temp dir. */
    function maintenance(o: MaintenanceOptions): MaintenanceSettings {
        const paths = Object.fromEntries(Object.entries(MAINTENANCE_FILES).map(([k, v]) => [k, path.join(dir, "host", v)])) as typeof MAINTENANCE_FILES;
        return resolveMaintenanceSettings(
            "test",
            o,
            { synapse: settings, localPostgres: { database: "synapse", port: pg.port, socketDir: pg.socketDir } },
            paths,
        );
    }

    /** Writes the scripts where the units expect them (the same text the component ships). */
    function writeScripts(s: MaintenanceSettings): void {
        const p = maintenanceScriptPaths(s);
        fs.mkdirSync(s.paths.libDir, { recursive: true, mode: 0o755 });
        fs.mkdirSync(s.paths.stateDir, { recursive: true, mode: 0o700 });
        if (s.compressor) {
            fs.writeFileSync(p.compressor, renderCompressorScript(s), { mode: 0o755 });
            fs.writeFileSync(p.requirements, renderCompressorRequirements(s));
        }
        if (s.synapse) fs.writeFileSync(p.purge, renderPurgeScript(s));
    }

    /** Writes a timer's scripts, then runs its unit's ExecStart as its User= (faketime: the clock moved on). */
    async function runTimer(s: MaintenanceSettings, timer: MaintenanceTimer, opts: { faketime?: string; allowFailure?: boolean } = {}): Promise<RunResult> {
        writeScripts(s);
        const unit = renderMaintenanceUnits(s, timer).service;
        const execStart = /^ExecStart=(.*)$/m.exec(unit)![1].split(" ");
        const user = /^User=(.*)$/m.exec(unit)![1];
        const [cmd, ...args] = opts.faketime ? ["faketime", "-f", opts.faketime, ...execStart] : execStart;
        return run(cmd, args, {
            user: user === "root" ? undefined : user,
            cwd: "/",
            env: { ...process.env, PATH: `${pg.binDir}:${process.env.PATH}` },
            timeoutMs: 600_000,
            allowFailure: opts.allowFailure,
        });
    }

    /** The full state of a state group, resolved through its edges as Synapse resolves it. */
    async function stateOfGroup(group: string): Promise<string> {
        return pg.psql(
            `WITH RECURSIVE sg(id) AS (SELECT ${Number(group)}::bigint UNION ALL SELECT e.prev_state_group FROM state_group_edges e JOIN sg ON e.state_group = sg.id)
             SELECT string_agg(type || '|' || state_key || '|' || event_id, E'\\n' ORDER BY type, state_key) FROM (
               SELECT DISTINCT ON (type, state_key) type, state_key, event_id FROM state_groups_state
               WHERE state_group IN (SELECT id FROM sg) ORDER BY type, state_key, state_group DESC) s`,
            { db: "synapse" },
        );
    }

    async function groupsOf(room: string): Promise<string[]> {
        return (await pg.psql(`SELECT id FROM state_groups WHERE room_id = '${room}' ORDER BY id`, { db: "synapse" })).split("\n").filter((l) => l);
    }

    const rowsOf = async (room: string) => Number(await pg.psql(`SELECT count(*) FROM state_groups_state WHERE room_id = '${room}'`, { db: "synapse" }));

    before(async function () {
        [pg, venv] = await Promise.all([startPostgres(), ensureSynapseVenv()]);
        dir = makeTempDir("maintenance");
        // The compressor runs as the postgres OS user: it must reach its script and virtualenv.
        fs.chmodSync(dir, 0o755);
        const port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, secrets.databasePassword));
        settings = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: baseUrl + "/",
            installMethod: "pip",
            httpPort: port,
            metrics: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
            // Hundreds of state changes in a few seconds.
            extraConfig: { rc_message: { per_second: 10000, burst_count: 10000 } },
        });
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        const f = synapseFiles(settings.paths);
        fs.mkdirSync(f.confD, { recursive: true });
        fs.mkdirSync(settings.paths.mediaStorePath, { recursive: true });
        fs.writeFileSync(f.homeserverYaml, renderHomeserverYaml("test", settings, peers));
        fs.writeFileSync(f.logConfig, renderLogConfig(settings));
        await run("bash", ["-s"], {
            input: synapseSecretsScript(settings, {
                ...secrets,
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, secrets.databasePassword)],
            }),
        });
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${baseUrl}/health`, cwd: settings.paths.dataDir });

        alice = (await registerWithSharedSecret(baseUrl, secrets.registrationSharedSecret, "alice", random(), false)).access_token;
        bob = (await registerWithSharedSecret(baseUrl, secrets.registrationSharedSecret, "bob", random(), false)).access_token;
        const create = async () => (await api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", alice, { preset: "private_chat" })).room_id;
        rooms.busy = await create();
        // Many state changes, each a new key: Synapse stores a full snapshot every 100 groups, which the compressor turns into deltas.
        for (let i = 0; i < 400; i++)
            await api("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.busy)}/state/org.example.test/key${i}`, alice, { n: i });
        rooms.left = await create();
        await api("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.left)}/leave`, alice, {});
        rooms.joined = await create();
        // Bob is the room's only member: a remote-less room with a local member is kept, however old.
        await api("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.joined)}/invite`, alice, { user_id: "@bob:matrix.test" });
        await api("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.joined)}/join`, bob, {});
        await api("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.joined)}/leave`, alice, {});
    });

    after(async function () {
        await synapse?.stop();
        await pg?.stop();
    });

    it("installs the hash-pinned compressor from PyPI with the component's own commands", async function () {
        const s = maintenance({ mediaCache: { enabled: false }, emptyRooms: { enabled: false } });
        const p = maintenanceScriptPaths(s);
        fs.mkdirSync(s.paths.libDir, { recursive: true });
        fs.writeFileSync(p.requirements, renderCompressorRequirements(s));
        const first = await run("bash", ["-euo", "pipefail", "-c", compressorInstall(s).text], { timeoutMs: 600_000 });
        assert.match(first.stdout, /installed synapse_auto_compressor from PyPI/);
        // Unchanged requirement: nothing is installed again.
        const again = await run("bash", ["-euo", "pipefail", "-c", compressorInstall(s).text]);
        assert.equal(again.stdout, "");
        // A requirement whose hash does not match is refused by pip.
        const bad = path.join(dir, "bad");
        fs.mkdirSync(bad);
        fs.writeFileSync(path.join(bad, "req.txt"), renderCompressorRequirements(s).replace(/sha256:[0-9a-f]{64}/, `sha256:${"0".repeat(64)}`));
        const refused = await run(
            `${s.paths.venvDir}/bin/pip`,
            ["install", "--no-deps", "--require-hashes", "--no-cache-dir", "--force-reinstall", "-r", path.join(bad, "req.txt")],
            {
                allowFailure: true,
            },
        );
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /HASHES|hash/i);
    });

    it("compresses the state of a room with many state changes, and every state group's state stays the same", async function () {
        const s = maintenance({ mediaCache: { enabled: false }, emptyRooms: { enabled: false } });
        const groups = await groupsOf(rooms.busy);
        assert.ok(groups.length >= 400, `${groups.length} state groups`);
        const sample = groups.filter((_, i) => i % 25 === 0 || i === groups.length - 1);
        const before = await Promise.all(sample.map(stateOfGroup));
        const rowsBefore = await rowsOf(rooms.busy);
        const currentBefore = await api<{ event_id: string }[]>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.busy)}/state`, alice);

        const r = await runTimer(s, "compressor");
        assert.match(r.stdout + r.stderr, /state compression finished/);
        const rowsAfter = await rowsOf(rooms.busy);
        assert.ok(rowsAfter < rowsBefore, `state_groups_state rows of the room: ${rowsBefore} before, ${rowsAfter} after`);
        assert.deepEqual(await Promise.all(sample.map(stateOfGroup)), before);
        // Synapse, restarted (no cached state groups), serves the same current state and takes new state.
        await synapse!.restart();
        const ids = (state: { event_id: string }[]) => state.map((e) => e.event_id).sort();
        const currentAfter = await api<{ event_id: string }[]>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.busy)}/state`, alice);
        assert.deepEqual(ids(currentAfter), ids(currentBefore));
        await api("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.busy)}/state/org.example.test/after`, alice, { n: "after" });
        const ev = await api<{ n: string }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms.busy)}/state/org.example.test/after`, alice);
        assert.equal(ev.n, "after");
        assert.ok(Number(await pg.psql(`SELECT count(*) FROM state_compressor_progress WHERE room_id = '${rooms.left}'`, { db: "synapse" })) > 0);
    });

    it("the media cache purge runs through the admin API with the token it made itself, which stays out of the log", async function () {
        const s = maintenance({ compressor: { enabled: false }, emptyRooms: { enabled: false } });
        const r = await runTimer(s, "mediaCache");
        assert.match(r.stdout, /registered the maintenance admin @pulumi-matrix-maintenance:matrix.test/);
        assert.match(r.stdout, /purged 0 cached remote media files not accessed for 30 days/);
        const tokenFile = path.join(s.paths.stateDir, "admin-token");
        const token = fs.readFileSync(tokenFile, "utf8").trim();
        assert.equal((fs.statSync(tokenFile).mode & 0o777).toString(8), "600");
        assert.equal((fs.statSync(path.join(s.paths.stateDir, "admin-password")).mode & 0o777).toString(8), "600");
        assert.ok(!(r.stdout + r.stderr).includes(token));
        assert.ok(!renderMaintenanceUnits(s, "mediaCache").service.includes(token));
        // The next run uses the stored token (no new login).
        const again = await runTimer(s, "mediaCache");
        assert.doesNotMatch(again.stdout, /registered/);
        assert.equal(fs.readFileSync(tokenFile, "utf8").trim(), token);
    });

    it("a dry run of the empty-room purge deletes nothing and names the room it would delete", async function () {
        const s = maintenance({ compressor: { enabled: false }, mediaCache: { enabled: false }, emptyRooms: { emptyForDays: 1 } });
        const roomsBefore = await pg.psql("SELECT count(*) FROM rooms", { db: "synapse" });
        // Today nothing has been empty for a day.
        const today = await runTimer(s, "emptyRooms");
        assert.doesNotMatch(today.stdout, /would delete/);
        const later = await runTimer(s, "emptyRooms", { faketime: "+2d" });
        assert.match(later.stdout, new RegExp(`dry run: would delete ${rooms.left.replace(/[.$]/g, "\\$&")}`));
        assert.equal((later.stdout.match(/would delete/g) ?? []).length, 1, later.stdout);
        assert.equal(await pg.psql("SELECT count(*) FROM rooms", { db: "synapse" }), roomsBefore);
    });

    it("a real run deletes only the room without local members, and the compressor runs cleanly after it", async function () {
        const s = maintenance({ compressor: { enabled: false }, mediaCache: { enabled: false }, emptyRooms: { emptyForDays: 1, dryRun: false } });
        const r = await runTimer(s, "emptyRooms", { faketime: "+2d" });
        assert.match(r.stdout, /deleted .*without local members since/);
        const remaining = (await pg.psql("SELECT room_id FROM rooms", { db: "synapse" })).split("\n");
        assert.ok(!remaining.includes(rooms.left), "the left room is gone");
        for (const kept of [rooms.busy, rooms.joined]) assert.ok(remaining.includes(kept), `${kept} is kept`);

        // The compressor had progress rows for the deleted room: they are removed before it runs, and it finishes.
        const c = maintenance({ mediaCache: { enabled: false }, emptyRooms: { enabled: false } });
        const run2 = await runTimer(c, "compressor");
        assert.match(run2.stdout + run2.stderr, /removed [1-9]\d* progress rows of rooms that no longer exist from state_compressor_state/);
        assert.match(run2.stdout + run2.stderr, /state compression finished/);
        assert.equal(await pg.psql(`SELECT count(*) FROM state_compressor_progress WHERE room_id = '${rooms.left}'`, { db: "synapse" }), "0");
    });

    it("systemd accepts the rendered units (systemd-analyze verify, with their scripts in place)", async function () {
        const s = maintenance({ emptyRooms: { dryRun: false } });
        writeScripts(s);
        const units = path.join(dir, "units");
        fs.mkdirSync(units, { recursive: true });
        const files = (["compressor", "mediaCache", "emptyRooms"] as const).flatMap((t) => {
            const u = renderMaintenanceUnits(s, t);
            const n = maintenanceUnitNames(t);
            fs.writeFileSync(path.join(units, n.service), u.service);
            fs.writeFileSync(path.join(units, n.timer), u.timer);
            return [path.join(units, n.service), path.join(units, n.timer)];
        });
        const r = await run("systemd-analyze", ["verify", "--man=no", ...files], { allowFailure: true });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr.trim(), "");
    });

    it("a failing run exits non-zero (systemd marks the unit failed)", async function () {
        const s = maintenance({ compressor: { enabled: false }, emptyRooms: { enabled: false } });
        const broken = { ...s, synapse: { ...s.synapse!, baseUrl: `http://127.0.0.1:${await freePort()}` } };
        const r = await runTimer(broken, "mediaCache", { allowFailure: true });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /media failed/);
    });
});
