import * as pulumi from "@pulumi/pulumi";

import { StackDerivedDnsOption } from "../src/model/dns";
import { ElementWebOptions } from "../src/model/element";
import { MaintenanceOptions } from "../src/model/maintenance";
import { MonitoringOptions } from "../src/model/monitoring";
import { PostgresOptions } from "../src/model/postgres";
import { ReverseProxyOptions } from "../src/model/proxy";
import { RedisOptions } from "../src/model/redis";
import { RtcOptions, rtcSite } from "../src/model/rtc";
import { planStack, STACK_ROLES, StackPlan } from "../src/model/stack";
import { SynapseOptions } from "../src/model/synapse";
import { TurnOptions } from "../src/model/turn";
import { WorkerCounts, WorkerSpec } from "../src/model/workers";
import { CloudflareDns, CloudflareDnsArgs, plannedZoneFile } from "./CloudflareDns";
import { ElementWeb } from "./ElementWeb";
import { Host, HostArgs } from "./Host";
import { MonitoringRemoval } from "./MonitoringRemoval";
import { MonitoringServer } from "./MonitoringServer";
import { childName, typeToken } from "./naming";
import { ExternalPostgresArgs, PostgresDatabase } from "./PostgresDatabase";
import { ExternalRedisArgs, RedisServer } from "./RedisServer";
import { ReverseProxy, ReverseProxyArgs } from "./ReverseProxy";
import { RtcRemoval } from "./RtcRemoval";
import { RtcServer } from "./RtcServer";
import { SynapseAdoption, SynapseAdoptionArgs } from "./SynapseAdoption";
import { SynapseBackup, SynapseBackupArgs } from "./SynapseBackup";
import { SynapseBackupRemoval } from "./SynapseBackupRemoval";
import { SynapseHomeserver, SynapseHomeserverArgs } from "./SynapseHomeserver";
import { SynapseMaintenance } from "./SynapseMaintenance";
import { TurnRemoval } from "./TurnRemoval";
import { TurnServer } from "./TurnServer";
import { WorkerPool } from "./WorkerPool";

export interface MatrixStackArgs {
    /** The VM everything runs on (SSH connection, firewall, bootstrap options). */
    host: HostArgs;
    /** Synapse settings, plus the admin account, an imported signing key and the SMTP password. */
    synapse: SynapseOptions & Pick<SynapseHomeserverArgs, "adminUser" | "signingKey" | "smtpPassword">;
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
     * and one `federation_sender` (none with `synapse.sqlite`); `instances: {}`
     * for none. Workers on other hosts: use WorkerPool in your own stack.
     */
    workers?: {
        /** The worker instances: counts by role (`{ federation_reader: 2, client_reader: 1 }`) or a list of workers with names and ports. Default `{ federation_reader: 1, federation_sender: 1 }`. */
        instances?: WorkerCounts | Omit<WorkerSpec, "host">[];
        /** @deprecated Renamed `instances`; accepted for one release. Give one of the two. */
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
     * to the VM); with the proxy, coturn gets a certificate of its own for it and
     * speaks TLS/DTLS on 5349. Default: none; a TURN server an earlier
     * deployment of this stack set up is then taken away (`TurnRemoval`).
     */
    turn?: TurnOptions;
    /**
     * MatrixRTC, the back end of calls in Element X and Element Call:
     * livekit-server and lk-jwt-service on the VM (`RtcServer`), served by
     * the proxy on the homeserver's domain or `rtc.domain`, advertised in
     * the client well-known and to Synapse. On whenever the proxy is: the
     * two releases must then be pinned (`livekit.sha256`,
     * `jwtService.sha256`). `false`: none, and a MatrixRTC back end an
     * earlier deployment of this stack set up is taken away (`RtcRemoval`).
     * coturn (`turn`) stays available beside it for legacy clients.
     */
    rtc?: RtcOptions | false;
    /**
     * DNS records for the homeserver and Element, as the delegation mode
     * needs them: created in Cloudflare with `cloudflare: true` (the
     * Cloudflare provider's own config, e.g. `cloudflare:apiToken`), and
     * always as a BIND zone file (the `zoneFile` output) for any other DNS
     * host. The proxy follows the mode: well-known on the server_name's
     * domain, or the server_name on the certificate for SRV. In standby
     * (`synapse.standby`, a move to a new VM) the Cloudflare records are
     * retained: a destroy leaves them to the stack that took them over
     * (`dns.takeOver`). Default: none.
     */
    dns?: Omit<CloudflareDnsArgs, "synapse" | "proxy" | "retain" | StackDerivedDnsOption> & {
        /** Create the records in Cloudflare (needs the Cloudflare provider's credentials). Default false: only the `zoneFile` output. */
        cloudflare?: boolean;
    };
    /**
     * Backups to an off-host restic repository (SFTP or S3-compatible) and,
     * with `restoreFrom`, a restore before Synapse first starts (see
     * SynapseBackup). Needs PostgreSQL installed on the VM. Default: none.
     */
    backup?: Omit<SynapseBackupArgs, "synapse" | "database" | "resolved">;
    /**
     * Adopt the Synapse already installed on the VM (the Debian package's
     * layout by default): a read-only preflight, its SQLite database ported
     * into the stack's PostgreSQL (a PostgreSQL database dumped and restored
     * into it, or taken over in place: `postgres`), its signing key kept in the state, its
     * unit and config disabled (see SynapseAdoption and the README's
     * "Adopting an existing Synapse"). Not with `backup.restoreFrom` or
     * `synapse.sqlite`. Default: none (a new server).
     */
    adopt?: Omit<SynapseAdoptionArgs, "host" | "synapse" | "database" | "synapseSecretsWritten" | "resolved">;
    /** Redis for the workers: installed on the VM by default; `external` for an existing server. Only with workers. */
    redis?: RedisOptions & {
        /** Use an existing server instead of installing one. Default: installed on the VM. */
        external?: ExternalRedisArgs;
    };
    /**
     * Prometheus, Alertmanager and the node, PostgreSQL, Redis, nginx and
     * blackbox exporters on the VM, all on 127.0.0.1 (a MonitoringServer):
     * Synapse's recording rules and the library's alerts, mailed through
     * Synapse's SMTP server with `alertEmail`. Default: none; monitoring an
     * earlier deployment of this stack set up is then taken away
     * (`MonitoringRemoval`; Prometheus's data stays).
     */
    monitoring?: MonitoringOptions;
    /**
     * Maintenance timers on the VM (SynapseMaintenance): weekly state
     * compression, purge of the remote media cache and deletion of rooms
     * without local members (a dry run by default); each on unless its
     * `enabled` is false. Needs PostgreSQL (on the VM for the compressor).
     * Default: none; the timers an earlier deployment set up are then taken away.
     */
    maintenance?: MaintenanceOptions;
}

/**
 * A whole homeserver on one VM (optionally with PostgreSQL on a second
 * one). Its plan (`planStack`, pure) resolves every child's settings once,
 * adds what they imply (the replication listener, Redis and the WorkerPool
 * with workers; the TurnRemoval without turn), checks where they meet and
 * the ports on each host, all problems at once, before anything is built.
 * The constructor then only constructs the children from the plan, handing
 * each its resolved settings (`resolved`). Each component claims its ports
 * and opens its firewall itself.
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
    readonly turn?: TurnServer;
    /** Without `turn`: takes away a TURN server an earlier deployment of this stack set up (nothing when there is none). */
    readonly turnRemoval?: TurnRemoval;
    /** Prometheus, Alertmanager and the exporters, with `monitoring`. */
    readonly monitoring?: MonitoringServer;
    /** Without `monitoring`: takes away the monitoring an earlier deployment set up (nothing when there is none). */
    readonly monitoringRemoval?: MonitoringRemoval;
    /** Backups (and the restore), with `backup`. */
    readonly backup?: SynapseBackup;
    /** The adoption of an existing Synapse on the host, with `adopt`. */
    readonly adoption?: SynapseAdoption;
    /** Without `backup`: takes away backups an earlier deployment of this stack set up (nothing when there were none). */
    readonly backupRemoval?: SynapseBackupRemoval;
    /** The maintenance timers (every one off without `maintenance`: then it takes away an earlier deployment's). */
    readonly maintenance: SynapseMaintenance;
    /** MatrixRTC, unless `rtc` is false (or there is no proxy). */
    readonly rtc?: RtcServer;
    /** Without MatrixRTC: takes away the one an earlier deployment of this stack set up (nothing when there is none). */
    readonly rtcRemoval?: RtcRemoval;
    /** The Cloudflare records, with `dns.cloudflare`. */
    readonly dns?: CloudflareDns;
    /** The DNS records as a BIND zone file, when `dns` is given. */
    readonly zoneFile?: pulumi.Output<string>;
    /**
     * Prometheus scrape jobs for Synapse's main process and the workers on the VM (targets on the VM's loopback):
     * for a Prometheus of your own on the VM, or one reaching it through an SSH tunnel.
     */
    readonly prometheusScrapeConfig: pulumi.Output<string>;
    /** The plan the children were constructed from: their settings, the port claims of each host (see `planStack`). */
    readonly plan: StackPlan;

    constructor(name: string, args: MatrixStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MatrixStack"), name, {}, opts);
        const plan = planStack(name, args, { stack: pulumi.getStack() });
        this.plan = plan;
        const child = { parent: this };
        const { host: dbHostArgs, reachableAt, external, ...pg } = args.postgres ?? {};
        // With an adoption, the database's steps wait for it (see SynapseAdoption's databaseAfter).
        let adoptionReady: ((r: pulumi.Resource) => void) | undefined;
        const databaseAfter = plan.adopt ? { after: [new Promise<pulumi.Resource>((resolve) => (adoptionReady = resolve))] } : {};

        this.host = new Host(childName(name, STACK_ROLES.host), { ...args.host, resolved: plan.host }, child);
        if (plan.postgres.kind === "external") {
            this.database = new PostgresDatabase(childName(name, STACK_ROLES.postgres), { ...pg, external: external!, resolved: plan.postgres.server }, child);
        } else if (plan.postgres.kind === "local") {
            if (dbHostArgs) this.databaseHost = new Host(childName(name, STACK_ROLES.databaseHost), { ...dbHostArgs, resolved: plan.databaseHost }, child);
            this.database = new PostgresDatabase(
                childName(name, STACK_ROLES.postgres),
                { ...pg, host: this.databaseHost ?? this.host, reachableAt, resolved: plan.postgres.settings, ...databaseAfter },
                child,
            );
        }
        if (plan.redis) {
            const { external: redisExternal, ...redisOptions } = args.redis ?? {};
            this.redis = new RedisServer(
                childName(name, STACK_ROLES.redis),
                plan.redis.kind === "external"
                    ? { external: redisExternal!, resolved: plan.redis.server }
                    : {
                          ...redisOptions,
                          host: this.host,
                          resolved: plan.redis.settings,
                          // The Redis exporter's ACL user, while monitoring watches this Redis (taken away when it stops).
                          monitoringUser: plan.monitoring.kind === "server" && plan.monitoring.settings.redis !== undefined,
                      },
                child,
            );
        }
        // Synapse first starts after a restore (backup.restoreFrom); the backup is made after Synapse (it reads its key id).
        let restored: ((r: pulumi.Resource) => void) | undefined;
        const startAfter: pulumi.Input<pulumi.Resource>[] = plan.backup ? [new Promise<pulumi.Resource>((resolve) => (restored = resolve))] : [];
        // An adoption runs its preflight before Synapse is installed, hands Synapse the adopted key, and ports before Synapse first starts.
        let secretsWritten: ((r: pulumi.Resource) => void) | undefined;
        if (plan.adopt && this.database) {
            this.adoption = new SynapseAdoption(
                childName(name, STACK_ROLES.adopt),
                {
                    ...args.adopt,
                    host: this.host,
                    synapse: plan.synapse,
                    database: this.database,
                    synapseSecretsWritten: new Promise<pulumi.Resource>((resolve) => (secretsWritten = resolve)),
                    resolved: plan.adopt,
                },
                child,
            );
            startAfter.push(this.adoption.adopted);
            adoptionReady?.(this.adoption.databaseAfter);
        }
        this.synapse = new SynapseHomeserver(
            childName(name, STACK_ROLES.synapse),
            {
                ...args.synapse,
                host: this.host,
                database: this.database,
                resolved: plan.synapse,
                workersOnHost: plan.workers ? plan.workers.workers.filter((w) => w.host === plan.workers!.mainHost).length : 0,
                startAfter,
                ...(this.adoption ? { signingKey: this.adoption.signingKey, after: [this.adoption.preflight] } : {}),
            },
            child,
        );
        secretsWritten?.(this.synapse.secretsWritten);
        // In standby the move's final backup waits for the workers to stop and the alert room's step (made below).
        let workersDone: ((r: pulumi.Resource) => void) | undefined;
        let monitoringDone: ((r: pulumi.Resource) => void) | undefined;
        const finalAfter = [
            new Promise<pulumi.Resource>((resolve) => (workersDone = resolve)),
            new Promise<pulumi.Resource>((resolve) => (monitoringDone = resolve)),
        ];
        if (args.backup && plan.backup && this.database) {
            this.backup = new SynapseBackup(
                childName(name, STACK_ROLES.backup),
                { ...args.backup, synapse: this.synapse, database: this.database, resolved: plan.backup, finalAfter },
                child,
            );
            restored!(this.backup.restored);
        } else {
            this.backupRemoval = new SynapseBackupRemoval(childName(name, STACK_ROLES.backupRemoval), { synapse: this.synapse }, child);
        }
        if (plan.workers) {
            this.workers = new WorkerPool(
                childName(name, STACK_ROLES.workers),
                { ...args.workers, synapse: this.synapse, redis: this.redis, resolved: plan.workers },
                child,
            );
        }
        workersDone!(this.workers?.ready ?? this.synapse.ready);
        if (args.element && plan.element) {
            this.element = new ElementWeb(
                childName(name, STACK_ROLES.element),
                { ...args.element, host: this.host, synapse: this.synapse, resolved: plan.element },
                child,
            );
        }
        if (args.proxy && plan.proxy) {
            this.proxy = new ReverseProxy(
                childName(name, STACK_ROLES.proxy),
                {
                    ...plan.proxy.options,
                    ...(args.proxy.cloudflareApiToken !== undefined ? { cloudflareApiToken: args.proxy.cloudflareApiToken } : {}),
                    synapse: this.synapse,
                    ...(this.workers ? { workers: this.workers } : {}),
                    ...(this.element ? { element: this.element } : {}),
                    ...(plan.rtc.kind === "server" ? { rtc: rtcSite(plan.rtc.settings) } : {}),
                    resolved: plan.proxy.settings,
                },
                child,
            );
        }
        const peers = { synapse: this.synapse, ...(this.proxy ? { certificate: this.proxy } : {}), ...(this.workers ? { workers: this.workers } : {}) };
        if (args.turn && plan.turn.kind === "server") {
            this.turn = new TurnServer(childName(name, STACK_ROLES.turn), { ...args.turn, ...peers, resolved: plan.turn.settings }, child);
        } else {
            this.turnRemoval = new TurnRemoval(childName(name, STACK_ROLES.turnRemoval), { turnName: childName(name, STACK_ROLES.turn), ...peers }, child);
        }
        this.maintenance = new SynapseMaintenance(
            childName(name, STACK_ROLES.maintenance),
            { synapse: this.synapse, database: this.database, workers: this.workers, resolved: plan.maintenance },
            child,
        );
        const synapsePeers = { synapse: this.synapse, ...(this.workers ? { workers: this.workers } : {}) };
        if (args.rtc && plan.rtc.kind === "server") {
            this.rtc = new RtcServer(childName(name, STACK_ROLES.rtc), { ...args.rtc, ...synapsePeers, host: this.host, resolved: plan.rtc.settings }, child);
        } else {
            this.rtcRemoval = new RtcRemoval(childName(name, STACK_ROLES.rtcRemoval), { rtcName: childName(name, STACK_ROLES.rtc), ...synapsePeers }, child);
        }
        if (args.dns && plan.dns) {
            const { cloudflare: _cloudflare, ...dns } = args.dns;
            if (plan.dns.cloudflare) {
                this.dns = new CloudflareDns(
                    childName(name, STACK_ROLES.dns),
                    { ...dns, synapse: this.synapse, resolved: plan.dns.settings, retain: plan.synapse.standby },
                    child,
                );
                this.zoneFile = this.dns.zoneFile;
            } else {
                this.zoneFile = plannedZoneFile(plan.labels.dns, plan.dns.settings, dns.ipv4, dns.ipv6, plan.dns.zoneFile);
            }
        }
        if (args.monitoring && plan.monitoring.kind === "server") {
            this.monitoring = new MonitoringServer(
                childName(name, STACK_ROLES.monitoring),
                {
                    ...args.monitoring,
                    synapse: this.synapse,
                    ...(this.workers ? { workers: this.workers } : {}),
                    ...(this.database ? { database: this.database } : {}),
                    ...(this.redis ? { redis: this.redis } : {}),
                    ...(this.proxy ? { proxy: this.proxy } : {}),
                    ...(args.synapse.smtpPassword !== undefined ? { smtpPassword: args.synapse.smtpPassword } : {}),
                    resolved: plan.monitoring.settings,
                },
                child,
            );
        } else {
            this.monitoringRemoval = new MonitoringRemoval(
                childName(name, STACK_ROLES.monitoringRemoval),
                { synapse: this.synapse, ...(this.proxy ? { proxy: this.proxy } : {}) },
                child,
            );
        }
        monitoringDone!((this.monitoring ?? this.monitoringRemoval)!.ready);
        this.prometheusScrapeConfig = this.workers?.prometheusScrapeConfig ?? this.synapse.prometheusScrapeConfig;
        this.registerOutputs({
            prometheusScrapeConfig: this.prometheusScrapeConfig,
            serverName: this.synapse.serverName,
            publicBaseUrl: this.synapse.publicBaseUrl,
            signingKeyId: this.synapse.signingKeyId,
        });
    }
}
