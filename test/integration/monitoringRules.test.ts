// Monitoring's rule and config files against the programs that read them
// (Debian's prometheus, prometheus-alertmanager and blackbox exporter:
// scripts/deps/monitoring.list): `promtool check rules` and `promtool test
// rules`, which fires each of the library's alerts from synthetic series
// (and checks it stays quiet while things are well), `promtool check
// config`, `amtool check-config`, blackbox's `--config.check`.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { stringify } from "yaml";

import { MonitoringContext, MonitoringOptions, resolveMonitoringSettings } from "../../src/model/monitoring";
import { resolveReverseProxySettings } from "../../src/model/proxy";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings } from "../../src/model/workers";
import { alertRules, renderAlertmanagerConfig, renderAlertRules, renderBlackboxConfig, renderPrometheusConfig } from "../../src/render/monitoring";
import { makeTempDir, run } from "../support/integration/processes";

const synapse = resolveSynapseSettings("t", {
    serverName: "example.com",
    publicBaseUrl: "https://matrix.example.com/",
    email: { smtpHost: "smtp.example.com", smtpUser: "matrix", notifFrom: "Matrix <noreply@example.com>" },
    replication: {},
});
const proxy = resolveReverseProxySettings("p", { acme: { email: "admin@example.com" } }, synapse);
const context: MonitoringContext = {
    synapse,
    host: 'Host "vm"',
    postgres: { port: 5432, database: "synapse" },
    proxy: { domain: proxy.homeserverDomain, address: "127.0.0.1", acme: proxy.acme },
};
const settings = (o: MonitoringOptions) => resolveMonitoringSettings("t", o, context);

/** `{{ $labels.x }}` as Prometheus expands it in an annotation. */
function expand(text: string, labels: Record<string, string>): string {
    return text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? "");
}

/**
 * One synthetic case per alert: series that make it fire at `at`, the
 * labels it fires with, and a time at which it must not fire yet (its `for`
 * not over, or the series still healthy).
 */
interface Case {
    series: { series: string; values: string }[];
    at: string;
    quietAt: string;
    labels: Record<string, string>;
}
const DAY = 86400;
const CASES: Record<string, Case> = {
    // A worker stops answering at minute 2: down for 5 minutes from there.
    TargetDown: {
        series: [{ series: 'up{job="federation_sender",instance="example.com",index="1"}', values: "1 1 0x10" }],
        at: "8m",
        quietAt: "5m",
        labels: { job: "federation_sender", instance: "example.com", index: "1" },
    },
    // The Redis exporter answers, but Redis does not from minute 2.
    RedisDown: {
        series: [{ series: 'redis_up{job="redis",instance="example.com"}', values: "1 1 0x10" }],
        at: "8m",
        quietAt: "5m",
        labels: { job: "redis", instance: "example.com" },
    },
    ProbeFailed: {
        series: [{ series: 'probe_success{job="synapse_health",instance="http://127.0.0.1:8008/health"}', values: "1 0x10" }],
        at: "7m",
        quietAt: "3m",
        labels: { job: "synapse_health", instance: "http://127.0.0.1:8008/health" },
    },
    // The last backup finished at time 0; 36 h later (plus the 10 minutes) it is too old.
    BackupTooOld: {
        series: [{ series: 'matrix_backup_last_success_timestamp_seconds{job="node",instance="example.com"}', values: "0+0x3000" }],
        at: "36h15m",
        quietAt: "35h",
        labels: { job: "node", instance: "example.com" },
    },
    // 20% free, then 10% free from minute 5.
    DiskAlmostFull: {
        series: [
            {
                series: 'node_filesystem_avail_bytes{job="node",instance="example.com",host="Host \\"vm\\"",mountpoint="/",fstype="ext4"}',
                values: "20 20 20 20 20 10x30",
            },
            { series: 'node_filesystem_size_bytes{job="node",instance="example.com",host="Host \\"vm\\"",mountpoint="/",fstype="ext4"}', values: "100x40" },
            // tmpfs is left out.
            { series: 'node_filesystem_avail_bytes{job="node",instance="example.com",host="Host \\"vm\\"",mountpoint="/run",fstype="tmpfs"}', values: "1x40" },
            { series: 'node_filesystem_size_bytes{job="node",instance="example.com",host="Host \\"vm\\"",mountpoint="/run",fstype="tmpfs"}', values: "100x40" },
        ],
        at: "25m",
        quietAt: "15m",
        labels: { job: "node", instance: "example.com", host: 'Host "vm"', mountpoint: "/", fstype: "ext4" },
    },
    // Two senders: 600 + 600 waiting PDUs.
    SynapseFederationSendQueue: {
        series: [
            { series: 'synapse_federation_transaction_queue_pending_pdus{job="federation_sender",index="1",instance="example.com"}', values: "600x30" },
            { series: 'synapse_federation_transaction_queue_pending_pdus{job="federation_sender",index="2",instance="example.com"}', values: "0 600x30" },
        ],
        at: "20m",
        quietAt: "10m",
        labels: { instance: "example.com" },
    },
    // Events keep being persisted; the federation sender stops at 5000.
    SynapseEventProcessingLag: {
        series: [
            { series: 'synapse_event_persisted_position{job="master",index="1",instance="example.com"}', values: "5000+200x40" },
            {
                series: 'synapse_event_processing_positions{job="federation_sender",index="1",instance="example.com",name="federation_sender"}',
                values: "5000x40",
            },
        ],
        at: "25m",
        quietAt: "10m",
        labels: { instance: "example.com" },
    },
    // A worker fails on a host of the pool's own; a unit of another program failing does not alert.
    SystemdUnitFailed: {
        series: [
            {
                series: 'node_systemd_unit_state{job="node",instance="example.com",host="Host \\"w2\\"",name="matrix-synapse-worker@federation_reader2.service",state="failed"}',
                values: "0 0 1x10",
            },
            { series: 'node_systemd_unit_state{job="node",instance="example.com",host="Host \\"w2\\"",name="cron.service",state="failed"}', values: "1x12" },
        ],
        at: "5m",
        quietAt: "2m",
        labels: { job: "node", instance: "example.com", host: 'Host "w2"', name: "matrix-synapse-worker@federation_reader2.service", state: "failed" },
    },
    // The certificate expires 20 days after time 0: within 14 days from day 6 on (plus the hour).
    CertificateExpiresSoon: {
        series: [{ series: 'probe_ssl_earliest_cert_expiry{job="https",instance="https://127.0.0.1:443/"}', values: `${20 * DAY}+0x20000` }],
        at: "6d2h",
        quietAt: "5d",
        labels: { job: "https", instance: "https://127.0.0.1:443/" },
    },
};

describe("monitoring's rules and configs, checked by Prometheus's and Alertmanager's own tools", function () {
    const dir = makeTempDir("monitoring-rules");
    const rules = path.join(dir, "pulumi-matrix-alerts.yml");
    before(() => fs.writeFileSync(rules, renderAlertRules()));

    it("promtool check rules accepts the alert rules", async function () {
        const r = await run("promtool", ["check", "rules", rules], { allowFailure: true });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
    });

    it("promtool test rules: each alert fires from its synthetic series with its labels and annotations, and not before", async function () {
        const all = alertRules();
        assert.deepEqual(Object.keys(CASES).sort(), all.map((r) => r.alert).sort(), "a synthetic case for every alert");
        const tests = all.map((rule) => {
            const c = CASES[rule.alert];
            const labels = { ...c.labels, severity: rule.severity };
            return {
                interval: "1m",
                input_series: c.series,
                alert_rule_test: [
                    { eval_time: c.quietAt, alertname: rule.alert, exp_alerts: [] },
                    {
                        eval_time: c.at,
                        alertname: rule.alert,
                        exp_alerts: [
                            { exp_labels: labels, exp_annotations: { summary: expand(rule.summary, labels), description: expand(rule.description, labels) } },
                        ],
                    },
                ],
            };
        });
        const file = path.join(dir, "tests.yml");
        fs.writeFileSync(file, stringify({ rule_files: [path.basename(rules)], evaluation_interval: "1m", tests }));
        const r = await run("promtool", ["test", "rules", file], { allowFailure: true, cwd: dir });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /SUCCESS/);
    });

    it("promtool test rules fails when an alert would not fire (the check can fail)", async function () {
        const rule = alertRules().find((r) => r.alert === "TargetDown")!;
        const file = path.join(dir, "wrong.yml");
        fs.writeFileSync(
            file,
            stringify({
                rule_files: [path.basename(rules)],
                tests: [
                    {
                        interval: "1m",
                        input_series: [{ series: 'up{job="master",instance="example.com",index="1"}', values: "1x20" }],
                        alert_rule_test: [{ eval_time: "10m", alertname: rule.alert, exp_alerts: [{ exp_labels: { severity: "critical" } }] }],
                    },
                ],
            }),
        );
        const r = await run("promtool", ["test", "rules", file], { allowFailure: true, cwd: dir });
        assert.notEqual(r.code, 0, r.stdout);
    });

    it("promtool check config accepts Prometheus's config, with Synapse's workers", async function () {
        const pool = resolveWorkerPoolSettings("w", {}, synapse, 'Host "vm"');
        const file = path.join(dir, "prometheus.yml");
        fs.writeFileSync(file, renderPrometheusConfig(settings({}), synapse, pool));
        const r = await run("promtool", ["check", "config", file], { allowFailure: true });
        assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it("amtool check-config accepts Alertmanager's config: e-mail with its password file, and no receiver", async function () {
        const cases: [string, MonitoringOptions][] = [
            ["email", { alertEmail: { to: ["ops@example.com"] } }],
            ["none", {}],
        ];
        for (const [name, o] of cases) {
            const file = path.join(dir, `alertmanager-${name}.yml`);
            fs.writeFileSync(file, renderAlertmanagerConfig(settings(o)));
            const r = await run("amtool", ["check-config", file], { allowFailure: true });
            assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
        }
        // amtool refuses what Alertmanager would: an unknown key.
        const bad = path.join(dir, "alertmanager-bad.yml");
        fs.writeFileSync(bad, renderAlertmanagerConfig(settings({})).replace("route:", "routes:"));
        assert.notEqual((await run("amtool", ["check-config", bad], { allowFailure: true })).code, 0);
    });

    it("the blackbox exporter accepts its modules", async function () {
        const file = path.join(dir, "blackbox.yml");
        fs.writeFileSync(file, renderBlackboxConfig(settings({})));
        const r = await run("prometheus-blackbox-exporter", ["--config.check", `--config.file=${file}`], { allowFailure: true });
        assert.equal(r.code, 0, r.stdout + r.stderr);
    });
});
