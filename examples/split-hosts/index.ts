// Synapse on one VM, PostgreSQL on a second VM reached over a private network.
// Only the Synapse VM's private address may connect: PostgresDatabase writes
// that into pg_hba and opens its port on the database VM's firewall itself.
import * as pulumi from "@pulumi/pulumi";
import { Host, PostgresDatabase, SynapseHomeserver } from "pulumi-matrix";

const config = new pulumi.Config();
const key = config.requireSecret("sshPrivateKey");
const appPrivateIp = config.require("appPrivateIp"); // e.g. 10.0.0.4
const dbPrivateIp = config.require("dbPrivateIp"); // e.g. 10.0.0.5

const user = config.get("sshUser") ?? "debian";
const app = new Host("app", {
    host: config.require("appAddress"),
    port: config.getNumber("appSshPort"),
    hostKey: config.require("appHostKey"),
    user,
    privateKey: key,
});
const dbHost = new Host("db", {
    host: config.require("dbAddress"),
    port: config.getNumber("dbSshPort"),
    hostKey: config.require("dbHostKey"),
    user,
    privateKey: key,
});

const db = new PostgresDatabase("synapse-db", {
    host: dbHost,
    reachableAt: dbPrivateIp,
    listenAddresses: ["127.0.0.1", dbPrivateIp],
    allowedClients: [`${appPrivateIp}/32`],
    memoryMb: 4096,
});

const synapse = new SynapseHomeserver("synapse", {
    host: app,
    database: db,
    serverName: config.require("serverName"),
    publicBaseUrl: `https://matrix.${config.require("serverName")}/`,
    adminUser: "admin",
    // Checked by SynapseHomeserver, which names the setting and the valid values.
    installMethod: config.get("installMethod") as "apt" | "pip" | undefined,
});

export const adminPassword = synapse.adminPassword;
