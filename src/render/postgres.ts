import { createHash, createHmac, pbkdf2Sync } from "node:crypto";

import { POSTGRES_FILES, PostgresLocalSettings, postgresTuning } from "../model/postgres";
import { renderTimerUnit, UNIT_HEADER as HEADER } from "./systemd";

/**
 * SQL and configuration for a PostgreSQL that Synapse can use. Run by psql
 * as the superuser; every statement is safe to run again.
 */

/** Quotes a SQL string literal. */
export function sqlLiteral(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

/** PostgreSQL's own iteration count for SCRAM-SHA-256 (scram_iterations). */
export const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 and
 * 7677, in pg_authid's format): given to ALTER ROLE instead of the password,
 * so the password itself never reaches the server, its logs or
 * pg_stat_statements. `salt` (16 bytes or more) comes from the stack's
 * state, so the same password gives the same text on every run. Printable
 * ASCII only: SASLprep leaves it unchanged, so the server derives the same
 * keys from the password at login.
 */
export function scramSha256Verifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): string {
    if (!/^[\x21-\x7e]+$/.test(password)) throw new Error("scramSha256Verifier: the password must be printable ASCII without spaces");
    if (salt.length < 16) throw new Error("scramSha256Verifier: the salt must be at least 16 bytes");
    const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/**
 * Creates (or updates the password of) the role and creates the database
 * UTF8 with C collation from template0, as Synapse requires. An existing
 * database with another encoding or collation stops the run with an error
 * rather than being touched. The password is set as its SCRAM verifier
 * (`scramSha256Verifier`), never in clear. Secret all the same: the
 * verifier would let anyone who has it pose as the server to the role.
 */
export function renderCreateDatabaseSql(db: { database: string; user: string }, verifier: string): string {
    if (!/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(verifier))
        throw new Error("renderCreateDatabaseSql: expected a SCRAM-SHA-256 verifier, never a password");
    const role = sqlLiteral(db.user);
    const name = sqlLiteral(db.database);
    return [
        "\\set ON_ERROR_STOP on",
        `SELECT format('CREATE ROLE %I LOGIN', ${role}) WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${role}) \\gexec`,
        `SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', ${role}, ${sqlLiteral(verifier)}) \\gexec`,
        ...renderCreateDatabaseIfMissing(db),
        "DO $$",
        "BEGIN",
        `  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = ${name} AND (pg_encoding_to_char(encoding) <> 'UTF8' OR datcollate <> 'C' OR datctype <> 'C')) THEN`,
        `    RAISE EXCEPTION 'database % exists but is not UTF8 with LC_COLLATE and LC_CTYPE C; Synapse refuses it. Dump it and recreate it (see the README)', ${name};`,
        "  END IF;",
        "END $$;",
        "",
    ].join("\n");
}

/**
 * The psql lines that create the database as Synapse requires it (UTF8,
 * LC_COLLATE and LC_CTYPE C, from template0, owned by the role) when it does
 * not exist; the role must exist. Used by the database step and by a restore
 * into a dropped database.
 */
export function renderCreateDatabaseIfMissing(db: { database: string; user: string }): string[] {
    const role = sqlLiteral(db.user);
    const name = sqlLiteral(db.database);
    return [
        `SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L TEMPLATE template0', ${name}, ${role}, 'UTF8', 'C', 'C')`,
        `  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${name}) \\gexec`,
    ];
}

/**
 * pg_dump's options for a Synapse database, as Synapse's backup guide says:
 * custom format, and the one-time keys' rows left out (the table itself is
 * kept): restored, used keys would be handed out again and messages fail to
 * decrypt.
 */
export const PG_DUMP_OPTIONS = "--format=custom --exclude-table-data=e2e_one_time_keys_json";

/** postgresql.conf fragment (Debian includes conf.d/*.conf): listening and memory tuning. */
export function renderPostgresConf(s: PostgresLocalSettings): string {
    const t = postgresTuning(s.memoryMb);
    return [
        HEADER,
        `listen_addresses = '${s.listenAddresses.join(",")}'`,
        `port = ${s.port}`,
        `shared_buffers = ${t.sharedBuffersMb}MB`,
        `effective_cache_size = ${t.effectiveCacheSizeMb}MB`,
        `work_mem = ${t.workMemMb}MB`,
        `maintenance_work_mem = ${t.maintenanceWorkMemMb}MB`,
        "password_encryption = scram-sha-256",
        // Written with the server's key by the TLS step (when other hosts connect); absent, Debian's own ssl settings stay.
        `include_if_exists = '${POSTGRES_FILES.tlsConf}'`,
        "",
    ].join("\n");
}

/** The ssl settings of a server other hosts reach: the library's certificate and key, TLS 1.2 at least. */
export function renderPostgresSslConf(): string {
    return [
        HEADER,
        "ssl = on",
        `ssl_cert_file = '${POSTGRES_FILES.tlsCert}'`,
        `ssl_key_file = '${POSTGRES_FILES.tlsKey}'`,
        `ssl_ca_file = '${POSTGRES_FILES.tlsCa}'`,
        "ssl_min_protocol_version = 'TLSv1.2'",
        "",
    ].join("\n");
}

/**
 * The pg_hba.conf lines the library manages, between markers so the rest of
 * the file (the distribution's defaults and the user's own lines) is kept.
 * Loopback may connect without TLS; clients on other hosts only over TLS
 * (`hostssl`), and a cleartext connection from their networks is refused
 * for every database and role before any later line could accept it.
 */
export function renderPgHbaBlock(s: PostgresLocalSettings): string {
    const lines = [
        "# BEGIN pulumi-matrix",
        `host    ${s.database.padEnd(15)} ${s.user.padEnd(15)} 127.0.0.1/32            scram-sha-256`,
        `host    ${s.database.padEnd(15)} ${s.user.padEnd(15)} ::1/128                 scram-sha-256`,
        ...s.allowedClients.map((c) => `hostnossl ${"all".padEnd(13)} ${"all".padEnd(15)} ${c.padEnd(23)} reject`),
        ...s.allowedClients.map((c) => `hostssl ${s.database.padEnd(15)} ${s.user.padEnd(15)} ${c.padEnd(23)} scram-sha-256`),
        "# END pulumi-matrix",
    ];
    return lines.join("\n") + "\n";
}

/**
 * The nightly dump script: custom format, written under a temporary name
 * first (removed if the dump fails; a run killed outright leaves its
 * partial, which the next run removes), then pruned to `retention`. As Synapse's backup guide says, the
 * one-time keys' rows are left out (the table itself is kept): restored,
 * used keys would be handed out again and messages fail to decrypt.
 */
export function renderBackupScript(s: PostgresLocalSettings): string {
    return `#!/bin/sh
# Managed by pulumi-matrix: nightly pg_dump of the Synapse database.
set -eu
dir=${s.backup.directory}
db=${s.database}
keep=${s.backup.retention}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
umask 077
# Partials of an interrupted run (a crash, a reboot, a kill): never a usable dump, only space taken.
find "$dir" -maxdepth 1 -type f -name "$db-*.dump.partial" -delete
partial="$dir/$db-$stamp.dump.partial"
trap 'rm -f -- "$partial"' EXIT
pg_dump --port=${s.port} ${PG_DUMP_OPTIONS} --file="$partial" "$db"
mv "$partial" "$dir/$db-$stamp.dump"
# Keep the newest $keep dumps.
ls -1 "$dir" | grep -E "^$db-[0-9]{8}T[0-9]{6}Z\\.dump$" | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    rm -f -- "$dir/$old"
done
`;
}

/** The oneshot service and timer behind the nightly database dump. */
export function renderBackupUnits(s: PostgresLocalSettings, scriptPath: string): { service: string; timer: string } {
    return {
        service: `${HEADER}
[Unit]
Description=Nightly pg_dump of the ${s.database} database
After=postgresql.service
Requires=postgresql.service

[Service]
Type=oneshot
User=postgres
Group=postgres
ExecStart=${scriptPath}
Nice=10
IOSchedulingClass=idle
`,
        timer: renderTimerUnit(`Nightly pg_dump of the ${s.database} database`, s.backup.schedule, "15min"),
    };
}
