import * as pulumi from "@pulumi/pulumi";
import { ConfigError, Described } from "../src/model/errors";
import { PortRegistry, resolveHostSettings } from "../src/model/host";
import { PostgresOptions, postgresPortClaims, resolvePostgresSettings } from "../src/model/postgres";
import { RedisOptions, redisOptionsSet, redisPortClaims, resolveExternalRedis, resolveRedisSettings } from "../src/model/redis";
import { SynapseOptions, resolveSynapseSettings, synapsePortClaims } from "../src/model/synapse";
import { WorkerCounts, WorkerSpec, resolveWorkerPoolSettings, workerPortClaims } from "../src/model/workers";
import { Host, HostArgs } from "./Host";
import { ExternalPostgresArgs, PostgresDatabase } from "./PostgresDatabase";
import { ExternalRedisArgs, RedisServer } from "./RedisServer";
import { SynapseHomeserver, SynapseHomeserverArgs } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";
import { ReverseProxy, ReverseProxyArgs } from "./ReverseProxy";
import { ElementWeb } from "./ElementWeb";
import { ElementWebOptions, resolveElementWebSettings } from "../src/model/element";
import { CloudflareDns, CloudflareDnsArgs } from "./CloudflareDns";
import { CoturnRemoval } from "./CoturnRemoval";
import { DnsOptions, certificateNamesFor, resolveDnsSettings, serverNameWellKnownFor } from "../src/model/dns";
import { dnsZoneFile } from "../src/render/zonefile";
import { CoturnServer } from "./CoturnServer";
import { CoturnOptions, coturnPortClaims, resolveCoturnSettings } from "../src/model/coturn";
import { liveDir } from "../src/provision/proxy";
import { ProxyNeed, ReverseProxyOptions, proxyPortClaims, resolveReverseProxySettings, withProxyNeeds } from "../src/model/proxy";
import { checkAcmeCredentials } from "../src/model/acme";
import { childName, typeToken } from "./naming";

export interface MatrixStackArgs {
    /** The VM everything runs on (SSH connection, firewall, bootstrap options). */
    host: HostArgs;
    /** Synapse settings, plus the admin account, an imported signing key and the SMTP password. */
    synapse: SynapseOptions & Pick<SynapseHomeserverArgs, "adminUser" | "signingKey" | "smtpPassword" | "secretFiles">;
    /**
     * PostgreSQL: installed on the VM by default. Give `external` to use an existing server,
     * or `host` to install it on a second VM reached over a private network.
     */
    postgres?: PostgresOptions & {
        /** Use an existing server instead of installing one. Default: installed. */
        external?: ExternalPostgresArgs;
        /** A second VM for PostgreSQL. Default: the main host. */
        host?: HostArgs;
        /** The database host's address as Synapse dials it (required with `host`). */
        reachableAt?: pulumi.Input<string>;
    };
    /**
     * Synapse's workers on the VM (a WorkerPool): default one `federation_reader`
     * and one `federation_sender` (none with `synapse.sqlite`); `workers: {}` for
     * none. Workers on other hosts: use WorkerPool in your own stack.
     */
    workers?: {
        /** Counts by role (`{ federation_reader: 2, client_reader: 1 }`) or a list of workers with names and ports. Default `{ federation_reader: 1, federation_sender: 1 }`. */
        workers?: WorkerCounts | Omit<WorkerSpec, "host">[];
        /** Where default worker ports start. Default 8100. */
        basePort?: number;
    };
    /**
     * nginx in front of Synapse with a certificate from an ACME CA (Let's
     * Encrypt by default; `acme.email` is required), serving the client API
     * on 443, federation on 8448, the well-known documents and Element.
     * `false`: no reverse proxy (your own TLS proxy forwards to Synapse's
     * loopback listener). Required: give it, or `false`.
     * `cloudflareApiToken` (secret): for `acme.challenge: "dns-01-cloudflare"`
     * (see ReverseProxyArgs).
     */
    proxy: (ReverseProxyOptions & Pick<ReverseProxyArgs, "cloudflareApiToken">) | false;
    /**
     * Element Web on its own domain, served by the proxy (its name is added
     * to the certificate). `version` and `sha256` pin the release. Default:
     * none. Needs the proxy.
     */
    element?: ElementWebOptions;
    /**
     * coturn on the VM for voice and video calls: Synapse hands clients
     * short-lived credentials for it. `domain` is required (its DNS points
     * to the VM); with the proxy, the certificate covers it and coturn also
     * speaks TLS/DTLS on 5349. Default: none; a TURN server an earlier
     * deployment of this stack set up is then taken away (`CoturnRemoval`).
     */
    turn?: CoturnOptions;
    /**
     * DNS records for the homeserver and Element, as the delegation mode
     * needs them: created in Cloudflare with `cloudflare: true` (the
     * Cloudflare provider's own config, e.g. `cloudflare:apiToken`), and
     * always as a BIND zone file (the `zoneFile` output) for any other DNS
     * host. The proxy follows the mode: well-known on the server_name's
     * domain, or the server_name on the certificate for SRV. Default: none.
     */
    dns?: Omit<CloudflareDnsArgs, "synapse" | "proxy" | "elementDomain" | "turnHost" | "turnPort" | "turnTlsPort" | "federationPort" | "certificateNames"> & {
        /** Create the records in Cloudflare (needs the Cloudflare provider's credentials). Default false: only the `zoneFile` output. */
        cloudflare?: boolean;
    };
    /** Redis for the workers: installed on the VM by default; `external` for an existing server. Only with workers. */
    redis?: RedisOptions & {
        /** Use an existing server instead of installing one. Default: installed on the VM. */
        external?: ExternalRedisArgs;
    };
}

/**
 * A whole homeserver on one VM (optionally with PostgreSQL on a second
 * one): Host, PostgresDatabase and SynapseHomeserver constructed and
 * connected. Each component claims its ports and opens its firewall itself.
 */
export class MatrixStack extends pulumi.ComponentResource {
    readonly host: Host;
    readonly databaseHost?: Host;
    readonly database?: PostgresDatabase;
    readonly synapse: SynapseHomeserver;
    /** Redis, when there are workers. */
    readonly redis?: RedisServer;
    /** The workers, unless there are none (and none before: see `workers`). */
    readonly workers?: WorkerPool;
    /** nginx and the certificate, unless `proxy` is false. */
    readonly proxy?: ReverseProxy;
    /** Element Web, when `element` is given. */
    readonly element?: ElementWeb;
    /** coturn, when `turn` is given. */
    readonly turn?: CoturnServer;
    /** Without `turn`: takes away a TURN server an earlier deployment of this stack set up (nothing when there is none). */
    readonly turnRemoval?: CoturnRemoval;
    /** The Cloudflare records, with `dns.cloudflare`. */
    readonly dns?: CloudflareDns;
    /** The DNS records as a BIND zone file, when `dns` is given. */
    readonly zoneFile?: pulumi.Output<string>;

    constructor(name: string, args: MatrixStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MatrixStack"), name, {}, opts);
        const component = `MatrixStack "${name}"`;
        const { host: dbHostArgs, reachableAt, external, ...pg } = args.postgres ?? {};
        if (dbHostArgs && reachableAt === undefined) {
            throw new ConfigError(
                component,
                "postgres.reachableAt",
                undefined,
                "with postgres.host it must be the database VM's private address that Synapse dials, e.g. 10.0.0.5",
            );
        }
        if (external && dbHostArgs) {
            throw new ConfigError(
                component,
                "postgres.host",
                new Described("set together with postgres.external"),
                "choose one: host installs PostgreSQL on a second VM, external uses an existing server",
            );
        }
        if (args.synapse.sqlite && (external || dbHostArgs)) {
            throw new ConfigError(
                component,
                external ? "postgres.external" : "postgres.host",
                new Described("set together with synapse.sqlite"),
                "choose one: SQLite (tiny test servers), or PostgreSQL",
            );
        }

        // Every child's plain settings are checked before the first child registers anything.
        const label = (kind: string, role: string) => `${kind} "${childName(name, role)}"`;
        resolveHostSettings(label("Host", "host"), args.host);
        if (dbHostArgs) resolveHostSettings(label("Host", "db-host"), dbHostArgs);
        const pgSettings = !external && !args.synapse.sqlite ? resolvePostgresSettings(label("PostgresDatabase", "postgres"), pg) : undefined;
        // Workers by default, except with SQLite (which they cannot use); a pool without workers removes an earlier pool's.
        const wantPool = args.workers?.workers !== undefined || !args.synapse.sqlite;
        const withReplication = { ...args.synapse, replication: args.synapse.replication ?? {} };
        const pool = wantPool
            ? resolveWorkerPoolSettings(
                  label("WorkerPool", "workers"),
                  args.workers ?? {},
                  resolveSynapseSettings(label("SynapseHomeserver", "synapse"), withReplication),
                  label("Host", "host"),
              )
            : undefined;
        const hasWorkers = (pool?.workers.length ?? 0) > 0;
        const synapseArgs = hasWorkers ? withReplication : args.synapse;
        const synapseSettings = resolveSynapseSettings(label("SynapseHomeserver", "synapse"), synapseArgs);
        const { external: redisExternal, ...redisOptions } = args.redis ?? {};
        const redisSet = [...(redisExternal ? ["external"] : []), ...redisOptionsSet(redisOptions)];
        if (redisSet.length && !hasWorkers) {
            throw new ConfigError(
                component,
                redisSet.map((k) => `redis.${k}`).join(", "),
                new Described("set"),
                "Redis serves only Synapse's workers, and there are none (workers is {}, or synapse.sqlite is set): remove the redis settings, or add workers",
            );
        }
        let redisSettings;
        if (hasWorkers && redisExternal) {
            const { password: _password, ...external } = redisExternal;
            resolveExternalRedis(label("RedisServer", "redis"), redisOptions, external);
        } else if (hasWorkers) redisSettings = resolveRedisSettings(label("RedisServer", "redis"), redisOptions);
        if (args.element && args.proxy === false) {
            throw new ConfigError(
                component,
                "element",
                new Described("set together with proxy: false"),
                "Element is served by the stack's nginx: remove proxy: false, or serve Element yourself (ElementWeb in your own stack)",
            );
        }
        // What the DNS delegation (well-known on the server_name's domain, or its name for SRV) and coturn's TLS need of the proxy.
        const needs: ProxyNeed[] = [];
        if (args.dns) {
            const { cloudflare: _cloudflare, ...dns } = args.dns;
            // The address may be an Output (a cloud VM's): the mode is resolved with a stand-in, the address itself checked once known.
            const mode = resolveDnsSettings(label("CloudflareDns", "dns"), {
                ...(dns as Omit<DnsOptions, "ipv4" | "ipv6" | "serverName" | "publicBaseUrl">),
                ipv4: typeof dns.ipv4 === "string" ? dns.ipv4 : "192.0.2.1",
                ipv6: typeof dns.ipv6 === "string" ? dns.ipv6 : undefined,
                serverName: synapseSettings.serverName,
                publicBaseUrl: synapseSettings.publicBaseUrl,
                elementDomain: args.element?.domain,
                federationPort: args.proxy === false ? undefined : args.proxy.federationPort,
                stack: "check",
            });
            needs.push({
                by: `dns.delegation "${mode.delegation}"${mode.wellKnownVia ? ` served by ${mode.wellKnownVia}` : ""}`,
                serverNameWellKnown: serverNameWellKnownFor(mode),
                names: certificateNamesFor(mode),
            });
        }
        if (args.turn) needs.push({ by: "turn (TLS on its tlsPort)", names: [args.turn.domain] });
        const proxyArgs = args.proxy === false ? undefined : { ...args.proxy, ...withProxyNeeds(component, args.proxy, synapseSettings, needs) };
        const elementSettings = args.element ? resolveElementWebSettings(label("ElementWeb", "element"), args.element, synapseSettings) : undefined;
        const proxySettings =
            proxyArgs === undefined ? undefined : resolveReverseProxySettings(label("ReverseProxy", "proxy"), proxyArgs, synapseSettings, elementSettings);
        if (proxySettings) checkAcmeCredentials(label("ReverseProxy", "proxy"), proxySettings.acme, proxyArgs?.cloudflareApiToken !== undefined);
        // Port clashes on the VM, before anything is built (each component claims its ports again when constructed).
        const ports = new PortRegistry(label("Host", "host"));
        if (pgSettings && !dbHostArgs) ports.claim(label("PostgresDatabase", "postgres"), postgresPortClaims(pgSettings));
        if (redisSettings) ports.claim(label("RedisServer", "redis"), redisPortClaims(redisSettings));
        ports.claim(label("SynapseHomeserver", "synapse"), synapsePortClaims(synapseSettings));
        if (pool) ports.claim(label("WorkerPool", "workers"), workerPortClaims(pool, label("Host", "host")));
        if (proxySettings) ports.claim(label("ReverseProxy", "proxy"), proxyPortClaims(proxySettings));
        if (args.turn) {
            const certificate = proxySettings ? { liveDir: liveDir(proxySettings), names: proxySettings.certificateNames } : undefined;
            ports.claim(label("CoturnServer", "turn"), coturnPortClaims(resolveCoturnSettings(label("CoturnServer", "turn"), args.turn, certificate)));
        }

        this.host = new Host(childName(name, "host"), args.host, { parent: this });
        if (external) {
            this.database = new PostgresDatabase(childName(name, "postgres"), { ...pg, external }, { parent: this });
        } else if (!args.synapse.sqlite) {
            if (dbHostArgs) this.databaseHost = new Host(childName(name, "db-host"), dbHostArgs, { parent: this });
            this.database = new PostgresDatabase(childName(name, "postgres"), { ...pg, host: this.databaseHost ?? this.host, reachableAt }, { parent: this });
        }
        if (hasWorkers) {
            this.redis = new RedisServer(childName(name, "redis"), redisExternal ? { external: redisExternal } : { ...redisOptions, host: this.host }, {
                parent: this,
            });
        }
        this.synapse = new SynapseHomeserver(childName(name, "synapse"), { ...synapseArgs, host: this.host, database: this.database }, { parent: this });
        if (pool) {
            this.workers = new WorkerPool(childName(name, "workers"), { ...args.workers, synapse: this.synapse, redis: this.redis }, { parent: this });
        }
        if (args.element) {
            this.element = new ElementWeb(childName(name, "element"), { ...args.element, host: this.host, synapse: this.synapse }, { parent: this });
        }
        if (proxyArgs) {
            this.proxy = new ReverseProxy(
                childName(name, "proxy"),
                {
                    ...proxyArgs,
                    synapse: this.synapse,
                    ...(this.workers ? { workers: this.workers } : {}),
                    ...(this.element ? { element: this.element } : {}),
                },
                { parent: this },
            );
        }
        if (args.turn) {
            this.turn = new CoturnServer(
                childName(name, "turn"),
                {
                    ...args.turn,
                    synapse: this.synapse,
                    ...(this.proxy ? { certificate: this.proxy } : {}),
                    ...(this.workers ? { workers: this.workers } : {}),
                },
                { parent: this },
            );
        } else {
            this.turnRemoval = new CoturnRemoval(
                childName(name, "turn-removal"),
                {
                    coturnName: childName(name, "turn"),
                    synapse: this.synapse,
                    ...(this.proxy ? { certificate: this.proxy } : {}),
                    ...(this.workers ? { workers: this.workers } : {}),
                },
                { parent: this },
            );
        }
        if (args.dns) {
            const { cloudflare, ...dns } = args.dns;
            const hostNames = {
                ...(args.element ? { elementDomain: args.element.domain } : {}),
                ...(args.turn ? { turnHost: args.turn.domain, turnPort: this.turn!.settings.port, turnTlsPort: this.turn!.settings.tlsPort } : {}),
            };
            if (cloudflare) {
                this.dns = new CloudflareDns(
                    childName(name, "dns"),
                    { ...dns, ...hostNames, synapse: this.synapse, ...(this.proxy ? { proxy: this.proxy } : {}) },
                    { parent: this },
                );
                this.zoneFile = this.dns.zoneFile;
            } else {
                const { zoneFile, ipv4: _ipv4, ipv6: _ipv6, ...options } = dns;
                const stack = dns.stack ?? pulumi.getStack();
                this.zoneFile = pulumi.all([dns.ipv4, dns.ipv6]).apply(([ipv4, ipv6]) =>
                    dnsZoneFile(
                        {
                            ...options,
                            ...hostNames,
                            ipv4,
                            ...(ipv6 !== undefined ? { ipv6 } : {}),
                            serverName: synapseSettings.serverName,
                            publicBaseUrl: synapseSettings.publicBaseUrl,
                            ...(this.proxy ? { federationPort: this.proxy.settings.federationPort, certificateNames: this.proxy.certificateNames } : {}),
                            stack,
                        },
                        zoneFile ?? {},
                        label("CloudflareDns", "dns"),
                    ),
                );
            }
        }
        this.registerOutputs({
            serverName: this.synapse.serverName,
            publicBaseUrl: this.synapse.publicBaseUrl,
            signingKeyId: this.synapse.signingKeyId,
        });
    }
}
