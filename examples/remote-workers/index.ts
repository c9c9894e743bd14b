// Synapse's main process, PostgreSQL and Redis on one VM; federation readers
// on a second VM reached over a private network. Everything the workers dial
// listens on the private address too and is opened to the workers' VM only:
// Synapse's replication listener and the readers' request ports (the
// WorkerPool's firewall fragments), PostgreSQL and Redis (their allowedClients).
import * as pulumi from "@pulumi/pulumi";
import { Host, PostgresDatabase, RedisServer, SynapseHomeserver, WorkerPool } from "pulumi-matrix";

const config = new pulumi.Config();
const key = config.requireSecret("sshPrivateKey");
const user = config.get("sshUser") ?? "debian";
const appPrivateIp = config.require("appPrivateIp"); // e.g. 10.0.0.4
const workerPrivateIp = config.require("workerPrivateIp"); // e.g. 10.0.0.6
const workersOnly = [`${workerPrivateIp}/32`];

// Each VM's host key is verified before any script is sent; read them out of band (README: "Host key").
const app = new Host("app", { host: config.require("appAddress"), hostKey: config.require("appHostKey"), user, privateKey: key, privateAddress: appPrivateIp });
const workerHost = new Host("worker", {
    host: config.require("workerAddress"),
    hostKey: config.require("workerHostKey"),
    user,
    privateKey: key,
    privateAddress: workerPrivateIp,
});

// Every Synapse process dials the database's private address, the main process too (from its own address).
const db = new PostgresDatabase("synapse-db", {
    host: app,
    reachableAt: appPrivateIp,
    listenAddresses: ["127.0.0.1", appPrivateIp],
    allowedClients: [`${appPrivateIp}/32`, ...workersOnly],
});
const redis = new RedisServer("redis", { host: app, reachableAt: appPrivateIp, bindAddresses: ["127.0.0.1", appPrivateIp], allowedClients: workersOnly });

const synapse = new SynapseHomeserver("synapse", {
    host: app,
    database: db,
    serverName: config.require("serverName"),
    publicBaseUrl: `https://matrix.${config.require("serverName")}/`,
    installMethod: "pip",
    adminUser: "admin",
    // The workers on the second VM call the main process here.
    replication: { bindAddresses: ["127.0.0.1", appPrivateIp] },
});

const workers = new WorkerPool("workers", {
    synapse,
    redis,
    instances: [{ role: "federation_sender" }, { role: "federation_reader", count: config.getNumber("federationReaders") ?? 2, host: workerHost }],
});

export const adminPassword = synapse.adminPassword;
/** Where a reverse proxy on the main VM sends each worker's requests. */
export const upstreams = workers.upstreams;
