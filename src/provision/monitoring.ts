import {
    ALERT_ROOM_UNIT,
    alertRoomPasswordFile,
    EXPORTER_PORTS,
    MONITORING_FILES,
    MONITORING_UNITS,
    MonitoringSettings,
    MonitoringUnit,
    monitoringUnits,
    SYNAPSE_RULES,
} from "../model/monitoring";
import { SynapseSettings } from "../model/synapse";
import { WorkerPoolSettings } from "../model/workers";
import {
    renderAlertmanagerConfig,
    renderAlertRules,
    renderBlackboxConfig,
    renderExporterDefaults,
    renderExporterEnvDropIn,
    renderExportersScrapeConfig,
    renderNginxStatus,
    renderPostgresExporterEnv,
    renderPrometheusConfig,
    renderRedisExporterEnv,
} from "../render/monitoring";
import { ALERT_ROOM_PY, renderAlertRoomConfig, renderAlertRoomUnit } from "../render/monitoringAlertRoom";
import { applyFileSet, ensureRunning, FileSet, handlerStep, ManagedFile, ServiceUnit } from "./apply";
import { heredoc, indent, lines, raw, Sh, sh } from "./sh";
import { script } from "./shell";
import { STANDBY_REASON } from "./synapse";

/**
 * Monitoring's scripts. The server step installs Debian's Prometheus,
 * Alertmanager and exporters, writes their configs (each checked by the
 * program's own checker before it is used), gives the PostgreSQL exporter
 * a role of its own (peer authentication over the local socket: no
 * password), fetches Synapse's recording rules and checks their SHA-256, and
 * restarts only what changed. The SMTP step (secret) writes the password
 * Alertmanager sends e-mail with.
 */

/** The file sets monitoring's steps write (a removal prunes them). */
export const MONITORING_SETS = {
    prometheus: "monitoring-prometheus",
    alertmanager: "monitoring-alertmanager",
    blackbox: "monitoring-blackbox",
    node: "monitoring-node-exporter",
    postgres: "monitoring-postgres-exporter",
    nginx: "monitoring-nginx-exporter",
    nginxStatus: "monitoring-nginx-status",
    scrape: "monitoring-scrape",
    smtp: "monitoring-smtp-secrets",
    credentials: "monitoring-exporter-secrets",
    redis: "monitoring-redis-exporter",
    redisCredentials: "monitoring-redis-secrets",
    alertRoom: "monitoring-alert-room",
} as const;

/** Debian's package of each unit. */
const PACKAGES: Record<MonitoringUnit, string> = MONITORING_UNITS;

/** Where Synapse's recording rules are kept once verified (named by their hash: a new pin downloads again). */
const RULES_CACHE = `/var/cache/pulumi-matrix/synapse-rules-${SYNAPSE_RULES.sha256}`;

/** A unit as handlers see it: healthy once its HTTP endpoint answers on loopback. */
export function monitoringUnit(s: MonitoringSettings, unit: MonitoringUnit): ServiceUnit {
    const port: Record<MonitoringUnit, number> = {
        prometheus: s.prometheusPort,
        alertmanager: s.alertmanagerPort,
        node: EXPORTER_PORTS.node,
        postgres: EXPORTER_PORTS.postgres,
        nginx: EXPORTER_PORTS.nginx,
        blackbox: EXPORTER_PORTS.blackbox,
        redis: EXPORTER_PORTS.redis,
    };
    const path = unit === "prometheus" || unit === "alertmanager" ? "/-/ready" : "/metrics";
    return { name: `${MONITORING_UNITS[unit]}.service`, health: { url: `http://127.0.0.1:${port[unit]}${path}` }, healthTimeout: 120 };
}

/** The alert room's relay as handlers see it: healthy once it answers on its port. */
export function alertRoomUnit(port: number): ServiceUnit {
    return { name: `${ALERT_ROOM_UNIT}.service`, health: { url: `http://127.0.0.1:${port}/health` }, healthTimeout: 60 };
}

/**
 * The alert room's step, after Synapse answers and before the server step
 * (whose Alertmanager reads the webhook token): the relay's program, settings
 * and unit; `setup` makes the tokens on the host (never leaving it), registers
 * and logs in the bot, joins the room; a new token restarts the relay.
 */
export function monitoringAlertRoomScript(s: MonitoringSettings): string {
    const r = s.alertRoom;
    if (!r) throw new Error("monitoringAlertRoomScript: no alert room");
    // The bot registers and joins through Synapse's API: in standby that waits, and runs when standby ends (the script changes).
    // Its password moves into Synapse's secrets even then: a standby's final backup must carry it.
    if (r.synapseStandby)
        return script("pulumi-matrix monitoring alert room", [
            alertRoomPasswordMove(r.passwordFile),
            sh`echo ${`${STANDBY_REASON}: the alert room's bot is set up once Synapse runs`}`,
        ]);
    const f = MONITORING_FILES;
    const unit = alertRoomUnit(r.port);
    return script("pulumi-matrix monitoring alert room", [
        alertRoomPasswordMove(r.passwordFile),
        // Alertmanager's package makes the prometheus group the webhook token is readable by.
        sh`pm_apt_install ${[PACKAGES.alertmanager, "python3"]}`,
        sh`install -d -m 0755 -o root -g root ${f.dir}`,
        sh`install -d -m 0750 -o root -g prometheus ${f.secretDir}`,
        applyFileSet({
            name: MONITORING_SETS.alertRoom,
            files: [
                { path: f.alertRoomProgram, content: ALERT_ROOM_PY, mode: "0755" },
                { path: f.alertRoomConfig, content: renderAlertRoomConfig(s) },
                { path: f.alertRoomUnit, content: renderAlertRoomUnit() },
            ],
            onChange: [{ kind: "daemon-reload" }, { kind: "restart", unit }],
        }),
        sh`pm_out=$(python3 ${f.alertRoomProgram} setup ${f.alertRoomConfig})`,
        sh`printf '%s
' "$pm_out" | grep -vx 'credentials changed' || true`,
        sh`if printf '%s
' "$pm_out" | grep -qx 'credentials changed'; then`,
        indent(handlerStep({ kind: "restart", unit })),
        sh`fi`,
        ensureRunning([unit]),
    ]);
}

/**
 * The bot's password, from where earlier releases kept it into Synapse's
 * secrets (`alertRoomPasswordFile`), once: backups carry it from there.
 */
function alertRoomPasswordMove(passwordFile: string): Sh {
    const former = MONITORING_FILES.alertRoomPasswordFormer;
    return sh`if [ -e ${former} ] && [ ! -e ${passwordFile} ]; then mv -- ${former} ${passwordFile}; echo ${`the alert room's bot's password moved to ${passwordFile} (backups carry it)`}; fi`;
}

/**
 * The alert room taken away (monitoring stays): the relay stops, its files
 * and tokens go; the bot's account stays, and so does its password (among
 * Synapse's secrets), for the day the alert room comes back.
 */
function alertRoomRemoval(synapse: SynapseSettings): Sh {
    const f = MONITORING_FILES;
    const unit = `${ALERT_ROOM_UNIT}.service`;
    return lines([
        sh`if systemctl is-active -q ${unit} || systemctl is-enabled -q ${unit} 2>/dev/null; then systemctl disable -q --now ${unit}; echo ${"stopped the alert room's relay: monitoring.alertRoom is no longer set"}; fi`,
        applyFileSet({ name: MONITORING_SETS.alertRoom, files: [], onChange: [{ kind: "daemon-reload" }] }),
        alertRoomPasswordMove(alertRoomPasswordFile(synapse.paths)),
        sh`rm -f -- ${[f.alertRoomWebhookToken, f.alertRoomAccessToken]}`,
    ]);
}

/** `/etc/default/<unit>` (the arguments Debian's unit reads), plus files of the unit's own. */
function unitSet(s: MonitoringSettings, unit: MonitoringUnit, name: string, files: ManagedFile[], check?: Sh, dropIn = false): FileSet {
    const u = monitoringUnit(s, unit);
    return {
        name,
        files: [...files, { path: `/etc/default/${PACKAGES[unit]}`, content: renderExporterDefaults(s, unit) }],
        ...(check ? { check } : {}),
        onChange: [...(dropIn ? [{ kind: "daemon-reload" as const }] : []), { kind: "restart", unit: u }],
    };
}

/** Synapse's recording rules from `url` (the pinned tag's, or a mirror), verified against the pinned SHA-256 (kept once verified). */
function fetchSynapseRules(url: string): Sh {
    return lines([
        sh`if ! printf '%s  %s\n' ${SYNAPSE_RULES.sha256} ${RULES_CACHE} | sha256sum -c --status 2>/dev/null; then`,
        sh`    install -d -m 0755 /var/cache/pulumi-matrix`,
        sh`    pm_rules=$(mktemp ${`${RULES_CACHE}.XXXXXX`})`,
        sh`    curl -fsSL --retry 3 --max-time 120 -o "$pm_rules" ${url} || { rm -f "$pm_rules"; echo ${`Synapse's recording rules could not be fetched from ${url} (above): set synapseRulesUrl (the stack key monitoringSynapseRulesUrl) to a copy of the file of ${SYNAPSE_RULES.tag} this host reaches, or to none`} >&2; exit 1; }`,
        sh`    if ! printf '%s  %s\n' ${SYNAPSE_RULES.sha256} "$pm_rules" | sha256sum -c --status; then`,
        sh`        rm -f "$pm_rules"; echo ${`Synapse's recording rules at ${url} do not have the pinned SHA-256 ${SYNAPSE_RULES.sha256} (the file of ${SYNAPSE_RULES.tag}); not using them`} >&2; exit 1`,
        sh`    fi`,
        sh`    mv -f "$pm_rules" ${RULES_CACHE}`,
        sh`    echo ${`fetched Synapse's recording rules (${SYNAPSE_RULES.tag}) from ${url}, SHA-256 verified`}`,
        sh`fi`,
    ]);
}

/** The `prometheus` role the PostgreSQL exporter logs in as (peer authentication on the local socket), with pg_monitor. */
export const POSTGRES_EXPORTER_ROLE_SQL = [
    "DO $$ BEGIN",
    "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'prometheus') THEN CREATE ROLE prometheus LOGIN; END IF;",
    "END $$;",
    "GRANT pg_monitor TO prometheus;",
    "",
].join("\n");

function postgresRole(port: number): Sh {
    return heredoc(sh`(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p ${port} -d postgres)`, POSTGRES_EXPORTER_ROLE_SQL);
}

/**
 * Installs and configures everything monitoring runs on Synapse's host, for
 * what is there (`s`): Prometheus with every target on the host, the
 * alert rules, Alertmanager, the exporters, blackbox's probes, and the
 * exporters' scrape file for a Prometheus of the user's own. Workers on
 * other hosts whose metrics are opened to this host (the pool's
 * `metricsScrapedFrom`) are scraped at their private addresses
 * (`privateAddresses`, by host label).
 */
export function monitoringServerScript(
    s: MonitoringSettings,
    synapse: SynapseSettings,
    pool?: WorkerPoolSettings,
    privateAddresses: Record<string, string> = {},
): string {
    const f = MONITORING_FILES;
    const units = monitoringUnits(s);
    const body: (Sh | string)[] = [
        sh`pm_apt_install ${units.map((u) => PACKAGES[u])}`,
        sh`install -d -m 0755 -o root -g root ${f.dir} ${f.rulesDir} /etc/pulumi-matrix/prometheus`,
        sh`install -d -m 0750 -o root -g prometheus ${f.secretDir}`,
        ...(s.synapseRulesUrl !== undefined ? [fetchSynapseRules(s.synapseRulesUrl)] : []),
        applyFileSet(
            unitSet(
                s,
                "prometheus",
                MONITORING_SETS.prometheus,
                [
                    { path: f.prometheus, content: renderPrometheusConfig(s, synapse, pool, privateAddresses) },
                    { path: f.alertRules, content: renderAlertRules() },
                    ...(s.synapseRulesUrl !== undefined ? [{ path: f.synapseRules, generate: sh`cat ${RULES_CACHE}` }] : []),
                ],
                sh`promtool check config ${f.prometheus} >/dev/null`,
            ),
        ),
        applyFileSet(
            unitSet(
                s,
                "alertmanager",
                MONITORING_SETS.alertmanager,
                [{ path: f.alertmanager, content: renderAlertmanagerConfig(s) }],
                sh`amtool check-config ${f.alertmanager} >/dev/null`,
            ),
        ),
        applyFileSet(
            unitSet(
                s,
                "blackbox",
                MONITORING_SETS.blackbox,
                [{ path: f.blackbox, content: renderBlackboxConfig(s) }],
                sh`prometheus-blackbox-exporter --config.check --config.file=${f.blackbox} >/dev/null 2>&1`,
            ),
        ),
        applyFileSet(unitSet(s, "node", MONITORING_SETS.node, [])),
        sh`install -d -m 0755 -o root -g root ${f.textfileDir}`,
        ...(s.alertRoom ? [] : [alertRoomRemoval(synapse)]),
    ];
    const credentials: ManagedFile[] = [];
    if (s.postgres) {
        body.push(postgresRole(s.postgres.port));
        credentials.push({ path: f.postgresEnv, content: renderPostgresExporterEnv(s), mode: "0600" });
    }
    // The exporters' credentials: root-only files systemd reads for the unit (EnvironmentFile=), never a command line or a readable unit.
    body.push(
        applyFileSet({
            name: MONITORING_SETS.credentials,
            secret: true,
            files: credentials,
            onChange: [...(s.postgres ? [{ kind: "owe-restart" as const, unit: monitoringUnit(s, "postgres") }] : [])],
        }),
    );
    const dropIn = (unit: MonitoringUnit) => `/etc/systemd/system/${MONITORING_UNITS[unit]}.service.d/pulumi-matrix.conf`;
    body.push(
        applyFileSet(
            s.postgres
                ? unitSet(
                      s,
                      "postgres",
                      MONITORING_SETS.postgres,
                      [{ path: dropIn("postgres"), content: renderExporterEnvDropIn(f.postgresEnv) }],
                      undefined,
                      true,
                  )
                : { name: MONITORING_SETS.postgres, files: [], onChange: [{ kind: "daemon-reload" }] },
        ),
    );
    body.push(
        s.redis
            ? applyFileSet(
                  unitSet(s, "redis", MONITORING_SETS.redis, [{ path: dropIn("redis"), content: renderExporterEnvDropIn(f.redisEnv) }], undefined, true),
              )
            : lines([
                  // Redis left the host (or never was): the exporter stops, and its arguments and login go.
                  applyFileSet({ name: MONITORING_SETS.redis, files: [], onChange: [{ kind: "daemon-reload" }] }),
                  applyFileSet({ name: MONITORING_SETS.redisCredentials, files: [] }),
                  sh`if systemctl is-active -q ${`${MONITORING_UNITS.redis}.service`}; then systemctl disable -q --now ${`${MONITORING_UNITS.redis}.service`}; fi`,
              ]),
    );
    if (s.proxy) {
        const nginx: ServiceUnit = { name: "nginx.service" };
        body.push(
            applyFileSet({
                name: MONITORING_SETS.nginxStatus,
                files: [{ path: f.nginxStatus, content: renderNginxStatus(s) }],
                check: sh`nginx -t -q`,
                onChange: [{ kind: "reload", unit: nginx }],
            }),
            applyFileSet(unitSet(s, "nginx", MONITORING_SETS.nginx, [])),
        );
    }
    body.push(
        applyFileSet({ name: MONITORING_SETS.scrape, files: [{ path: f.exportersScrape, content: renderExportersScrapeConfig(s) }] }),
        ensureRunning(units.map((u) => monitoringUnit(s, u))),
        sh`echo ${`Prometheus on 127.0.0.1:${s.prometheusPort}, Alertmanager on 127.0.0.1:${s.alertmanagerPort} (reach them through an SSH tunnel)`}`,
    );
    return script("pulumi-matrix monitoring", body);
}

/**
 * The SMTP password Alertmanager sends alerts with (secret stdin), readable
 * by Alertmanager's user only (`auth_password_file`); Alertmanager restarts
 * with a new one. Runs before the server step (which starts Alertmanager):
 * it installs Alertmanager first, for its user.
 */
export function monitoringSmtpSecretScript(s: MonitoringSettings, password: string): string {
    return script("pulumi-matrix monitoring SMTP password", [
        sh`pm_apt_install ${PACKAGES.alertmanager}`,
        sh`install -d -m 0755 -o root -g root ${MONITORING_FILES.dir}`,
        sh`install -d -m 0750 -o root -g prometheus ${MONITORING_FILES.secretDir}`,
        applyFileSet({
            name: MONITORING_SETS.smtp,
            files: [{ path: MONITORING_FILES.smtpPassword, content: `${password}\n`, mode: "0640", group: "prometheus" }],
            onChange: [{ kind: "restart", unit: monitoringUnit(s, "alertmanager") }],
        }),
    ]);
}

/**
 * The Redis exporter's login (secret stdin): its ACL user and the password
 * the RedisServer made for it, in a root-only environment file systemd
 * reads for the exporter's unit; the exporter restarts with a new one. Runs
 * before the server step, which starts the exporter (it installs the
 * exporter first, for the prometheus user).
 */
export function monitoringRedisSecretScript(s: MonitoringSettings, password: string): string {
    return script("pulumi-matrix monitoring Redis exporter login", [
        // The package makes the prometheus user the private directory's group is.
        sh`pm_apt_install ${PACKAGES.redis}`,
        sh`install -d -m 0755 -o root -g root ${MONITORING_FILES.dir}`,
        sh`install -d -m 0750 -o root -g prometheus ${MONITORING_FILES.secretDir}`,
        applyFileSet({
            name: MONITORING_SETS.redisCredentials,
            files: [{ path: MONITORING_FILES.redisEnv, content: renderRedisExporterEnv(password), mode: "0600" }],
            onChange: [{ kind: "restart", unit: monitoringUnit(s, "redis") }],
        }),
    ]);
}

/**
 * Turns off the monitoring an earlier deployment set up on this host:
 * its units are stopped and disabled (the packages stay installed),
 * everything its steps wrote is removed (nginx reloads without the status
 * page), and Prometheus's data is kept in /var/lib/prometheus. Changes
 * nothing on a host that never had it.
 */
export function monitoringRemovalScript(): string {
    const units = [...Object.values(MONITORING_UNITS), ALERT_ROOM_UNIT].map((u) => `${u}.service`);
    return script("pulumi-matrix monitoring removed", [
        sh`if [ -d ${MONITORING_FILES.dir} ]; then`,
        sh`    for pm_unit in ${units}; do`,
        sh`        systemctl disable -q "$pm_unit" 2>/dev/null || true`,
        sh`        if systemctl is-active -q "$pm_unit"; then systemctl stop "$pm_unit"; echo "stopped $pm_unit: monitoring is no longer part of this deployment"; fi`,
        sh`    done`,
        sh`fi`,
        ...Object.values(MONITORING_SETS).map((name) =>
            applyFileSet({
                name,
                files: [],
                ...(name === MONITORING_SETS.nginxStatus
                    ? { onChange: [{ kind: "reload" as const, unit: { name: "nginx.service" }, check: sh`nginx -t -q` }] }
                    : {}),
                ...(name === MONITORING_SETS.postgres || name === MONITORING_SETS.alertRoom ? { onChange: [{ kind: "daemon-reload" as const }] } : {}),
            }),
        ),
        sh`if [ -d ${MONITORING_FILES.dir} ]; then rm -rf -- ${MONITORING_FILES.dir}; echo ${`removed ${MONITORING_FILES.dir}`}; fi`,
        raw(": monitoring is off"),
    ]);
}
