import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

import { componentLabel, ConfigError } from "../src/model/errors";
import { ExternalServer } from "../src/model/external";
import {
    ExternalRedisOptions,
    RedisConnection,
    RedisExternalSettings,
    RedisLocalSettings,
    RedisOptions,
    redisPortClaims,
    redisServesOtherHosts,
    resolveExternalRedis,
    resolveRedisSettings,
} from "../src/model/redis";
import { redisInstallScript, redisPasswordScript } from "../src/provision/redis";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { privateServerTls } from "./privateCa";
import { hostScript } from "./remote";

/** An existing Redis; the library installs nothing. */
export interface ExternalRedisArgs extends ExternalRedisOptions<Exclude<pulumi.Input<string>, string>> {
    /** The password Synapse gives (secret). Default: none (a server that asks for none). */
    password?: pulumi.Input<string>;
}

export interface RedisServerArgs extends RedisOptions {
    /** The host to install Redis on. Required unless `external` is given. */
    host?: Host;
    /** Use this server instead of installing one (the options for an installed server must then be left out). */
    external?: ExternalRedisArgs;
    /**
     * The address Synapse processes on other hosts use to reach this server
     * (one of `bindAddresses`). Default 127.0.0.1: only the same host.
     */
    reachableAt?: pulumi.Input<string>;
    /**
     * The settings already resolved from these options (MatrixStack passes
     * its plan's: see `planStack`): a server the library installs, or the
     * existing server of `external`. Used as they are, so they are resolved
     * once per deployment. Default: resolved here.
     */
    resolved?: RedisLocalSettings | ExternalServer<RedisExternalSettings>;
    /**
     * Give Prometheus's Redis exporter an ACL user of its own
     * (`REDIS_EXPORTER_USER`: Redis's statistics only, no keys), with a
     * generated password (`monitoringPassword`); a MonitoringServer on the
     * same host sets it when it is given this server. Turned off again, the
     * user is taken away. Only for a server the library installs. Default false.
     */
    monitoringUser?: boolean;
}

/**
 * Redis for Synapse's workers: on a Host (Debian's redis-server, a
 * generated password required of every client, nothing persisted, its port
 * claimed and opened to `allowedClients` on that host), or an existing
 * server. `connection` and `password` feed a WorkerPool.
 */
export class RedisServer extends pulumi.ComponentResource {
    /** How to reach Redis (no password). */
    readonly connection: pulumi.Output<RedisConnection>;
    /** The password (secret); undefined for an external server that asks for none. */
    readonly password?: pulumi.Output<string>;
    /** Depend on this to run once Redis is up. */
    readonly ready: pulumi.Resource;
    /** The resolved settings of a local server (undefined for an external one). */
    readonly settings?: RedisLocalSettings;
    /** The host Redis is installed on (undefined for an external server). */
    readonly host?: Host;
    /** The password of the Redis exporter's ACL user (secret), with `monitoringUser`. */
    readonly monitoringPassword?: pulumi.Output<string>;

    constructor(name: string, args: RedisServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("RedisServer"), name, {}, opts);
        const component = componentLabel("RedisServer", name);
        if (args.external) {
            const { password, ...e } = args.external;
            const server = args.resolved && "at" in args.resolved ? args.resolved : resolveExternalRedis(component, args, e);
            if (args.reachableAt !== undefined)
                throw new ConfigError(component, "reachableAt", args.reachableAt, "with external the address is external.host; remove reachableAt");
            if (args.monitoringUser)
                throw new ConfigError(
                    component,
                    "monitoringUser",
                    true,
                    "the library makes the exporter's user only on a Redis it installs; remove monitoringUser",
                );
            this.connection = pulumi.output(e.host).apply((host) => {
                const { mode: _mode, ...connection } = server.now ?? server.at(host);
                return { ...connection, ...(e.caCertificate !== undefined ? { caCertificate: e.caCertificate } : {}) };
            });
            if (password !== undefined) this.password = pulumi.secret(password);
            // Nothing to wait for: the server exists already.
            this.ready = this;
            this.registerOutputs({ connection: this.connection });
            return;
        }
        if (!args.host) {
            throw new ConfigError(component, "host", undefined, "expected the Host to install Redis on, or external settings of an existing server");
        }
        const s = args.resolved && !("at" in args.resolved) ? args.resolved : resolveRedisSettings(component, args);
        const host = args.host;
        host.claimPorts(component, redisPortClaims(s));
        this.settings = s;
        this.host = host;

        const password = new random.RandomPassword(childName(name, "password"), { length: 40, special: false }, { parent: this });
        // The exporter's own password: kept in the state, made again only after monitoringUser was off.
        const exporter = args.monitoringUser
            ? new random.RandomPassword(childName(name, "monitoring-password"), { length: 40, special: false }, { parent: this })
            : undefined;
        const server = hostScript(childName(name, "server"), { host, script: redisInstallScript(s, component), timeout: "20m" }, { parent: this });
        const reachableAt = pulumi.output(args.reachableAt ?? "127.0.0.1");
        // Other hosts connect: TLS only, with a certificate of a CA of this server's own.
        const tls = redisServesOtherHosts(s)
            ? privateServerTls(name, { service: "Redis", addresses: reachableAt.apply((h) => [h, ...s.bindAddresses]) }, this)
            : undefined;
        if (tls)
            pulumi.log.warn(
                `${component}: Redis speaks TLS to other hosts, but Synapse (as of 1.163) does not verify a Redis server's certificate: the link is encrypted, not authenticated. Keep Redis's port to the private network (allowedClients).`,
                this,
            );
        this.ready = hostScript(
            childName(name, "secrets"),
            {
                host,
                script: tls
                    ? pulumi
                          .all([password.result, tls.certificate, tls.privateKey, tls.caCertificate, exporter?.result])
                          .apply(([pw, certificate, privateKey, caCertificate, ex]) =>
                              redisPasswordScript(s, pw, { certificate, privateKey, caCertificate }, ex),
                          )
                    : pulumi.all([password.result, exporter?.result]).apply(([pw, ex]) => redisPasswordScript(s, pw, undefined, ex)),
                secret: true,
                after: [server],
            },
            { parent: this },
        );
        this.connection = pulumi
            .all([reachableAt, tls?.caCertificate])
            .apply(([h, ca]) => ({ host: h, port: s.port, tls: ca !== undefined, ...(ca !== undefined ? { caCertificate: ca } : {}) }));
        this.password = pulumi.secret(password.result);
        if (exporter) this.monitoringPassword = pulumi.secret(exporter.result);
        this.registerOutputs({ connection: this.connection });
    }
}
