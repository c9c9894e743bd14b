// A whole homeserver in a network namespace, as MatrixStack plans it and its
// components' scripts provision it: planStack turns the stack's arguments into
// the settings of every part (Synapse, the WorkerPool, Redis, PostgreSQL, the
// ReverseProxy and the DNS records); the zone file is renderZoneFile's; the
// scripts each component sends to a VM (Synapse's and the pool's secrets and
// config steps, the proxy's server and certificate steps) run as root in a
// ProxySandbox inside the namespace, so the real nginx and certbot (from
// Pebble) serve it there; then the test starts PostgreSQL, Redis, Synapse's
// main process and every worker in the namespace from the files the scripts
// wrote, supervised like their systemd units (Restart=on-failure).
//
// Synapse trusts Pebble's issuing root and nothing else for federation
// (`federation_custom_ca_list`, with verification on as by default), and
// `ip_range_whitelist` lets it reach the bridge's private addresses, which the
// library's blacklist otherwise (rightly) blocks: what an operator of a
// private federation writes in `extraConfig` (with
// `room_list_publication_rules` and `allow_public_rooms_over_federation`, so
// the room directory can be published and read across).

import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";

import { type DelegationMode, resolveZoneFileSettings } from "../../../src/model/dns";
import { synapseListener } from "../../../src/model/proxy";
import { planStack, type StackPlan, type StackPlanArgs } from "../../../src/model/stack";
import { synapseFiles, type SynapsePeers } from "../../../src/model/synapse";
import { type WorkerCounts, workerFiles, workerHealthUrl, type WorkerPeers, workerUpstreams } from "../../../src/model/workers";
import { certificateScript, proxyServerScript, servedCertificate } from "../../../src/provision/proxy";
import { synapseConfigScript, synapseSecretsScript } from "../../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../../src/provision/workers";
import { renderZoneFile } from "../../../src/render/dns";
import { pgpassSecretFile } from "../../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../../src/render/synapse/signingKey";
import { type PebbleServer } from "../integration/pebble";
import { createDatabaseSql, type PgServer, startPostgres } from "../integration/postgres";
import { makeTempDir, registerCleanup } from "../integration/processes";
import { ProxySandbox } from "../integration/proxySandbox";
import { startRedis, type TestRedis } from "../integration/redis";
import { startSynapse, startWorker, type SynapseProcess } from "../integration/synapse";
import { FED_SUBNET, HUB_ADDRESS, type Namespace } from "./network";

/** The workers of every homeserver of the suite: inbound federation, outbound federation, client reads and /sync on workers. */
export const FEDERATION_WORKERS: WorkerCounts = { federation_reader: 2, federation_sender: 2, client_reader: 1, synchrotron: 1 };

export interface HomeserverSpec {
    /** The stack's name (hs1) and its namespace. */
    readonly ns: Namespace;
    /** Synapse's server_name, and the zone of its DNS records (hs1.test). */
    readonly serverName: string;
    /** The homeserver's own domain (matrix.hs1.test). */
    readonly domain: string;
    /** How other servers find it: `/.well-known/matrix/server` on the server_name's domain, or the `_matrix-fed._tcp` SRV record. */
    readonly delegation: DelegationMode;
}

/** A homeserver planned: its settings and its zone file, before anything runs. */
export interface PlannedHomeserver {
    readonly spec: HomeserverSpec;
    readonly plan: StackPlan;
    readonly dir: string;
    /** The zone file the library renders for the stack's records. */
    readonly zone: { zone: string; file: string };
}

/**
 * What a homeserver of the benchmark may be instead of the suite's (each
 * default the suite's): `workers: "default"` is the default stack's pool
 * (MatrixStack without `workers`), `"none"` a monolith (`instances: {}`, no
 * Redis); `database: "sqlite"` Synapse's SQLite (`synapse.sqlite`, no
 * PostgreSQL, no workers). `subnet`/`hubAddress`: the bridge's (another than
 * the suite's); `rateLimits: false` lets a benchmark register its many users
 * through nginx (the shared-secret /register counts as a log-in there too).
 */
export interface HomeserverOptions {
    readonly workers?: WorkerCounts | "default" | "none";
    readonly database?: "postgres" | "sqlite";
    readonly subnet?: string;
    readonly hubAddress?: string;
    readonly rateLimits?: false;
}

/** What of the ACME CA a homeserver's plan needs: the directory, the API's CA (certbot trusts it), the issuing root (Synapse trusts it). */
export type PlanCa = Pick<PebbleServer, "directoryUrl" | "issuingRootFile"> & { readonly apiCaPem: string };

/** The arguments MatrixStack would get for one homeserver of the suite (or, with `opts`, of the benchmark), its files under `dir`. */
export function homeserverStackArgs(spec: HomeserverSpec, dir: string, venv: string, ca: PlanCa, opts: HomeserverOptions = {}): StackPlanArgs<never> {
    const sqlite = opts.database === "sqlite";
    const workers = opts.workers ?? FEDERATION_WORKERS;
    return {
        host: {},
        synapse: {
            serverName: spec.serverName,
            publicBaseUrl: `https://${spec.domain}/`,
            installMethod: "pip",
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
            ...(sqlite ? { sqlite: {} } : {}),
            // Keys come from each server itself; matrix.org is not reachable from here.
            trustedKeyServers: [],
            extraConfig: {
                federation_custom_ca_list: [ca.issuingRootFile],
                ip_range_whitelist: [opts.subnet ?? FED_SUBNET],
                // Synapse lets nobody publish to the room directory by default, nor other servers read it; here they may.
                room_list_publication_rules: [{ user_id: "*", alias: "*", room_id: "*", action: "allow" }],
                allow_public_rooms_over_federation: true,
            },
        },
        ...(sqlite ? {} : { postgres: {} }),
        ...(sqlite || workers === "default" ? {} : workers === "none" ? { workers: { instances: {} } } : { redis: {}, workers: { instances: workers } }),
        proxy: {
            acme: { email: `admin@${spec.serverName}`, directoryUrl: ca.directoryUrl, caBundle: ca.apiCaPem },
            listenAddresses: [spec.ns.address],
            // The suite registers its users with the shared secret, from this machine's address on the bridge.
            adminAllowList: [`${opts.hubAddress ?? HUB_ADDRESS}/32`],
            ...(opts.rateLimits === false ? { registrationRateLimit: false as const, loginRateLimit: false as const } : {}),
        },
        dns: { zone: { name: spec.serverName }, ipv4: spec.ns.address, delegation: spec.delegation },
        // Federation is what this suite proves; MatrixRTC's call is proven by test/integration/rtc.test.ts.
        rtc: false,
    };
}

/** Plans one homeserver as MatrixStack does. `venv`: Synapse's virtualenv; `pebble`: the ACME CA, whose issuing root Synapse trusts. */
export function planHomeserver(spec: HomeserverSpec, venv: string, pebble: PebbleServer, opts: HomeserverOptions = {}): PlannedHomeserver {
    const dir = makeTempDir(`fed-${spec.ns.name}`);
    // A mount point of its own: the scripts stage their writes at the root of the target's filesystem, so each
    // homeserver stages in its own directory instead of the machine's root (where two stacks' runs would meet).
    execFileSync("mount", ["--bind", dir, dir]);
    const unmount = () => void spawnSync("umount", ["-l", dir], { stdio: "ignore" });
    registerCleanup({ name: `bind mount ${dir}`, run: unmount, runSync: unmount });
    const ca = { directoryUrl: pebble.directoryUrl, issuingRootFile: pebble.issuingRootFile, apiCaPem: fs.readFileSync(pebble.apiCaFile, "utf8") };
    const plan = planStack(spec.ns.name, homeserverStackArgs(spec, dir, venv, ca, opts), { stack: "federation" });
    const dns = plan.dns!;
    const zoneSettings = resolveZoneFileSettings(plan.labels.dns, dns.settings, dns.zoneFile);
    return { spec, plan, dir, zone: { zone: spec.serverName, file: renderZoneFile(dns.settings, zoneSettings) } };
}

/** A homeserver running in its namespace. */
export interface Homeserver {
    readonly spec: HomeserverSpec;
    readonly plan: StackPlan;
    /** https://matrix.hs1.test (through nginx). */
    readonly baseUrl: string;
    /** The registration shared secret (the suite creates its users with it). */
    readonly sharedSecret: string;
    readonly pg: PgServer;
    readonly redis: TestRedis;
    readonly main: SynapseProcess;
    /** Every worker by name (federation_reader1, ...). */
    readonly workers: Map<string, SynapseProcess>;
    readonly sandbox: ProxySandbox;
    /** Stops everything it started, nginx last but one, PostgreSQL last. */
    stop(): Promise<void>;
}

const random = () => crypto.randomBytes(24).toString("hex");

/** A homeserver of the benchmark: a monolith has no Redis, one on SQLite no PostgreSQL either. */
export type AnyHomeserver = Omit<Homeserver, "pg" | "redis"> & { readonly pg?: PgServer; readonly redis?: TestRedis };

/**
 * Starts a planned homeserver: PostgreSQL and Redis, the components' scripts
 * (Synapse's secrets and config, the pool's, the proxy's server step), the
 * main process and the workers, then the certificate step (certbot, Pebble's
 * real HTTP-01 validation through this nginx). Stops what it started when a
 * step fails.
 */
export async function startHomeserver(p: PlannedHomeserver): Promise<Homeserver> {
    if (p.plan.postgres.kind !== "local" || p.plan.redis?.kind !== "local") throw new Error("the suite's stacks install PostgreSQL and Redis");
    return (await startAnyHomeserver(p)) as Homeserver;
}

/** startHomeserver for any plan of the benchmark: PostgreSQL, Redis and the pool's steps only where the plan has them. */
export async function startAnyHomeserver(p: PlannedHomeserver): Promise<AnyHomeserver> {
    const { spec, plan, dir } = p;
    const netns = spec.ns.name;
    const settings = plan.synapse;
    const pool = plan.workers;
    const proxy = plan.proxy!.settings;
    if (plan.postgres.kind === "external" || plan.redis?.kind === "external") throw new Error("the harness installs PostgreSQL and Redis itself");
    const started: { stop(): Promise<void> }[] = [];
    const stopAll = async () => {
        for (const s of started.splice(0).reverse()) await s.stop();
    };
    try {
        const dbPassword = random();
        const redisPassword = random();
        const sharedSecret = random();
        const pgSettings = plan.postgres.kind === "local" ? plan.postgres.settings : undefined;
        const pg = pgSettings && (await startPostgres({ port: pgSettings.port, netns }));
        if (pg && pgSettings) {
            started.push(pg);
            await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        }
        const redisSettings = plan.redis?.kind === "local" ? plan.redis.settings : undefined;
        const redis = redisSettings && (await startRedis(dir, redisPassword, { settings: redisSettings, netns }));
        if (redis) started.push({ stop: () => redis.daemon.stop("SIGTERM", 5000) });

        const sandbox = new ProxySandbox(netns, [], { netns });
        started.push({ stop: () => sandbox.stopNginx() });
        const peers: SynapsePeers = pgSettings
            ? { database: { host: "127.0.0.1", port: pgSettings.port, database: pgSettings.database, user: pgSettings.user } }
            : {};
        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: sharedSecret,
                signingKey: key.fileLine,
                files: peers.database ? [pgpassSecretFile(peers.database, dbPassword)] : [],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, peers, plan.labels.synapse));
        // A pool without workers (a monolith) has nothing to write on a fresh host.
        if (pool?.workers.length && redisSettings) {
            const workerPeers: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: redisSettings.port, tls: false }, redisPassword: true };
            await sandbox.run(workerSecretsScript(pool, settings, plan.labels.host, { replicationSecret: random(), redisPassword }));
            await sandbox.run(workerConfigScript(pool, settings, plan.labels.host, workerPeers, { component: plan.labels.workers, synapsePeers: peers }));
        }

        const f = synapseFiles(settings.paths);
        const main = await startSynapse({
            venv: settings.paths.venvDir,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `http://${synapseListener(settings)}/health`,
            cwd: settings.paths.dataDir,
            name: `${netns}-main`,
            netns,
            supervise: true,
        });
        started.push(main);
        // The workers start together (each waits for its own health): on a shared 2-core machine this is most of the set-up.
        const workers = new Map<string, SynapseProcess>();
        await Promise.all(
            (pool?.workers ?? []).map(async (w) => {
                const proc = await startWorker({
                    venv: settings.paths.venvDir,
                    configPaths: [f.homeserverYaml, f.confD + "/", workerFiles(settings.paths).worker(w.name)],
                    healthUrl: workerHealthUrl(pool!, w, () => "127.0.0.1"),
                    cwd: settings.paths.dataDir,
                    name: `${netns}-${w.name}`,
                    netns,
                    supervise: true,
                    timeoutMs: 300_000,
                });
                workers.set(w.name, proc);
                started.push(proc);
            }),
        );

        // The proxy's two steps, as the ReverseProxy component runs them: nginx on a bootstrap certificate, then certbot.
        await sandbox.run(
            proxyServerScript(
                {
                    proxy,
                    publicBaseUrl: settings.publicBaseUrl,
                    main: synapseListener(settings),
                    workers: pool ? workerUpstreams(pool, () => "127.0.0.1") : [],
                    tls: servedCertificate(),
                },
                plan.labels.proxy,
            ),
        );
        await sandbox.run(certificateScript(proxy));

        return {
            spec,
            plan,
            baseUrl: `https://${spec.domain}`,
            sharedSecret,
            pg,
            redis,
            main,
            workers,
            sandbox,
            stop: stopAll,
        };
    } catch (err) {
        await stopAll();
        throw err;
    }
}
