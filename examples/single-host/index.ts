// A whole homeserver on one VM, as a stack of your own that imports the library.
import * as pulumi from "@pulumi/pulumi";
import { MatrixStack } from "pulumi-matrix";

const config = new pulumi.Config();
const serverName = config.require("serverName");

const matrix = new MatrixStack("matrix", {
    host: {
        host: config.require("vmAddress"),
        user: config.get("sshUser") ?? "root",
        privateKey: config.requireSecret("sshPrivateKey"),
        // Verified before any script is sent; read it out of band (README: "Host key").
        hostKey: config.require("sshHostKey"),
    },
    synapse: {
        serverName,
        publicBaseUrl: `https://matrix.${serverName}/`,
        adminUser: "admin",
        maxUploadSize: "100M",
    },
    postgres: { memoryMb: 2048 },
    // nginx with a Let's Encrypt certificate for matrix.<serverName> (its DNS record must point to the VM).
    proxy: { acme: { email: config.require("acmeEmail") } },
    // Synapse's workers, with Redis on the VM (default: one federation_reader and one federation_sender).
    workers: { instances: { federation_reader: 2, federation_sender: 1 } },
    // Calls in Element X and Element Call (MatrixRTC) on matrix.<serverName>: the LiveKit SFU and its
    // authorization service, from release files you pinned by their SHA-256 (README, "Calls (MatrixRTC)").
    rtc: {
        livekit: { sha256: config.require("livekitSha256") },
        jwtService: { sha256: config.require("lkJwtServiceSha256") },
        publicAddress: config.require("vmAddress"),
        // Behind 1:1 NAT (AWS, GCP, Azure) the VM's interface holds a private address: give it as localAddress.
    },
    // coturn for legacy one-to-one calls of older clients on turn.<serverName>; its own certificate (TLS on 5349).
    turn: { domain: `turn.${serverName}` },
    // The records for any DNS host, as the zoneFile output: <serverName> itself points to the VM and serves the well-known documents.
    dns: { zone: { name: serverName }, ipv4: config.require("vmAddress"), delegation: "well-known" },
});

export const signingKeyId = matrix.synapse.signingKeyId;
export const adminUserId = matrix.synapse.adminUserId;
export const adminPassword = matrix.synapse.adminPassword;
export const zoneFile = matrix.zoneFile;
