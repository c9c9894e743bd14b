import { MIN_POSTGRES_MAJOR, PostgresLocalSettings } from "../model/postgres";
import { renderBackupScript, renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresConf } from "../render/postgres";
import { renderBackupUnits } from "../render/systemd";
import { script, shQuote, writeFile } from "./shell";

export const POSTGRES_FILES = {
    confFragment: (major: string) => `/etc/postgresql/${major}/main/conf.d/50-pulumi-matrix.conf`,
    backupScript: "/usr/local/lib/pulumi-matrix/pg-backup.sh",
    backupService: "/etc/systemd/system/pulumi-matrix-pg-backup.service",
    backupTimer: "/etc/systemd/system/pulumi-matrix-pg-backup.timer",
};

/** Finds the cluster's major version and fails clearly when it is too old for Synapse. */
const DETECT_MAJOR = [
    "major=$(ls -1 /etc/postgresql 2>/dev/null | sort -V | tail -n 1)",
    `if [ -z "$major" ]; then echo "PostgreSQL: no cluster under /etc/postgresql after installing the postgresql package" >&2; exit 1; fi`,
    `if [ "\${major%%.*}" -lt ${MIN_POSTGRES_MAJOR} ]; then echo "PostgreSQL $major is installed, but Synapse needs ${MIN_POSTGRES_MAJOR} or newer: use a newer OS release or an external PostgreSQL" >&2; exit 1; fi`,
];

/**
 * Installs PostgreSQL from the distribution, writes the tuning fragment and
 * the managed pg_hba block, restarts the cluster only when they changed,
 * and sets up the nightly dump.
 */
export function postgresInstallScript(s: PostgresLocalSettings): string {
    const units = renderBackupUnits(s, POSTGRES_FILES.backupScript);
    const hba = renderPgHbaBlock(s);
    return script("pulumi-matrix PostgreSQL server", [
        "pm_apt_install postgresql",
        ...DETECT_MAJOR,
        `echo "PostgreSQL $major"`,
        // Let the package's own start finish first: a restart asked for while systemd is still
        // starting the cluster merges into that start and the new settings would not be read.
        `systemctl start "postgresql@$major-main.service"`,
        "pm_changed=0",
        `conf=$(cat <<'PM_CONF'\n${renderPostgresConf(s).trimEnd()}\nPM_CONF\n)`,
        `printf '%s\\n' "$conf" | pm_write "/etc/postgresql/$major/main/conf.d/50-pulumi-matrix.conf" 0644 postgres postgres`,
        // Replace the managed block of pg_hba.conf, keeping every other line; managed lines go
        // first so they win over the distribution's broader rules.
        "hba=/etc/postgresql/$major/main/pg_hba.conf",
        `block=$(cat <<'PM_HBA'\n${hba.trimEnd()}\nPM_HBA\n)`,
        `{ printf '%s\\n' "$block"; sed '/^# BEGIN pulumi-matrix$/,/^# END pulumi-matrix$/d' "$hba"; } | pm_write "$hba" 0640 postgres postgres`,
        "systemctl enable -q postgresql.service",
        `if [ "$pm_changed" = 1 ]; then systemctl restart "postgresql@$major-main.service"; echo "PostgreSQL restarted"; else systemctl start "postgresql@$major-main.service"; fi`,
        `for i in $(seq 1 60); do runuser -u postgres -- pg_isready -q -p ${s.port} && break; sleep 1; done`,
        `runuser -u postgres -- pg_isready -q -p ${s.port} || { journalctl -u "postgresql@$major-main" -n 30 --no-pager >&2; echo "PostgreSQL did not become ready on port ${s.port}" >&2; exit 1; }`,
        // The running server must have read the fragment (a silently skipped restart leaves it on defaults).
        `actual=$(cd / && runuser -u postgres -- psql -X -At -p ${s.port} -c "SHOW listen_addresses")`,
        `if [ "$actual" != ${shQuote(s.listenAddresses.join(","))} ]; then echo "PostgreSQL listens on '$actual', expected '${s.listenAddresses.join(",")}': the settings in conf.d were not applied" >&2; exit 1; fi`,
        ...(s.backup.enabled ? [
            "pm_changed=0",
            `install -d -m 0700 -o postgres -g postgres ${s.backup.directory}`,
            writeFile({ path: POSTGRES_FILES.backupScript, content: renderBackupScript(s), mode: "0755" }),
            writeFile({ path: POSTGRES_FILES.backupService, content: units.service }),
            writeFile({ path: POSTGRES_FILES.backupTimer, content: units.timer }),
            `if [ "$pm_changed" = 1 ]; then systemctl daemon-reload; fi`,
            "systemctl enable -q --now pulumi-matrix-pg-backup.timer",
        ] : [
            "if systemctl is-enabled -q pulumi-matrix-pg-backup.timer 2>/dev/null; then systemctl disable -q --now pulumi-matrix-pg-backup.timer; fi",
        ]),
    ]);
}

/**
 * Creates the role and database (secret: carries the password). Existing
 * data is never dropped; a database with the wrong collation stops the run.
 */
export function postgresDatabaseScript(s: { database: string; user: string }, password: string): string {
    return script("pulumi-matrix PostgreSQL role and database", [
        `runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'PM_SQL'\n${renderCreateDatabaseSql(s, password).trimEnd()}\nPM_SQL`,
        `echo "database ${s.database} ready"`,
    ]);
}
