import { MatrixStackArgs } from "../../../components/MatrixStack";
import { resolveElementWebSettings } from "../../../src/model/element";
import { checkSupportedOs } from "../../../src/model/host";
import { resolvePostgresSettings } from "../../../src/model/postgres";
import { resolveReverseProxySettings } from "../../../src/model/proxy";
import { resolveSynapseSettings, SynapsePeers } from "../../../src/model/synapse";
import { resolveWorkerPoolSettings, WorkerPeers, WorkerUpstream, workerUpstreams } from "../../../src/model/workers";

/** A throw-away SSH key for unit tests (never used to connect). */
export const TEST_SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETsshkeymaterialnotreal\n-----END OPENSSH PRIVATE KEY-----\n";

/** A well-formed ed25519 host public key for unit tests (a Host requires one; never used to connect). */
export const TEST_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu";

export function stackArgs(overrides: Partial<MatrixStackArgs["synapse"]> = {}): MatrixStackArgs {
    return {
        host: { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY },
        synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", adminUser: "admin", ...overrides },
        postgres: { memoryMb: 2048 },
        proxy: { acme: { email: "admin@example.com" } },
        // Without MatrixRTC: its own tests (rtc.test.ts) give it the pinned releases it needs.
        rtc: false,
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

/** The Synapse the golden workers belong to: the golden one with its replication listener. */
export function goldenWorkerSynapse() {
    return { ...goldenSynapseSettings(), replication: { port: 9093, bindAddresses: ["127.0.0.1"] } };
}

/** A pool on Synapse's host with a role of each kind: readers and senders, a stream writer, media, a single-instance role. */
export function goldenWorkerPool() {
    return resolveWorkerPoolSettings(
        "golden",
        { instances: { federation_reader: 2, federation_sender: 2, event_persister: 1, media_repository: 1, typing: 1, background: 1 } },
        goldenWorkerSynapse(),
        'Host "vm"',
    );
}

/** What the golden pool learns: Redis on loopback with a password. */
export const GOLDEN_WORKER_PEERS: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: 6379, tls: false }, redisPassword: true };

/** A pool across two hosts: a sender on Synapse's host, readers and an event persister on a second. */
export function goldenRemoteWorkerPool() {
    return resolveWorkerPoolSettings(
        "golden",
        {
            instances: [
                { role: "federation_sender" },
                { role: "federation_reader", count: 2, host: 'Host "w2"' },
                { role: "event_persister", host: 'Host "w2"' },
            ],
        },
        { ...goldenWorkerSynapse(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } },
        'Host "vm"',
    );
}

/** The two-host pool with its metrics scraped from Synapse's host (a MonitoringServer there): those on "w2" bind its private address. */
export function goldenScrapedRemoteWorkerPool() {
    return resolveWorkerPoolSettings(
        "golden",
        {
            instances: [
                { role: "federation_sender" },
                { role: "federation_reader", count: 2, host: 'Host "w2"' },
                { role: "event_persister", host: 'Host "w2"' },
            ],
            metricsScrapedFrom: 'Host "vm"',
        },
        { ...goldenWorkerSynapse(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } },
        'Host "vm"',
    );
}

export const GOLDEN_REMOTE_WORKER_PEERS: WorkerPeers = {
    privateAddresses: { 'Host "vm"': "10.0.0.4", 'Host "w2"': "10.0.0.6" },
    redis: { host: "10.0.0.4", port: 6379, tls: false },
    redisPassword: true,
};

/** Element's golden settings: every option set to something other than its default (a made-up checksum: nothing is downloaded). */
export function goldenCustomElementSettings() {
    return resolveElementWebSettings(
        'ElementWeb "web"',
        {
            domain: "chat.example.org",
            version: "1.11.100",
            sha256: "0123456789abcdef".repeat(4),
            downloadUrl: "https://mirror.example.net/element/v{version}/element-v{version}.tar.gz?src=pulumi&x=1",
            brand: "Example Chat",
            defaultTheme: "dark",
            disableGuests: false,
            disableCustomUrls: true,
            roomDirectoryServers: ["example.com", "matrix.org"],
            keepVersions: 3,
            // Keys given in an order other than sorted: the output sorts them.
            extraConfig: { show_labs_settings: false, default_country_code: "DE", setting_defaults: { "UIFeature.feedback": false, breadcrumbs: true } },
            paths: { root: "/srv/element/" },
        },
        { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
    );
}

/** Element's golden settings with every default. */
export function goldenElementSettings() {
    return resolveElementWebSettings(
        'ElementWeb "web"',
        { domain: "element.example.com", version: "1.11.100", sha256: "0123456789abcdef".repeat(4) },
        { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
    );
}

/** The reverse proxy's golden settings: well-known on the server_name's domain, an admin allow-list, a CA bundle, Element. */
export function goldenProxySettings() {
    return resolveReverseProxySettings(
        'ReverseProxy "golden"',
        {
            acme: { email: "admin@example.com", directoryUrl: "https://acme.example.net/directory", caBundle: GOLDEN_CA },
            adminAllowList: ["198.51.100.0/24", "2001:db8::/48"],
            serverNameWellKnown: true,
        },
        { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" },
        { domain: "element.example.com" },
    );
}

/** Not a real certificate: the golden files only carry it. */
const GOLDEN_CA = "-----BEGIN CERTIFICATE-----\nMIIBgoldenPlaceholderNotARealCertificate\n-----END CERTIFICATE-----\n";

/** The OS the golden scripts are rendered for: Debian 12 on amd64, as the Host's probe reports it. */
export function goldenOs() {
    return checkSupportedOs("golden", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nARCH=amd64');
}

/** What the golden proxy routes to the golden pool's workers, as a WorkerPool hands them over. */
export function goldenWorkerUpstreams(): WorkerUpstream[] {
    return workerUpstreams(goldenWorkerPool(), () => "127.0.0.1");
}
