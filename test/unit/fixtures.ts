import { MatrixStackArgs } from "../../components/MatrixStack";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { SynapsePeers, resolveSynapseSettings } from "../../src/model/synapse";

/** A throw-away SSH key for unit tests (never used to connect). */
export const TEST_SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETsshkeymaterialnotreal\n-----END OPENSSH PRIVATE KEY-----\n";

export function stackArgs(overrides: Partial<MatrixStackArgs["synapse"]> = {}): MatrixStackArgs {
    return {
        host: { host: "203.0.113.10", privateKey: TEST_SSH_KEY },
        synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", adminUser: "admin", ...overrides },
        postgres: { memoryMb: 2048 },
    };
}

/** The settings the golden files are rendered from. */
export function goldenSynapseSettings() {
    return resolveSynapseSettings("golden", {
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        installMethod: "pip",
        email: { smtpHost: "smtp.example.com", smtpUser: "matrix", notifFrom: "Matrix <noreply@example.com>" },
        oldSigningKeys: { "ed25519:a_old": { key: "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ", expiredTs: 1700000000000 } },
    });
}

/** What the golden Synapse learns from its database. */
export const GOLDEN_PEERS: SynapsePeers = { database: { host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" } };

export function goldenPostgresSettings() {
    return resolvePostgresSettings("golden", { memoryMb: 2048, listenAddresses: ["127.0.0.1", "10.0.0.5"], allowedClients: ["10.0.0.0/24"] });
}
