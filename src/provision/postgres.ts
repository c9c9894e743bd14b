import { MIN_POSTGRES_MAJOR, POSTGRES_FILES, postgresFirewallRules, PostgresLocalSettings } from "../model/postgres";
import {
    renderBackupScript,
    renderBackupUnits,
    renderCreateDatabaseSql,
    renderPgHbaBlock,
    renderPostgresConf,
    renderPostgresSslConf,
    scramSha256Verifier,
} from "../render/postgres";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { heredoc, heredocVar, raw, Sh, sh } from "./sh";
import { script, STATE_DIR } from "./shell";

const BACKUP_TIMER = "pulumi-matrix-pg-backup.timer";
const POSTGRES_UNIT: ServiceUnit = { name: "postgresql.service" };
/** The marker of a reload owed to the cluster (pg_hba.conf changed): kept on the host until the reload is done. */
const POSTGRES_RELOAD = "postgresql-reload";
/** The server's own reload, without the cluster unit's name (known only on the host); a running server is assumed. */
function reloadServer(port: number) {
    return sh`(cd / && runuser -u postgres -- psql -X -q -At -p ${port} -c "SELECT pg_reload_conf()" >/dev/null)`;
}

/** Finds the cluster's major version and fails clearly when it is too old for Synapse. */
const DETECT_MAJOR = [
    sh`major=$(ls -1 /etc/postgresql 2>/dev/null | sort -V | tail -n 1)`,
    sh`if [ -z "$major" ]; then echo "PostgreSQL: no cluster under /etc/postgresql after installing the postgresql package" >&2; exit 1; fi`,
    // An OS upgrade brings the distribution's next major version, whose package creates a new, empty cluster beside the one
    // with the data: configuring the newest would leave Synapse on an empty database. The data moves by the steps below, by hand.
    sh`majors=$(ls -1 /etc/postgresql | sort -V | paste -sd ' ' -)`,
    sh`if [ "$majors" != "$major" ]; then`,
    sh`    old=${raw('"${majors%% *}"')}`,
    sh`    printf 'PostgreSQL clusters of several major versions are on this host (%s): the distribution'"'"'s PostgreSQL changed its major version (an OS upgrade). pulumi-matrix does not move the data between them and stops here, before configuring either cluster.\n  To migrate the data to %s: systemctl stop matrix-synapse.target; take a backup (pulumi-matrix-backup run, or pg_dump); pg_dropcluster --stop %s main (the empty cluster the new package created: check with pg_lsclusters first); pg_upgradecluster %s main; check that Synapse works on it; then pg_dropcluster %s main, and deploy again.\n' "$majors" "$major" "$major" "$old" "$old" >&2`,
    sh`    exit 1`,
    sh`fi`,
    sh`if [ ${raw('"${major%%.*}"')} -lt ${MIN_POSTGRES_MAJOR} ]; then echo "PostgreSQL $major is installed, but Synapse needs "${MIN_POSTGRES_MAJOR}" or newer: use a newer OS release or an external PostgreSQL" >&2; exit 1; fi`,
];

/**
 * Stops the run when pg_hba.conf's managed block is not one whole
 * `# BEGIN pulumi-matrix` ... `# END pulumi-matrix` pair (a marker lost by a
 * hand edit): replacing from a lone BEGIN would delete every line after it.
 */
const CHECK_HBA_MARKERS = sh`if ! awk 'BEGIN { o = 0; b = 0 } /^# BEGIN pulumi-matrix$/ { if (o) b = 1; o = 1; next } /^# END pulumi-matrix$/ { if (!o) b = 1; o = 0 } END { exit (b || o) }' "$hba"; then echo "$hba: the '# BEGIN pulumi-matrix' and '# END pulumi-matrix' lines do not pair up (one was removed or repeated by hand); nothing was changed: restore the pair around the managed lines, or remove the managed block entirely, then run again" >&2; exit 1; fi`;

/**
 * The managed block of pg_hba.conf (`$hba` names the file on the host):
 * checked for a whole marker pair, then replaced, keeping every other line;
 * managed lines go first so they win over the distribution's broader rules.
 * A change owes a reload (kept on the host until `pgReloadIfOwed` has done it).
 */
export function pgHbaSteps(s: PostgresLocalSettings): Sh[] {
    return [
        heredocVar("block", renderPgHbaBlock(s).trimEnd()),
        CHECK_HBA_MARKERS,
        applyFileSet({
            name: "postgres-hba",
            files: [
                {
                    path: raw(`"$hba"`),
                    generate: sh`{ printf '%s\n' "$block"; sed '/^# BEGIN pulumi-matrix$/,/^# END pulumi-matrix$/d' "$hba"; }`,
                    mode: "0640",
                    owner: "postgres",
                    group: "postgres",
                },
            ],
            prune: false,
            // pg_hba.conf is read again on a reload: no connection is dropped for it. Owed on the host until done.
            onChange: [{ kind: "run", command: sh`pm_owe ${POSTGRES_RELOAD}` }],
        }),
    ];
}

/** Reloads the server when a reload is owed (pg_hba.conf or the TLS files changed), then clears the debt; `what` names it in the output. */
export function pgReloadIfOwed(port: number, what: string): Sh {
    return sh`if [ -e ${`${STATE_DIR}/owed-restart/${POSTGRES_RELOAD}`} ]; then ${reloadServer(port)}; pm_take ${POSTGRES_RELOAD}; echo ${`PostgreSQL reloaded (${what})`}; fi`;
}

/**
 * Installs PostgreSQL from the distribution, writes the tuning fragment and
 * the managed pg_hba block, restarts the cluster when the tuning changed
 * and only reloads it when pg_hba.conf alone did, opens its firewall
 * fragment, and sets up the nightly dump.
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
        ...pgHbaSteps(s),
        applyFileSet({
            name: "postgres-server",
            files: [
                {
                    path: raw(`"/etc/postgresql/$major/main/conf.d/50-pulumi-matrix.conf"`),
                    content: renderPostgresConf(s),
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
        sh`if pm_take ${POSTGRES_UNIT.name}; then systemctl restart ${clusterUnit}; echo "PostgreSQL restarted"; pm_take ${POSTGRES_RELOAD} || true; else systemctl start ${clusterUnit}; fi`,
        sh`for i in $(seq 1 60); do runuser -u postgres -- pg_isready -q -p ${s.port} && break; sleep 1; done`,
        sh`runuser -u postgres -- pg_isready -q -p ${s.port} || { journalctl -u ${clusterUnit} -n 30 --no-pager >&2; echo "PostgreSQL did not become ready on port "${s.port} >&2; exit 1; }`,
        pgReloadIfOwed(s.port, "pg_hba.conf"),
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
 * Creates the role and database (secret: carries the password's SCRAM
 * verifier, computed here from the password and the salt the stack keeps,
 * so the password itself never reaches the server). Existing data is never
 * dropped; a database with the wrong collation stops the run.
 */
export function postgresDatabaseScript(s: { database: string; user: string }, password: string, salt: Buffer): string {
    return script("pulumi-matrix PostgreSQL role and database", [
        heredoc(sh`runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres`, renderCreateDatabaseSql(s, scramSha256Verifier(password, salt))),
        sh`echo ${`database ${s.database} ready`}`,
    ]);
}

/** The server's certificate, its key (secret) and the CA that signed it, from the library's CA (see components/privateCa.ts). */
export interface ServerTls {
    /** PEM of the server's certificate. */
    certificate: string;
    /** PEM of its private key (secret). */
    privateKey: string;
    /** PEM of the CA's certificate, which clients verify against. */
    caCertificate: string;
}

/**
 * Writes the server's TLS key and certificate and the ssl settings that
 * name them (secret stdin: the key), then reloads PostgreSQL, which reads
 * ssl files again on a reload. Without `tls` (no other host connects) it
 * removes them and the server falls back to the distribution's ssl
 * settings. The directory is root's, so the postgres user cannot swap a
 * file for a link.
 */
export function postgresTlsScript(s: PostgresLocalSettings, tls: ServerTls | undefined): string {
    const f = POSTGRES_FILES;
    return script("pulumi-matrix PostgreSQL TLS", [
        ...DETECT_MAJOR,
        ...(tls ? [sh`install -d -m 0755 -o root -g root ${f.tlsDir}`] : []),
        applyFileSet({
            name: "postgres-tls",
            // A secret step: every file is recorded by its hash only, the public ones too.
            secret: true,
            files: tls
                ? [
                      { path: f.tlsCa, content: ensureNewline(tls.caCertificate) },
                      { path: f.tlsCert, content: ensureNewline(tls.certificate) },
                      // PostgreSQL refuses a key that others may read: 0600, its own.
                      { path: f.tlsKey, content: ensureNewline(tls.privateKey), mode: "0600", owner: "postgres", group: "postgres" },
                      { path: f.tlsConf, content: renderPostgresSslConf() },
                  ]
                : [],
            onChange: [{ kind: "run", command: sh`pm_owe ${POSTGRES_RELOAD}` }],
        }),
        pgReloadIfOwed(s.port, "TLS"),
        ...(tls
            ? [
                  // A key or certificate PostgreSQL cannot load leaves the old ones in use (and a log line): say so here.
                  sh`pm_ok=0; for i in $(seq 1 20); do if openssl s_client -starttls postgres -connect ${connectTo(s)} -CAfile ${f.tlsCa} -verify_return_error </dev/null >/dev/null 2>&1; then pm_ok=1; break; fi; sleep 1; done`,
                  sh`if [ "$pm_ok" != 1 ]; then echo "PostgreSQL does not serve a certificate of the library's CA on port "${s.port}"; see: journalctl -u postgresql@$major-main" >&2; exit 1; fi`,
                  sh`echo ${`PostgreSQL speaks TLS with the library's certificate on port ${s.port}`}`,
              ]
            : []),
    ]);
}

/** Where the TLS check dials: loopback when the server listens there, else its first address. */
function connectTo(s: PostgresLocalSettings): string {
    const a = s.listenAddresses.includes("127.0.0.1") ? "127.0.0.1" : s.listenAddresses[0];
    return a.includes(":") ? `[${a}]:${s.port}` : `${a}:${s.port}`;
}

function ensureNewline(pem: string): string {
    return pem.endsWith("\n") ? pem : `${pem}\n`;
}
