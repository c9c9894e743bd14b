// Synapse on a VM, its database on a managed PostgreSQL (RDS, Cloud SQL, ...).
// The database must be UTF8 with LC_COLLATE and LC_CTYPE C: create it with
//   CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER synapse;
import * as pulumi from "@pulumi/pulumi";
import { Host, PostgresDatabase, SynapseHomeserver } from "pulumi-matrix";

const config = new pulumi.Config();
const host = new Host("vm", {
    host: config.require("vmAddress"),
    user: "ubuntu",
    privateKey: config.requireSecret("sshPrivateKey"),
    // Verified before any script is sent; read it out of band (README: "Host key").
    hostKey: config.require("sshHostKey"),
});

const db = new PostgresDatabase("synapse-db", {
    external: {
        host: config.require("dbHost"),
        database: "synapse",
        user: "synapse",
        password: config.requireSecret("dbPassword"),
        // verify-full (the default) checks the server's certificate and name: give the
        // provider's CA bundle (e.g. RDS's global-bundle.pem) unless the system trusts it.
        caCertificate: config.get("dbCaCertificate") || undefined,
    },
});

const synapse = new SynapseHomeserver("synapse", {
    host,
    database: db,
    serverName: config.require("serverName"),
    adminUser: "admin",
});

export const signingKeyId = synapse.signingKeyId;
