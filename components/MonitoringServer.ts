import * as pulumi from "@pulumi/pulumi";

import { componentLabel, ConfigError, Described } from "../src/model/errors";
import {
    checkMonitoredWorkers,
    MonitoringContext,
    MonitoringOptions,
    monitoringPortClaims,
    MonitoringSettings,
    resolveMonitoringSettings,
} from "../src/model/monitoring";
import { redisServesOtherHosts } from "../src/model/redis";
import { monitoringAlertRoomScript, monitoringRedisSecretScript, monitoringServerScript, monitoringSmtpSecretScript } from "../src/provision/monitoring";
import { childName, typeToken } from "./naming";
import { PostgresDatabase } from "./PostgresDatabase";
import { RedisServer } from "./RedisServer";
import { hostScript } from "./remote";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface MonitoringServerArgs extends MonitoringOptions {
    /** The homeserver watched; monitoring runs on its host. */
    synapse: SynapseHomeserver;
    /**
     * Synapse's workers: every worker is scraped, those on Synapse's host on
     * loopback, those on other hosts (and those hosts' node exporters) at
     * their private addresses, which needs
     * the pool's `metricsScrapedFrom` set to Synapse's Host (an error
     * otherwise). Default: none.
     */
    workers?: WorkerPool;
    /** PostgreSQL: when installed on Synapse's host, its exporter runs too. Default: none. */
    database?: PostgresDatabase;
    /**
     * Redis: when installed on Synapse's host, its exporter runs too, logged
     * in as the ACL user the RedisServer makes with `monitoringUser: true`
     * (its `monitoringPassword`). Default: none.
     */
    redis?: RedisServer;
    /** The reverse proxy on Synapse's host: nginx's exporter and the certificate probe. Default: none. */
    proxy?: ReverseProxy;
    /** The SMTP password Alertmanager sends e-mail with (Synapse's, `smtpPassword`); needed when Synapse's SMTP has a user. */
    smtpPassword?: pulumi.Input<string>;
    /** Settings already resolved (MatrixStack passes its plan's). Default: resolved here. */
    resolved?: MonitoringSettings;
}

/** How errors and port claims name a MonitoringServer. */
export function monitoringServerLabel(name: string): string {
    return componentLabel("MonitoringServer", name);
}

/** What the components around monitoring give it (only what runs on Synapse's host is watched by its exporters). */
export function monitoringContext(args: Pick<MonitoringServerArgs, "synapse" | "database" | "proxy" | "redis">): MonitoringContext {
    const { synapse, database, proxy, redis } = args;
    const here = synapse.host;
    return {
        synapse: synapse.settings,
        host: here.label,
        ...(database?.settings && database.host === here ? { postgres: { port: database.settings.port, database: database.settings.database } } : {}),
        ...(redis?.settings && redis.host === here ? { redis: { port: redis.settings.port, tls: redisServesOtherHosts(redis.settings) } } : {}),
        ...(proxy
            ? { proxy: { domain: proxy.settings.homeserverDomain, address: proxy.settings.listenAddresses[0] ?? "127.0.0.1", acme: proxy.settings.acme } }
            : {}),
    };
}

/**
 * Prometheus, Alertmanager and the node, PostgreSQL, Redis, nginx and
 * blackbox exporters from Debian on Synapse's host, all on 127.0.0.1:
 * Synapse and every worker scraped (on other hosts through the pool's
 * `metricsScrapedFrom`), Synapse's recording rules
 * (pinned, SHA-256 verified), the library's alerts, e-mail through
 * Synapse's SMTP server and into a Matrix room (`alertRoom`). Exporter
 * credentials and the bot's tokens stay in root-only files.
 */
export class MonitoringServer extends pulumi.ComponentResource {
    readonly settings: MonitoringSettings;
    /** Depend on this to run once every monitoring daemon answers. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: MonitoringServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MonitoringServer"), name, {}, opts);
        const component = monitoringServerLabel(name);
        const { synapse, workers, database, proxy, redis, smtpPassword, resolved, enabled: _enabled, ...options } = args;
        const s = resolved ?? resolveMonitoringSettings(component, options, monitoringContext(args));
        const host = synapse.host;
        if (workers) checkMonitoredWorkers(component, workers.settings, workers.label, host.label);
        host.claimPorts(component, monitoringPortClaims(s));
        this.settings = s;
        const smtp =
            s.alertEmail?.smtp.user !== undefined && smtpPassword !== undefined
                ? [
                      hostScript(
                          childName(name, "smtp-secret"),
                          { host, script: pulumi.output(smtpPassword).apply((p) => monitoringSmtpSecretScript(s, p)), secret: true },
                          { parent: this },
                      ),
                  ]
                : [];
        let redisLogin: pulumi.Resource[] = [];
        if (s.redis) {
            if (!redis?.monitoringPassword)
                throw new ConfigError(
                    component,
                    "redis",
                    new Described("a RedisServer without monitoringUser"),
                    "the Redis exporter logs in as its own ACL user: construct the RedisServer with monitoringUser: true",
                );
            redisLogin = [
                hostScript(
                    childName(name, "redis-secret"),
                    { host, script: redis.monitoringPassword.apply((p) => monitoringRedisSecretScript(s, p)), secret: true, after: [redis.ready] },
                    { parent: this },
                ),
            ];
        }
        // The alert room's bot registers through Synapse's API: after Synapse answers, before Alertmanager reads the webhook token.
        const alertRoom = s.alertRoom
            ? [
                  hostScript(
                      childName(name, "alert-room"),
                      { host, script: monitoringAlertRoomScript(s), after: [synapse.ready, ...(workers ? [workers.ready] : [])] },
                      { parent: this },
                  ),
              ]
            : [];
        const after = [synapse.ready, ...[workers, database, proxy, redis].flatMap((c) => (c ? [c.ready] : [])), ...smtp, ...redisLogin, ...alertRoom];
        this.ready = hostScript(
            childName(name, "server"),
            {
                host,
                script: workers
                    ? workers.privateAddresses.apply((a) => monitoringServerScript(s, synapse.settings, workers.settings, a))
                    : monitoringServerScript(s, synapse.settings),
                after,
                timeout: "20m",
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
