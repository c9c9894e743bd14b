// The nightly dump script (renderBackupScript) against a real PostgreSQL
// from Debian: it runs as the postgres OS user, as the timer's service does,
// and its dump restores into a fresh database as Synapse's backup guide
// describes, with every table and row except the one-time keys' rows.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { renderBackupScript } from "../../src/render/postgres";
import { PG_OS_USER, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, requireUser, run } from "../support/integration/processes";

describe("the nightly database dump, against a real PostgreSQL", function () {
    let pg: PgServer;
    let dir: string;
    let dumps: string;

    before(async function () {
        pg = await startPostgres();
        dir = makeTempDir("pg-backup", { owner: PG_OS_USER });
        dumps = path.join(dir, "dumps");
        fs.mkdirSync(dumps);
        const u = requireUser(PG_OS_USER);
        fs.chownSync(dumps, u.uid, u.gid);
        await pg.runAsSuperuser("CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;");
        // The two tables as Synapse's schema has them (columns abridged), with a row each.
        await pg.psql(
            `CREATE TABLE e2e_one_time_keys_json (user_id TEXT NOT NULL, device_id TEXT NOT NULL, algorithm TEXT NOT NULL, key_id TEXT NOT NULL, key_json TEXT NOT NULL);
             INSERT INTO e2e_one_time_keys_json VALUES ('@a:example.com', 'DEV', 'signed_curve25519', 'AAAAAQ', '{}');
             CREATE TABLE users (name TEXT PRIMARY KEY);
             INSERT INTO users VALUES ('@a:example.com');`,
            { db: "synapse" },
        );
    });

    after(async function () {
        await pg?.stop();
    });

    it("removes the partial dump an interrupted run left behind, and leaves none of its own when the dump fails", async function () {
        const s = resolvePostgresSettings("PostgresDatabase", { port: pg.port, backup: { directory: dumps } });
        const script = path.join(dir, "pg-backup-partials.sh");
        fs.writeFileSync(script, renderBackupScript(s), { mode: 0o755 });
        const u = requireUser(PG_OS_USER);
        const stale = path.join(dumps, "synapse-20260101T033000Z.dump.partial");
        fs.writeFileSync(stale, "half a dump");
        fs.chownSync(stale, u.uid, u.gid);
        const env = { ...process.env, PATH: `${pg.binDir}:${process.env.PATH}`, PGHOST: pg.socketDir, PGUSER: "postgres" };
        // A failing dump (no such server): its own partial is removed too, and the stale one is already gone.
        const failed = await run("/bin/sh", [script], { user: PG_OS_USER, env: { ...env, PGHOST: "/nonexistent" }, allowFailure: true });
        assert.notEqual(failed.code, 0);
        assert.deepEqual(
            fs.readdirSync(dumps).filter((f) => f.endsWith(".partial")),
            [],
        );
        await run("/bin/sh", [script], { user: PG_OS_USER, env });
        const files = fs.readdirSync(dumps);
        assert.deepEqual(
            files.filter((f) => f.endsWith(".partial")),
            [],
        );
        for (const f of files) fs.rmSync(path.join(dumps, f));
    });

    it("keeps every table and row except e2e_one_time_keys_json's rows, and the dump restores into a fresh database", async function () {
        const s = resolvePostgresSettings("PostgresDatabase", { port: pg.port, backup: { directory: dumps } });
        const script = path.join(dir, "pg-backup.sh");
        fs.writeFileSync(script, renderBackupScript(s), { mode: 0o755 });
        // The script calls pg_dump by name and reaches the server on its default socket: point both at the test cluster.
        await run("/bin/sh", [script], {
            user: PG_OS_USER,
            env: { ...process.env, PATH: `${pg.binDir}:${process.env.PATH}`, PGHOST: pg.socketDir, PGUSER: "postgres" },
        });
        const files = fs.readdirSync(dumps);
        assert.equal(files.length, 1, `one dump: ${files.join(", ")}`);
        assert.match(files[0], /^synapse-\d{8}T\d{6}Z\.dump$/);

        await pg.runAsSuperuser("CREATE DATABASE restored ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;");
        await run(path.join(pg.binDir, "pg_restore"), [
            "-h",
            pg.socketDir,
            "-p",
            String(pg.port),
            "-U",
            "postgres",
            "-d",
            "restored",
            path.join(dumps, files[0]),
        ]);
        assert.equal(await pg.psql("SELECT count(*) FROM e2e_one_time_keys_json", { db: "restored" }), "0");
        assert.equal(await pg.psql("SELECT name FROM users", { db: "restored" }), "@a:example.com");
        // The source still has its keys: the dump only left them out.
        assert.equal(await pg.psql("SELECT count(*) FROM e2e_one_time_keys_json", { db: "synapse" }), "1");
    });
});
