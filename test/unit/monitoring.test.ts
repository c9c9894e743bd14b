import * as assert from "node:assert/strict";
import * as path from "node:path";

import { parse } from "yaml";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { MonitoringServer } from "../../components/MonitoringServer";
import { RedisServer } from "../../components/RedisServer";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { WorkerPool } from "../../components/WorkerPool";
import { BACKUP_FILES, BACKUP_METRIC } from "../../src/model/backup";
import { ConfigErrors } from "../../src/model/errors";
import {
    checkMonitoredWorkers,
    MONITORING_FILES,
    MonitoringContext,
    MonitoringOptions,
    monitoringPortClaims,
    resolveMonitoringSettings,
    SYNAPSE_RULES,
} from "../../src/model/monitoring";
import { REDIS_EXPORTER_USER } from "../../src/model/redis";
import { planStack } from "../../src/model/stack";
import { resolveSynapseSettings } from "../../src/model/synapse";
import {
    monitoringAlertRoomScript,
    monitoringRedisSecretScript,
    monitoringRemovalScript,
    monitoringServerScript,
    monitoringSmtpSecretScript,
} from "../../src/provision/monitoring";
import {
    alertRules,
    renderAlertmanagerConfig,
    renderAlertRules,
    renderBlackboxConfig,
    renderExporterDefaults,
    renderExportersScrapeConfig,
    renderPrometheusConfig,
    renderRedisExporterEnv,
} from "../../src/render/monitoring";
import { ALERT_ROOM_PY, renderAlertRoomConfig, renderAlertRoomUnit } from "../../src/render/monitoringAlertRoom";
import { golden } from "../support/golden";
import {
    GOLDEN_REMOTE_WORKER_PEERS,
    goldenProxySettings,
    goldenRemoteWorkerPool,
    goldenScrapedRemoteWorkerPool,
    goldenSynapseSettings,
    goldenWorkerPool,
    goldenWorkerSynapse,
    stackArgs,
    TEST_HOST_KEY,
    TEST_SSH_KEY,
} from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";
import { programError } from "../support/unit/programRun";
import { rejects } from "../support/unit/stack";
import { twoHostHomeserver } from "../support/unit/twoHosts";

/** Everything on the host: PostgreSQL, the proxy; alerts by mail through the golden Synapse's SMTP server (with a user). */
export function goldenMonitoringContext(): MonitoringContext {
    const proxy = goldenProxySettings();
    return {
        synapse: goldenWorkerSynapse(),
        host: 'Host "vm"',
        postgres: { port: 5432, database: "synapse" },
        redis: { port: 6379, tls: false },
        proxy: { domain: proxy.homeserverDomain, address: "127.0.0.1", acme: proxy.acme },
    };
}

export function goldenMonitoringSettings(o: MonitoringOptions = { alertEmail: { to: ["ops@example.com", "oncall@example.com"] } }) {
    return resolveMonitoringSettings('MonitoringServer "golden"', o, goldenMonitoringContext());
}

const C = 'MonitoringServer "m"';
const resolve =
    (o: MonitoringOptions, ctx: Partial<MonitoringContext> = {}) =>
    () =>
        resolveMonitoringSettings(C, o, { synapse: goldenSynapseSettings(), host: 'Host "vm"', ...ctx });

describe("MonitoringServer: settings", () => {
    it("fills the defaults: Prometheus on 9090, Alertmanager on 9193 (9093 is Synapse's replication), 30 days, no receiver", () => {
        const s = resolve({})();
        assert.equal(s.prometheusPort, 9090);
        assert.equal(s.alertmanagerPort, 9193);
        assert.equal(s.retention, "30d");
        assert.equal(s.alertEmail, undefined);
        assert.equal(s.healthUrl, "http://127.0.0.1:8008/health");
        // Every port on loopback.
        assert.ok(monitoringPortClaims(s).every((c) => c.address === "127.0.0.1"));
    });

    it("mails alerts through Synapse's SMTP server: host, port, user, TLS; the sender defaults to notifFrom", () => {
        const s = resolve({ alertEmail: { to: ["ops@example.com"] } })();
        assert.deepEqual(s.alertEmail, {
            to: ["ops@example.com"],
            from: "Matrix <noreply@example.com>",
            smtp: { host: "smtp.example.com", port: 587, user: "matrix", requireTls: true },
        });
    });

    it("refuses each bad input with setting, value and what is valid", () => {
        rejects(resolve({ retention: "forever" }), "retention", '"forever"', /expected a whole number with h, d, w or y/);
        rejects(resolve({ prometheusPort: 0 }), "prometheusPort", "0", /expected a whole number from 1 to 65535/);
        rejects(resolve({ alertmanagerPort: 70000 }), "alertmanagerPort", "70000", /expected a whole number from 1 to 65535/);
        // An alert receiver without its address.
        rejects(resolve({ alertEmail: {} }), "alertEmail.to", "not set", /an e-mail receiver needs its addresses/);
        rejects(resolve({ alertEmail: { to: [] } }), "alertEmail.to", "empty", /an e-mail receiver needs its addresses/);
        rejects(resolve({ alertEmail: { to: ["nobody"] } }), "alertEmail.to", '"nobody"', /expected e-mail addresses/);
        rejects(resolve({ alertEmail: { to: ["ops@example.com"], from: "nobody" } }), "alertEmail.from", '"nobody"', /expected a sender/);
        // No SMTP server to send through.
        const noMail = () =>
            resolveMonitoringSettings(
                C,
                { alertEmail: { to: ["ops@example.com"] } },
                { synapse: resolveSynapseSettings("s", { serverName: "example.com" }), host: 'Host "vm"' },
            );
        rejects(noMail, "alertEmail", "set", /alerts are sent through Synapse's SMTP server, and synapse.email is not set/);
        rejects(resolve({ nginxStatusPort: 8089 }), "nginxStatusPort", "8089", /only with the reverse proxy/);
        const old = () => resolveMonitoringSettings(C, {}, { synapse: { ...goldenSynapseSettings(), version: "1.140.0" }, host: 'Host "vm"' });
        rejects(old, "synapse.version", '"1.140.0"', new RegExp(`pinned for ${SYNAPSE_RULES.since} and later.*or set synapseRulesUrl to none`));
        rejects(
            resolve({ synapseRulesUrl: "github" }),
            "synapseRulesUrl",
            '"github"',
            /expected an http\(s\) URL of Synapse's synapse-v2\.rules \(SHA-256 [0-9a-f]{64}/,
        );
        rejects(
            resolve({ synapseRulesUrl: "https://user:pw@mirror.example.com/x" }),
            "synapseRulesUrl",
            '"https://user:pw@mirror.example.com/x"',
            /or none \(no recording rules\)/,
        );
    });

    it("synapseRulesUrl: the pinned tag's file by default, a mirror as given, none leaves them out (and lifts the version floor)", () => {
        const synapse = goldenSynapseSettings();
        const ctx = { synapse, host: 'Host "vm"' };
        assert.equal(resolveMonitoringSettings(C, {}, ctx).synapseRulesUrl, SYNAPSE_RULES.url);
        const mirror = "https://mirror.example.com/synapse/v1.157.1/synapse-v2.rules";
        assert.equal(resolveMonitoringSettings(C, { synapseRulesUrl: mirror }, ctx).synapseRulesUrl, mirror);
        assert.equal(resolveMonitoringSettings(C, { synapseRulesUrl: "none" }, ctx).synapseRulesUrl, undefined);
        const old = resolveMonitoringSettings(C, { synapseRulesUrl: "none" }, { ...ctx, synapse: { ...synapse, version: "1.140.0" } });
        assert.equal(old.synapseRulesUrl, undefined);
    });

    it("reports every problem at once", () => {
        assert.throws(resolve({ retention: "x", prometheusPort: 0, alertEmail: {} }), (e: ConfigErrors) => e.errors.length === 3);
    });

    it("an alert room: the room, a bot that is not the admin, the relay on 127.0.0.1:9194, Synapse's client API on loopback", () => {
        const s = resolve({ alertRoom: { room: "#ops:example.com" } })();
        assert.deepEqual(s.alertRoom, {
            room: "#ops:example.com",
            user: "pulumi-matrix-alerts",
            port: 9194,
            homeserverUrl: "http://127.0.0.1:8008",
            sharedSecretFile: "/etc/matrix-synapse/secrets/registration_shared_secret",
            passwordFile: "/etc/matrix-synapse/secrets/alert_room_bot_password",
            synapseStandby: false,
        });
        assert.ok(monitoringPortClaims(s).some((c) => c.port === 9194 && c.owner === "alert room relay" && c.address === "127.0.0.1"));
        assert.equal(resolve({ alertRoom: { room: "!AbC-12_x:matrix.example.com:8448", user: "ops.bot" } })().alertRoom?.user, "ops.bot");
        // Room version 12's IDs have no server part (MSC4291); an alias always has one.
        assert.equal(
            resolve({ alertRoom: { room: "!5W6W5TjukR15hDBG-_k7b5FVu2YhwbisRjPRIU6o8b4" } })().alertRoom?.room,
            "!5W6W5TjukR15hDBG-_k7b5FVu2YhwbisRjPRIU6o8b4",
        );
    });

    it("refuses an alert room without its room, a room that is not an ID or alias, and a bot name Synapse would refuse", () => {
        rejects(
            resolve({ alertRoom: {} }),
            "alertRoom.room",
            "not set",
            /expected the room's ID \(!abc, or !abc:example\.com in rooms before version 12\) or alias \(#ops:example\.com\)/,
        );
        rejects(resolve({ alertRoom: { room: "ops" } }), "alertRoom.room", '"ops"', /expected the room's ID/);
        rejects(resolve({ alertRoom: { room: "#ops" } }), "alertRoom.room", '"#ops"', /expected the room's ID/);
        rejects(resolve({ alertRoom: { room: "#ops room:example.com" } }), "alertRoom.room", '"#ops room:example.com"', /expected the room's ID/);
        rejects(resolve({ alertRoom: { room: "#ops:bad host" } }), "alertRoom.room", '"#ops:bad host"', /expected the room's ID/);
        rejects(resolve({ alertRoom: { room: "#ops:example.com", user: "Alerts" } }), "alertRoom.user", '"Alerts"', /expected the bot's localpart/);
    });
});

describe("MonitoringServer in the stack plan", () => {
    const plan = (monitoring: MonitoringOptions, synapse = {}) =>
        planStack("dev", { ...stackArgs(synapse), monitoring } as Parameters<typeof planStack>[1], { stack: "dev" });

    it("watches what runs on the VM: PostgreSQL and nginx there get their exporters", () => {
        const p = plan({});
        assert.equal(p.monitoring.kind, "server");
        if (p.monitoring.kind !== "server") return;
        assert.deepEqual(p.monitoring.settings.postgres, { port: 5432, database: "synapse" });
        assert.equal(p.monitoring.settings.proxy?.domain, "matrix.example.com");
        assert.equal(p.monitoring.settings.proxy?.verify, true, "Let's Encrypt's certificates are verified");
        assert.deepEqual(p.monitoring.settings.redis, { port: 6379, tls: false });
    });

    it("Redis there gets its exporter (over TLS when other hosts connect); an existing Redis does not", () => {
        const planWith = (redis: object) =>
            planStack("dev", { ...stackArgs(), monitoring: {}, redis } as Parameters<typeof planStack>[1], { stack: "dev" }).monitoring;
        const tls = planWith({ bindAddresses: ["127.0.0.1", "10.0.0.2"], allowedClients: ["10.0.0.0/24"] });
        assert.deepEqual(tls.kind === "server" && tls.settings.redis, { port: 6379, tls: true });
        const external = planWith({ external: { host: "10.0.0.9" } });
        assert.equal(external.kind === "server" && external.settings.redis, undefined);
    });

    it("without monitoring (or enabled: false): the removal", () => {
        assert.equal(planStack("dev", stackArgs(), { stack: "dev" }).monitoring.kind, "removal");
        assert.equal(plan({ enabled: false }).monitoring.kind, "removal");
    });

    it("a port clash names the monitoring setting: Alertmanager on Synapse's replication port", () => {
        assert.throws(() => plan({ alertmanagerPort: 9093 }), /MonitoringServer "dev-monitoring": monitoring\.alertmanagerPort is 9093; .*port 9093/);
    });

    it("Synapse's metrics turned off is Synapse's error", () => {
        assert.throws(
            () => plan({}, { metrics: { enabled: false } }),
            /SynapseHomeserver "dev-synapse": metrics\.enabled is false; monitoring scrapes Synapse's metrics listener/,
        );
    });

    it("a Synapse older than the pinned rules is Synapse's error", () => {
        assert.throws(
            () => plan({}, { installMethod: "apt", version: "1.140.0" }),
            /SynapseHomeserver "dev-synapse": version is "1\.140\.0"; Synapse's recording rules are pinned/,
        );
    });
});

describe("MonitoringServer: stack config errors", () => {
    const BASE = {
        sshHost: "203.0.113.10",
        sshHostKey: TEST_HOST_KEY,
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        acmeEmail: "admin@example.com",
        // No MatrixRTC: its release pins are not what these errors are about.
        rtc: "none",
        monitoring: "true",
    };
    const error = async (values: Record<string, string>) =>
        (await programError({ ...BASE, sshPrivateKey: TEST_SSH_KEY, ...values }, ["sshPrivateKey"], 0)).message;

    it("an alert receiver without its address names the key to set", async () => {
        assert.match(
            await error({ smtpHost: "smtp.example.com", notifFrom: "noreply@example.com", monitoringAlertFrom: "alerts@example.com" }),
            /^matrix:monitoringAlertEmail is not set; an e-mail receiver needs its addresses/,
        );
    });

    it("alerts by mail without SMTP name the alert key and what it needs", async () => {
        assert.match(
            await error({ monitoringAlertEmail: '["ops@example.com"]' }),
            /^matrix:monitoringAlertEmail is .*alerts are sent through Synapse's SMTP server/,
        );
    });
});

describe("MonitoringServer: rendered files", () => {
    const s = goldenMonitoringSettings();

    it("Prometheus scrapes Synapse and every worker on the host, the exporters, the probes, itself and Alertmanager, all on loopback", () => {
        const doc = parse(renderPrometheusConfig(s, goldenWorkerSynapse(), goldenWorkerPool())) as {
            scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
            rule_files: string[];
            alerting: unknown;
        };
        assert.deepEqual(
            doc.scrape_configs.map((j) => j.job_name),
            ["synapse", "synapse_workers", "node", "postgres", "redis", "nginx", "synapse_health", "https", "prometheus", "alertmanager"],
        );
        const workers = doc.scrape_configs.find((j) => j.job_name === "synapse_workers")!.static_configs;
        assert.equal(workers.length, goldenWorkerPool().workers.length);
        for (const j of doc.scrape_configs)
            for (const c of j.static_configs) for (const t of c.targets) assert.match(t, /^(127\.0\.0\.1:|https?:\/\/127\.0\.0\.1[:/])/, `${j.job_name}: ${t}`);
        assert.deepEqual(doc.rule_files, [`${MONITORING_FILES.rulesDir}/*.yml`]);
    });

    it("alerts: each the issue asks for, on the metrics the pinned Synapse and the exporters have", () => {
        const byName = Object.fromEntries(alertRules().map((r) => [r.alert, r.expr]));
        assert.match(byName.TargetDown, /^up == 0$/);
        assert.match(byName.ProbeFailed, /probe_success == 0/);
        assert.match(byName.RedisDown, /^redis_up == 0$/);
        assert.match(byName.BackupTooOld, /time\(\) - matrix_backup_last_success_timestamp_seconds > 36 \* 3600/);
        assert.match(byName.DiskAlmostFull, /> 85$/);
        assert.match(byName.SynapseFederationSendQueue, /synapse_federation_transaction_queue_pending_pdus/);
        assert.match(byName.SynapseEventProcessingLag, /synapse_event_persisted_position.*synapse_event_processing_positions\{name="federation_sender"\}/);
        assert.match(byName.SystemdUnitFailed, /node_systemd_unit_state\{state="failed", name=~"\(pulumi-\)\?matrix-\.\+"\} == 1/);
        assert.match(byName.CertificateExpiresSoon, /probe_ssl_earliest_cert_expiry - time\(\) < 14 \* 86400/);
    });

    it("the backup service's gauge is where node exporter's textfile collector reads it", () => {
        assert.equal(path.dirname(BACKUP_FILES.metricsFile), MONITORING_FILES.textfileDir);
        assert.match(renderAlertRules(), new RegExp(BACKUP_METRIC));
    });

    it("the exporters listen on loopback only; credentials never in their arguments", () => {
        for (const unit of ["prometheus", "alertmanager", "node", "postgres", "nginx", "blackbox", "redis"] as const) {
            const text = renderExporterDefaults(s, unit);
            assert.match(text, /listen-address=127\.0\.0\.1:\d+/, unit);
            assert.doesNotMatch(text, /password|DATA_SOURCE/i, unit);
        }
        assert.match(renderExporterDefaults(s, "node"), /--collector\.systemd --collector\.systemd\.unit-include=\(pulumi-\)\?matrix-\.\+ /);
        assert.match(renderExporterDefaults(s, "alertmanager"), /--cluster\.listen-address=/);
        assert.match(renderExporterDefaults(s, "redis"), /-redis\.addr=redis:\/\/127\.0\.0\.1:6379 -set-client-name=false"/);
        const tls = renderExporterDefaults({ ...s, redis: { port: 6379, tls: true } }, "redis");
        assert.match(tls, /-redis\.addr=rediss:\/\/127\.0\.0\.1:6379 -tls-ca-cert-file=\/etc\/pulumi-matrix\/redis-tls\/ca\.crt /);
    });

    it("the Redis exporter's login: its ACL user and password as environment lines", () => {
        assert.equal(renderRedisExporterEnv("p".repeat(20)), `REDIS_USER="${REDIS_EXPORTER_USER.name}"\nREDIS_PASSWORD="${"p".repeat(20)}"\n`);
    });

    it("Alertmanager: e-mail with the password from a file; without a receiver, none", () => {
        const am = parse(renderAlertmanagerConfig(s)) as { global: Record<string, unknown>; receivers: { email_configs: Record<string, unknown>[] }[] };
        assert.equal(am.global.smtp_smarthost, "smtp.example.com:587");
        assert.equal(am.receivers[0].email_configs[0].to, "ops@example.com, oncall@example.com");
        assert.equal(am.receivers[0].email_configs[0].auth_password_file, MONITORING_FILES.smtpPassword);
        const none = parse(renderAlertmanagerConfig(goldenMonitoringSettings({}))) as { route: { receiver: string }; receivers: { name: string }[] };
        assert.deepEqual(none.receivers, [{ name: "none" }]);
    });

    it("renders byte-identical output for the same settings", () => {
        assert.equal(
            renderPrometheusConfig(s, goldenWorkerSynapse(), goldenWorkerPool()),
            renderPrometheusConfig(goldenMonitoringSettings(), goldenWorkerSynapse(), goldenWorkerPool()),
        );
        assert.equal(renderAlertRules(), renderAlertRules());
    });
});

describe("MonitoringServer: scripts", () => {
    const s = goldenMonitoringSettings();
    const server = monitoringServerScript(s, goldenWorkerSynapse(), goldenWorkerPool());

    it("checks each config with its program's checker before a restart; Synapse's rules only with the pinned SHA-256", () => {
        assert.match(server, /promtool check config/);
        assert.match(server, /amtool check-config/);
        assert.match(server, /--config\.check/);
        assert.ok(server.includes(SYNAPSE_RULES.sha256));
        assert.ok(server.includes(SYNAPSE_RULES.url));
    });

    it("Synapse's rules from a mirror are held to the same SHA-256; with none, nothing is fetched and an earlier file is pruned", () => {
        const mirror = "https://mirror.example.com/synapse/v1.157.1/synapse-v2.rules";
        const mirrored = monitoringServerScript({ ...s, synapseRulesUrl: mirror }, goldenWorkerSynapse(), goldenWorkerPool());
        assert.ok(mirrored.includes(`curl -fsSL --retry 3 --max-time 120 -o "$pm_rules" ${mirror}`));
        assert.ok(!mirrored.includes(SYNAPSE_RULES.url));
        assert.ok(mirrored.includes(SYNAPSE_RULES.sha256));
        const none = monitoringServerScript({ ...s, synapseRulesUrl: undefined }, goldenWorkerSynapse(), goldenWorkerPool());
        assert.doesNotMatch(none, /curl -fsSL --retry 3 --max-time 120 -o "\$pm_rules"/);
        assert.ok(!none.includes(MONITORING_FILES.synapseRules), "the rules file is not in the file set, so the set's prune removes it");
        assert.ok(server.includes(MONITORING_FILES.synapseRules));
    });

    it("exporter credentials: root-only files the units read (EnvironmentFile=), built on the host, recorded as secret", () => {
        assert.match(server, new RegExp(`pm_write monitoring-exporter-secrets ${MONITORING_FILES.postgresEnv} 0600 root root secret`));
        assert.match(server, /EnvironmentFile=\/etc\/pulumi-matrix\/monitoring\/private\/postgres-exporter\.env/);
        assert.doesNotMatch(server, /DATA_SOURCE_NAME=.*password/i);
        assert.match(server, /EnvironmentFile=\/etc\/pulumi-matrix\/monitoring\/private\/redis-exporter\.env/);
        const redis = monitoringRedisSecretScript(s, "SECRETredisexporter");
        assert.match(redis, new RegExp(`pm_write monitoring-redis-secrets ${MONITORING_FILES.redisEnv} 0600 root root secret`));
    });

    it("without Redis on the host: the exporter's arguments and login are pruned and it is stopped", () => {
        const none = monitoringServerScript({ ...s, redis: undefined }, goldenWorkerSynapse(), goldenWorkerPool());
        assert.match(none, /pm_prune monitoring-redis-exporter\n/);
        assert.match(none, /pm_prune monitoring-redis-secrets\n/);
        assert.match(none, /systemctl disable -q --now prometheus-redis-exporter\.service/);
        assert.doesNotMatch(none, /pm_apt_install.*prometheus-redis-exporter/);
    });

    it("the removal prunes every set the steps write and installs nothing", () => {
        const removal = monitoringRemovalScript();
        for (const m of server.matchAll(/pm_write (monitoring-[\w-]+) /g)) assert.match(removal, new RegExp(`pm_prune ${m[1]}\\n`));
        assert.doesNotMatch(removal, /^\s*(pm_apt_install|pm_write) /m);
    });
});

describe("MonitoringServer as a component", () => {
    it("MatrixStack with monitoring: the SMTP password in a secret step before the server step, which runs after every service it watches", async () => {
        const { mocks } = await runWithMocks(
            () =>
                new MatrixStack("prod", {
                    ...stackArgs({ email: { smtpHost: "smtp.example.com", smtpUser: "matrix", notifFrom: "noreply@example.com" }, smtpPassword: "SECRETsmtp" }),
                    monitoring: { alertEmail: { to: ["ops@example.com"] } },
                }),
        );
        const secret = mocks.byName("prod-monitoring-smtp-secret");
        assert.ok(secret.secretInputs.includes("stdin"));
        const server = mocks.byName("prod-monitoring-server");
        assert.doesNotMatch(String(server.inputs.stdin), /SECRET/);
        for (const before of [
            "prod-synapse-config",
            "prod-workers-config",
            "prod-redis-password",
            "prod-proxy-nginx",
            "prod-monitoring-smtp-secret",
            "prod-monitoring-redis-secret",
        ])
            assert.ok(mocks.byName(before).seq < server.seq, before);
        assert.ok(!mocks.resources.some((r) => r.name.startsWith("prod-monitoring-removal")));
        // The Redis exporter's user: in Redis's secret step, with its own password, which reaches the exporter through a secret step.
        assert.ok(mocks.byName("prod-redis-monitoring-password"));
        assert.match(
            String(mocks.byName("prod-redis-secrets").inputs.stdin),
            /user prometheus reset on >\S+ -@all \+info \+config\|get \+latency\|latest \+slowlog\|len\n/,
        );
        const login = mocks.byName("prod-monitoring-redis-secret");
        assert.ok(login.secretInputs.includes("stdin"));
        assert.match(String(login.inputs.stdin), /REDIS_PASSWORD=/);
    });

    it("the bot's password moves once into Synapse's secrets (backups carry it); turning the alert room off keeps it", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", { ...stackArgs(), monitoring: { alertRoom: { room: "#ops:example.com" } } }));
        const move =
            "if [ -e /etc/pulumi-matrix/monitoring/private/alert-room-password ] && [ ! -e /etc/matrix-synapse/secrets/alert_room_bot_password ]; then mv -- /etc/pulumi-matrix/monitoring/private/alert-room-password /etc/matrix-synapse/secrets/alert_room_bot_password;";
        const room = String(mocks.byName("prod-monitoring-alert-room").inputs.stdin);
        assert.ok(room.includes(move), room);
        assert.ok(room.indexOf(move) < room.indexOf("alert-room.py setup"), "moved before the setup reads it");
        assert.match(room, /"password_file": "\/etc\/matrix-synapse\/secrets\/alert_room_bot_password"/);
        const off = await runWithMocks(() => new MatrixStack("prod", { ...stackArgs(), monitoring: {} }));
        const server = String(off.mocks.byName("prod-monitoring-server").inputs.stdin);
        assert.ok(server.includes(move), "a host that turns it off moves it too");
        assert.match(
            server,
            /rm -f -- \/etc\/pulumi-matrix\/monitoring\/private\/alert-room-webhook-token \/etc\/pulumi-matrix\/monitoring\/private\/alert-room-access-token\n/,
        );
        assert.doesNotMatch(server, /rm -f -- [^\n]*alert_room_bot_password/);
    });

    it("an alert room: its step runs after Synapse answers and before the server step; it carries no secret", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", { ...stackArgs(), monitoring: { alertRoom: { room: "#ops:example.com" } } }));
        const room = mocks.byName("prod-monitoring-alert-room");
        assert.match(String(room.inputs.stdin), /alert-room\.py setup/);
        assert.ok(mocks.byName("prod-synapse-config").seq < room.seq);
        assert.ok(room.seq < mocks.byName("prod-monitoring-server").seq);
        assert.match(String(mocks.byName("prod-monitoring-server").inputs.stdin), /webhook_configs/);
    });

    it("a MonitoringServer given a RedisServer without monitoringUser is refused", async () => {
        await assert.rejects(
            runWithMocks(() => {
                const host = new Host("h", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
                const synapse = new SynapseHomeserver("s", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
                const redis = new RedisServer("r", { host });
                new MonitoringServer("m", { synapse, redis });
            }),
            /MonitoringServer "m": redis is a RedisServer without monitoringUser; .*monitoringUser: true/,
        );
    });

    it("MatrixStack without monitoring: the removal, which installs nothing", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", stackArgs()));
        assert.match(String(mocks.byName("prod-monitoring-removal-server").inputs.stdin), /pm_prune monitoring-prometheus/);
        assert.ok(!mocks.resources.some((r) => r.name === "prod-monitoring-server"));
        // Redis loses the exporter's user.
        assert.ok(!mocks.resources.some((r) => r.name === "prod-redis-monitoring-password"));
        assert.doesNotMatch(String(mocks.byName("prod-redis-secrets").inputs.stdin), /user prometheus/);
    });
});

describe("MonitoringServer: workers on other hosts (the pool's metricsScrapedFrom)", () => {
    type Doc = { scrape_configs: { job_name: string; static_configs: { targets: string[]; labels: Record<string, string> }[] }[] };
    const s = goldenMonitoringSettings();
    const scrapeTargets = (yaml: string) =>
        (parse(yaml) as Doc).scrape_configs
            .find((j) => j.job_name === "synapse_workers")!
            .static_configs.map((c) => `${c.labels.job}${c.labels.index}@${c.targets[0]} ${c.labels.instance}`);

    it("Prometheus scrapes every worker: those on its host on loopback, those elsewhere at their private addresses, with the same labels", () => {
        const yaml = renderPrometheusConfig(s, goldenWorkerSynapse(), goldenScrapedRemoteWorkerPool(), GOLDEN_REMOTE_WORKER_PEERS.privateAddresses);
        assert.deepEqual(scrapeTargets(yaml), [
            "federation_reader1@10.0.0.6:10100 example.com",
            "federation_reader2@10.0.0.6:10101 example.com",
            "federation_sender1@127.0.0.1:10120 example.com",
            "event_persister1@10.0.0.6:10200 example.com",
        ]);
        assert.match(yaml, /except the workers on other hosts \(federation_reader1, federation_reader2, event_persister1\)/);
        // The same labels as a pool on one host: the alert rules and Synapse's recording rules apply unchanged.
        assert.deepEqual(
            scrapeTargets(yaml).map((t) => t.replace(/@.* /, " ")),
            scrapeTargets(
                renderPrometheusConfig(s, goldenWorkerSynapse(), {
                    ...goldenScrapedRemoteWorkerPool(),
                    metricsScrapedFrom: undefined,
                    workers: goldenScrapedRemoteWorkerPool().workers.map((w) => ({ ...w, host: 'Host "vm"' })),
                }),
            ).map((t) => t.replace(/@.* /, " ")),
        );
    });

    it("Prometheus scrapes the node exporter of each worker host at its private address, labelled with its host as its own node is", () => {
        const nodes = (yaml: string) =>
            (parse(yaml) as Doc).scrape_configs
                .find((j) => j.job_name === "node")!
                .static_configs.map((c) => `${c.targets[0]} ${c.labels.host} ${c.labels.instance}`);
        assert.deepEqual(
            nodes(renderPrometheusConfig(s, goldenWorkerSynapse(), goldenScrapedRemoteWorkerPool(), GOLDEN_REMOTE_WORKER_PEERS.privateAddresses)),
            ['127.0.0.1:9100 Host "vm" example.com', '10.0.0.6:9100 Host "w2" example.com'],
        );
        // Without metricsScrapedFrom (or a pool on one host) only this host's.
        assert.deepEqual(nodes(renderPrometheusConfig(s, goldenWorkerSynapse(), goldenWorkerPool())), ['127.0.0.1:9100 Host "vm" example.com']);
    });

    it("a pool whose workers on other hosts keep their metrics on loopback, or opened to another host, is refused naming the workers and what to set", () => {
        assert.throws(
            () => checkMonitoredWorkers(C, goldenRemoteWorkerPool(), 'WorkerPool "w"', 'Host "vm"'),
            /MonitoringServer "m": workers is WorkerPool "w"; this Prometheus runs on Host "vm" and scrapes every worker, and federation_reader1, federation_reader2, event_persister1 on Host "w2" have their metrics on that host's loopback: construct the WorkerPool with metricsScrapedFrom: Host "vm"/,
        );
        assert.throws(
            () => checkMonitoredWorkers(C, { ...goldenScrapedRemoteWorkerPool(), metricsScrapedFrom: 'Host "mon"' }, 'WorkerPool "w"', 'Host "vm"'),
            /workers is WorkerPool "w" with metricsScrapedFrom Host "mon"; .* have their metrics opened to Host "mon" only/,
        );
        assert.doesNotThrow(() => checkMonitoredWorkers(C, goldenScrapedRemoteWorkerPool(), 'WorkerPool "w"', 'Host "vm"'));
        assert.doesNotThrow(() => checkMonitoredWorkers(C, goldenWorkerPool(), 'WorkerPool "w"', 'Host "vm"'));
    });

    /** Synapse on "vm" and a federation reader on "w2", both with private addresses; `scraped`: the pool's metrics opened to Synapse's host. */
    const remoteStack = (scraped: boolean) => () => {
        const { vm: h, w2, database, synapse, redis } = twoHostHomeserver({ monitoringUser: true });
        const workers = new WorkerPool("w", {
            synapse,
            redis,
            instances: [{ role: "federation_reader", host: w2 }],
            ...(scraped ? { metricsScrapedFrom: h } : {}),
        });
        return new MonitoringServer("m", { synapse, workers, database, redis });
    };

    it("as components: the server step's Prometheus scrapes the worker on the other host at its private address", async () => {
        const { mocks, result } = await runWithMocks(remoteStack(true));
        assert.ok(result instanceof MonitoringServer);
        const server = String(mocks.byName("m-server").inputs.stdin);
        assert.match(server, /- targets:\n +- 10\.0\.0\.6:10100\n +labels:\n +instance: example\.com\n +job: federation_reader\n +index: "1"/);
        assert.match(String(mocks.byName("w-w2-config").inputs.stdin), /ip saddr \{ 10\.0\.0\.4\/32 \} tcp dport 10100 accept/);
    });

    it("as components: without metricsScrapedFrom the MonitoringServer is refused before anything runs", async () => {
        await assert.rejects(
            runWithMocks(remoteStack(false)),
            /MonitoringServer "m": workers is WorkerPool "w"; .*federation_reader1 on Host "w2" has its metrics on that host's loopback: construct the WorkerPool with metricsScrapedFrom: Host "vm"/,
        );
    });
});

describe("monitoring: golden files (update with `npm run golden:update`, review the diff)", () => {
    golden("monitoring", "prometheus-remote-workers.yml", () =>
        renderPrometheusConfig(goldenMonitoringSettings(), goldenWorkerSynapse(), goldenScrapedRemoteWorkerPool(), GOLDEN_REMOTE_WORKER_PEERS.privateAddresses),
    );
    golden("monitoring", "prometheus.yml", () => renderPrometheusConfig(goldenMonitoringSettings(), goldenWorkerSynapse(), goldenWorkerPool()));
    golden("monitoring", "pulumi-matrix-alerts.yml", () => renderAlertRules());
    golden("monitoring", "alertmanager.yml", () => renderAlertmanagerConfig(goldenMonitoringSettings()));
    golden("monitoring", "blackbox.yml", () => renderBlackboxConfig(goldenMonitoringSettings()));
    golden("monitoring", "exporters.yml", () => renderExportersScrapeConfig(goldenMonitoringSettings()));
    golden("monitoring", "scripts/monitoring-server.sh", () => monitoringServerScript(goldenMonitoringSettings(), goldenWorkerSynapse(), goldenWorkerPool()));
    golden("monitoring", "scripts/monitoring-smtp-secret.sh", () => monitoringSmtpSecretScript(goldenMonitoringSettings(), "SECRETsmtp"));
    golden("monitoring", "scripts/monitoring-removal.sh", () => monitoringRemovalScript());
    const withRoom = () => goldenMonitoringSettings({ alertEmail: { to: ["ops@example.com"] }, alertRoom: { room: "#ops:example.com" } });
    golden("monitoring", "alertmanager-email-and-room.yml", () => renderAlertmanagerConfig(withRoom()));
    golden("monitoring", "alert-room.py", () => ALERT_ROOM_PY);
    golden("monitoring", "alert-room.json", () => renderAlertRoomConfig(withRoom()));
    golden("monitoring", "pulumi-matrix-alert-room.service", () => renderAlertRoomUnit());
    golden("monitoring", "scripts/monitoring-alert-room.sh", () => monitoringAlertRoomScript(withRoom()));
    golden("monitoring", "scripts/monitoring-server-alert-room.sh", () => monitoringServerScript(withRoom(), goldenWorkerSynapse(), goldenWorkerPool()));
    golden("monitoring", "scripts/monitoring-redis-secret.sh", () => monitoringRedisSecretScript(goldenMonitoringSettings(), "SECRETredisexporter"));
    golden("monitoring", "prometheus-redis-exporter.default", () => renderExporterDefaults(goldenMonitoringSettings(), "redis"));
});
