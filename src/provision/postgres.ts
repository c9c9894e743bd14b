import { MIN_POSTGRES_MAJOR, POSTGRES_FILES, postgresFirewallRules, PostgresLocalSettings } from "../model/postgres";
import { renderBackupScript, renderBackupUnits, renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresConf } from "../render/postgres";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { heredoc, heredocVar, raw, sh } from "./sh";
import { script } from "./shell";

const BACKUP_TIMER = "pulumi-matrix-pg-backup.timer";
const POSTGRES_UNIT: ServiceUnit = { name: "postgresql.service" };

/** Finds the cluster's major version and fails clearly when it is too old for Synapse. */
const DETECT_MAJOR = [
    sh`major=$(ls -1 /etc/postgresql 2>/dev/null | sort -V | tail -n 1)`,
    sh`if [ -z "$major" ]; then echo "PostgreSQL: no cluster under /etc/postgresql after installing the postgresql package" >&2; exit 1; fi`,
    sh`if [ ${raw('"${major%%.*}"')} -lt ${MIN_POSTGRES_MAJOR} ]; then echo "PostgreSQL $major is installed, but Synapse needs "${MIN_POSTGRES_MAJOR}" or newer: use a newer OS release or an external PostgreSQL" >&2; exit 1; fi`,
];

/**
 * Installs PostgreSQL from the distribution, writes the tuning fragment and
 * the managed pg_hba block, restarts the cluster only when they changed,
 * opens its firewall fragment, and sets up the nightly dump.
 */
export function postgresInstallScript(s: PostgresLocalSettings, component: string): string {
    const units = renderBackupUnits(s, POSTGRES_FILES.backupScript);
    const clusterUnit = raw(`"postgresql@$major-main.service"`);
    return script("pulumi-matrix PostgreSQL server", [
        sh`pm_apt_install postgresql`,
        ...DETECT_MAJOR,
        sh`echo "PostgreSQL $major"`,
        // Let the package's own start finish first: a restart asked for while systemd is still
        // starting the cluster merges into that start and the new settings would not be read.
        sh`systemctl start ${clusterUnit}`,
        // Replace the managed block of pg_hba.conf, keeping every other line; managed lines go
        // first so they win over the distribution's broader rules.
        sh`hba="/etc/postgresql/$major/main/pg_hba.conf"`,
        heredocVar("block", renderPgHbaBlock(s).trimEnd()),
        applyFileSet({
            name: "postgres-server",
            files: [
                {
                    path: raw(`"/etc/postgresql/$major/main/conf.d/50-pulumi-matrix.conf"`),
                    content: renderPostgresConf(s),
                    owner: "postgres",
                    group: "postgres",
                },
                {
                    path: raw(`"$hba"`),
                    generate: sh`{ printf '%s\n' "$block"; sed '/^# BEGIN pulumi-matrix$/,/^# END pulumi-matrix$/d' "$hba"; }`,
                    mode: "0640",
                    owner: "postgres",
                    group: "postgres",
                },
            ],
            // The file names depend on the major version: nothing to prune by name.
            prune: false,
            // Owed under the umbrella unit's name; the cluster unit's name is only known on the host.
            onChange: [{ kind: "owe-restart", unit: POSTGRES_UNIT }],
        }),
        sh`systemctl enable -q postgresql.service`,
        sh`if pm_take ${POSTGRES_UNIT.name}; then systemctl restart ${clusterUnit}; echo "PostgreSQL restarted"; else systemctl start ${clusterUnit}; fi`,
        sh`for i in $(seq 1 60); do runuser -u postgres -- pg_isready -q -p ${s.port} && break; sleep 1; done`,
        sh`runuser -u postgres -- pg_isready -q -p ${s.port} || { journalctl -u ${clusterUnit} -n 30 --no-pager >&2; echo "PostgreSQL did not become ready on port "${s.port} >&2; exit 1; }`,
        // The running server must have read the fragment (a silently skipped restart leaves it on defaults).
        sh`actual=$(cd / && runuser -u postgres -- psql -X -At -p ${s.port} -c "SHOW listen_addresses")`,
        sh`if [ "$actual" != ${s.listenAddresses.join(",")} ]; then echo "PostgreSQL listens on '$actual', expected '"${s.listenAddresses.join(",")}"': the settings in conf.d were not applied" >&2; exit 1; fi`,
        applyFileSet(firewallFragmentSet(component, postgresFirewallRules(s))),
        ...(s.backup.enabled
            ? [
                  sh`install -d -m 0700 -o postgres -g postgres ${s.backup.directory}`,
                  applyFileSet({
                      name: "postgres-backup",
                      files: [
                          { path: POSTGRES_FILES.backupScript, content: renderBackupScript(s), mode: "0755" },
                          { path: POSTGRES_FILES.backupService, content: units.service },
                          { path: POSTGRES_FILES.backupTimer, content: units.timer },
                      ],
                      onChange: [{ kind: "daemon-reload" }],
                  }),
                  ensureRunning([{ name: BACKUP_TIMER }]),
              ]
            : [sh`if systemctl is-enabled -q ${BACKUP_TIMER} 2>/dev/null; then systemctl disable -q --now ${BACKUP_TIMER}; fi`]),
    ]);
}

/**
 * Creates the role and database (secret: carries the password). Existing
 * data is never dropped; a database with the wrong collation stops the run.
 */
export function postgresDatabaseScript(s: { database: string; user: string }, password: string): string {
    return script("pulumi-matrix PostgreSQL role and database", [
        heredoc(sh`runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres`, renderCreateDatabaseSql(s, password)),
        sh`echo ${`database ${s.database} ready`}`,
    ]);
}
