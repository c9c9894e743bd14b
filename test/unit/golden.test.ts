import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { checkSupportedOs } from "../../src/model/host";
import { renderFirewall, renderFirewallUnit, renderSshPorts } from "../../src/render/firewall";
import { renderBackupScript, renderBackupUnits, renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresConf } from "../../src/render/postgres";
import {
    emailSecretFile,
    pgpassSecretFile,
    renderEmailSecretFragment,
    renderHomeserverYaml,
    renderLogConfig,
    renderPgpass,
} from "../../src/render/synapse/homeserver";
import { renderSynapseMainUnit, renderSynapseTarget } from "../../src/render/synapse/units";
import { renderFirewallFragment } from "../../src/render/firewall";
import { resolveHostSettings } from "../../src/model/host";
import { hostBootstrapScript } from "../../src/provision/host";
import { postgresInstallScript } from "../../src/provision/postgres";
import { synapseAdminScript, synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
import { postgresDatabaseScript } from "../../src/provision/postgres";
import { execFileSync } from "node:child_process";
import { driftCheckScript } from "../../src/render/drift";
import {
    GOLDEN_PEERS,
    GOLDEN_REMOTE_WORKER_PEERS,
    GOLDEN_WORKER_PEERS,
    goldenPostgresSettings,
    goldenRemoteWorkerPool,
    goldenSynapseSettings,
    goldenWorkerPool,
    goldenWorkerSynapse,
    goldenCustomElementSettings,
    goldenElementSettings,
    goldenProxySettings,
} from "../support/unit/fixtures";
import { renderElementConfig } from "../../src/render/element";
import { elementInstallScript } from "../../src/provision/element";
import { NginxSite, renderNginxConf } from "../../src/render/nginx";
import { renderCertbotDropIn, renderDeployHook } from "../../src/render/certbot";
import { PROXY_FILES, acmeCredentialsScript, certificateScript, proxyServerScript, servedCertificate } from "../../src/provision/proxy";
import { resolveReverseProxySettings } from "../../src/model/proxy";
import { WorkerUpstream, workerUpstreams } from "../../src/model/workers";
import { resolveDnsSettings, wellKnownWorker } from "../../src/model/dns";
import { dnsZoneFile, renderWellKnownWorker } from "../../src/render/zonefile";
import { resolveCoturnSettings } from "../../src/model/coturn";
import { renderCoturnCertificateHook, renderCoturnConf, renderCoturnDropIn, renderCoturnSecretConf, renderTurnSynapseYaml } from "../../src/render/coturn";
import {
    COTURN_FILES,
    COTURN_PATHS,
    coturnRemovalScript,
    coturnSecretScript,
    coturnServerScript,
    turnSynapseConfigScript,
    turnSynapseRemovalScript,
    turnSynapseSecretScript,
} from "../../src/provision/coturn";
import { resolveRedisSettings } from "../../src/model/redis";
import { renderRedisConf, renderRedisDropIn } from "../../src/render/redis";
import { redisInstallScript, redisPasswordScript } from "../../src/provision/redis";
import {
    renderFederationSendersYaml,
    renderRouteTable,
    renderSharedWorkerYaml,
    renderWorkerList,
    renderWorkerUnit,
    renderWorkerYaml,
} from "../../src/render/workers";
import { workerConfigScript, workerSecretsScript, workerSendersStopScript } from "../../src/provision/workers";

const GOLDEN_DIR = path.join(__dirname, "golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

const os = checkSupportedOs("golden", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nARCH=amd64');

/** The golden pool's upstreams as a WorkerPool hands them to the proxy. */
function workerUpstreamsOf(pool: ReturnType<typeof goldenWorkerPool>): WorkerUpstream[] {
    return workerUpstreams(pool, () => "127.0.0.1");
}

/** Every file the library renders, from fixed settings. */
function renderAll(): Record<string, string> {
    const s = goldenSynapseSettings();
    const pg = goldenPostgresSettings();
    const units = renderBackupUnits(pg, "/usr/local/lib/pulumi-matrix/pg-backup.sh");
    const rules = [
        { port: 5432, protocol: "tcp" as const, sources: ["10.0.0.0/24", "fd00::/8"], owner: "postgresql" },
        { port: 443, protocol: "tcp" as const, owner: "nginx" },
    ];
    const ws = goldenWorkerSynapse();
    const pool = goldenWorkerPool();
    const remote = goldenRemoteWorkerPool();
    const redis = resolveRedisSettings("golden", { bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.6/32"] });
    const workerFiles = Object.fromEntries(pool.workers.map((w) => [`workers/workers/${w.name}.yaml`, renderWorkerYaml(pool, w, ws, GOLDEN_WORKER_PEERS)]));
    const proxy = goldenProxySettings();
    const element = goldenElementSettings();
    const files = { domain: element.domain, webRoot: "/var/www/pulumi-matrix-element/current", configPath: "/var/www/pulumi-matrix-element/config.json" };
    const site = (workers: WorkerUpstream[], extra: Partial<NginxSite> = {}): NginxSite => ({
        proxy,
        publicBaseUrl: "https://matrix.example.com/",
        main: "127.0.0.1:8008",
        workers,
        element: files,
        tls: servedCertificate(),
        ...extra,
    });
    // A homeserver whose server_name is its own domain, federation on 443, no Element, loopback only.
    const plain = resolveReverseProxySettings(
        'ReverseProxy "golden"',
        { acme: { email: "admin@example.com" }, federationPort: 443, listenAddresses: ["203.0.113.10", "2001:db8::10"] },
        { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "100M" },
    );
    const dns01 = resolveReverseProxySettings(
        'ReverseProxy "golden"',
        { acme: { email: "admin@example.com", challenge: "dns-01-cloudflare", propagationSeconds: 60 }, extraCertificateNames: ["internal.example.com"] },
        { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" },
    );
    const manyRoles: WorkerUpstream[] = [
        ...["federation_reader", "client_reader", "synchrotron", "event_creator", "media_repository", "typing", "to_device", "account_data"].flatMap(
            (role, i) =>
                [1, 2].slice(0, ["typing", "to_device", "account_data"].includes(role) ? 1 : 2).map((n) => ({
                    name: `${role}${n}`,
                    role: role as WorkerUpstream["role"],
                    url: `http://127.0.0.1:${8100 + 20 * i + n - 1}`,
                })),
        ),
    ];
    const dns = {
        zone: { name: "example.com" },
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        ipv4: "203.0.113.10",
        ipv6: "2001:db8::10",
        stack: "golden",
    };
    const worker = wellKnownWorker(
        resolveDnsSettings("golden", { ...dns, delegation: "well-known", wellKnownVia: "worker", accountId: "0123456789abcdef0123456789abcdef" }),
    );
    const turn = resolveCoturnSettings(
        'CoturnServer "golden"',
        { domain: "turn.example.com", relayIp: "10.0.0.5", externalIp: "203.0.113.10", allowedPeerIps: ["10.0.0.7"] },
        { liveDir: "/etc/letsencrypt/live/matrix.example.com", names: ["matrix.example.com", "turn.example.com"] },
    );
    const plainTurn = resolveCoturnSettings('CoturnServer "golden"', {
        domain: "turn.example.com",
        port: 3479,
        listeningIps: ["203.0.113.10", "2001:db8::10"],
        relayPorts: { min: 40000, max: 49999 },
        userQuota: 4,
        totalQuota: 400,
        userLifetime: "30m",
        allowGuests: true,
    });
    return {
        "coturn/readable.conf": renderCoturnConf(turn, COTURN_PATHS),
        "coturn/readable-plain.conf": renderCoturnConf(plainTurn, COTURN_PATHS),
        "coturn/secret.conf": renderCoturnSecretConf("turn-shared-secret-placeholder"),
        "coturn/coturn.service.d/pulumi-matrix.conf": renderCoturnDropIn(COTURN_FILES.conf),
        "coturn/certificate-hook.sh": renderCoturnCertificateHook(turn.tls!.liveDir, COTURN_FILES.tlsDir),
        "synapse/45-turn.yaml": renderTurnSynapseYaml(turn, s.paths),
        "synapse/45-turn-plain.yaml": renderTurnSynapseYaml(plainTurn, s.paths),
        "scripts/coturn-server.sh": coturnServerScript(turn, 'CoturnServer "golden"'),
        "scripts/coturn-server-plain.sh": coturnServerScript(plainTurn, 'CoturnServer "golden"'),
        "scripts/coturn-secret.sh": coturnSecretScript(turn, "turn-shared-secret-placeholder"),
        "scripts/turn-synapse-secret.sh": turnSynapseSecretScript(s, "<turn shared secret>"),
        "scripts/turn-synapse-config.sh": turnSynapseConfigScript(s, turn),
        "scripts/coturn-removal.sh": coturnRemovalScript('CoturnServer "golden"'),
        "scripts/turn-synapse-removal.sh": turnSynapseRemovalScript(s),
        "dns/srv.zone": dnsZoneFile({ ...dns, delegation: "srv", legacySrv: true, elementDomain: "element.example.com", turnHost: "turn.example.com" }),
        "dns/well-known-nginx.zone": dnsZoneFile(
            { ...dns, delegation: "well-known", turnHost: "turn.example.com", ttl: 3600 },
            { nameServers: ["ns1.example.net", "ns2.example.net"], hostmaster: "hostmaster@example.net", serial: 2026010101 },
        ),
        "dns/none-proxied-element.zone": dnsZoneFile({
            ...dns,
            serverName: "matrix.example.com",
            elementDomain: "element.example.com",
            elementProxied: true,
            ttl: 1,
        }),
        "dns/well-known-worker.js": renderWellKnownWorker(worker!),
        "nginx/no-workers.conf": renderNginxConf({ ...site([]), proxy: plain, element: undefined }),
        "nginx/default-workers.conf": renderNginxConf(site(workerUpstreamsOf(pool))),
        "nginx/many-roles.conf": renderNginxConf(site(manyRoles)),
        "certbot/deploy-hook.sh": renderDeployHook(PROXY_FILES.hooksDir),
        "certbot/certbot.service.d/pulumi-matrix.conf": renderCertbotDropIn(PROXY_FILES.caBundle),
        "scripts/proxy-nginx.sh": proxyServerScript(site(workerUpstreamsOf(pool)), 'ReverseProxy "golden"'),
        "scripts/proxy-certificate.sh": certificateScript(proxy),
        "scripts/proxy-certificate-letsencrypt.sh": certificateScript(plain),
        // DNS-01 through Cloudflare: the certificate step, and the token's own secret step (a placeholder token).
        "scripts/proxy-certificate-dns01.sh": certificateScript(dns01),
        "scripts/proxy-acme-credentials.sh": acmeCredentialsScript("golden-placeholder-not-a-real-token-0000"),
        "element/config.json": renderElementConfig(element),
        "element/config-custom.json": renderElementConfig(goldenCustomElementSettings()),
        "scripts/element-install.sh": elementInstallScript(element),
        "scripts/element-install-custom.sh": elementInstallScript(goldenCustomElementSettings()),
        ...workerFiles,
        "workers/remote/federation_reader1.yaml": renderWorkerYaml(remote, remote.workers[1], ws, GOLDEN_REMOTE_WORKER_PEERS),
        "workers/remote/event_persister1.yaml": renderWorkerYaml(remote, remote.workers[3], ws, GOLDEN_REMOTE_WORKER_PEERS),
        "workers/conf.d/40-workers.yaml": renderSharedWorkerYaml(pool, ws, GOLDEN_WORKER_PEERS),
        "workers/conf.d/41-federation-senders.yaml": renderFederationSendersYaml(pool),
        "workers/remote/40-workers.yaml": renderSharedWorkerYaml(remote, ws, GOLDEN_REMOTE_WORKER_PEERS),
        "workers/processes.list": renderWorkerList(pool, pool.mainHost, GOLDEN_WORKER_PEERS),
        "workers/routes.tsv": renderRouteTable(),
        "systemd/matrix-synapse-worker@.service": renderWorkerUnit(ws),
        "redis/pulumi-matrix.conf": renderRedisConf(redis, "/etc/redis/pulumi-matrix-secrets.conf"),
        "redis/redis-server.service.d/pulumi-matrix.conf": renderRedisDropIn("/etc/redis/pulumi-matrix.conf"),
        "scripts/redis-server.sh": redisInstallScript(redis, 'RedisServer "golden"'),
        "scripts/redis-password.sh": redisPasswordScript(redis, "redis-password-placeholder"),
        "scripts/workers-secrets.sh": workerSecretsScript(pool, ws, pool.mainHost, {
            replicationSecret: "<replication secret>",
            redisPassword: "<redis password>",
        }),
        "scripts/workers-config.sh": workerConfigScript(pool, ws, pool.mainHost, GOLDEN_WORKER_PEERS, {
            component: 'WorkerPool "golden"',
            synapsePeers: GOLDEN_PEERS,
        }),
        "scripts/workers-config-remote.sh": workerConfigScript(
            remote,
            { ...ws, replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } },
            'Host "w2"',
            GOLDEN_REMOTE_WORKER_PEERS,
            {
                component: 'WorkerPool "golden"',
                synapsePeers: { database: { ...GOLDEN_PEERS.database!, host: "10.0.0.4" } },
            },
        ),
        "scripts/workers-senders-stop.sh": workerSendersStopScript(remote),
        "synapse/homeserver.yaml": renderHomeserverYaml("golden", s, GOLDEN_PEERS),
        "synapse/log.yaml": renderLogConfig(s),
        "synapse/50-email-secret.yaml": renderEmailSecretFragment(s, "<smtp password>"),
        "synapse/pgpass": renderPgpass(GOLDEN_PEERS.database!, "<database password>"),
        "systemd/matrix-synapse.service": renderSynapseMainUnit(s, ["postgresql.service"]),
        "systemd/matrix-synapse.target": renderSynapseTarget(),
        "systemd/pulumi-matrix-pg-backup.service": units.service,
        "systemd/pulumi-matrix-pg-backup.timer": units.timer,
        "systemd/pulumi-matrix-firewall.service": renderFirewallUnit("/etc/pulumi-matrix/firewall.nft"),
        "postgres/50-pulumi-matrix.conf": renderPostgresConf(pg),
        "postgres/pg_hba-block.conf": renderPgHbaBlock(pg),
        "postgres/create-database.sql": renderCreateDatabaseSql(pg, "<database password>"),
        "postgres/pg-backup.sh": renderBackupScript(pg),
        "host/firewall.nft": renderFirewall(rules),
        "host/ssh-ports.nft": renderSshPorts("22, 2222"),
        "host/pulumi-matrix-drift": driftCheckScript(),
        "host/firewall.d/postgres.nft": renderFirewallFragment('PostgresDatabase "golden"', [rules[0]]),
        "scripts/host-bootstrap.sh": hostBootstrapScript(resolveHostSettings("golden", { firewall: { rules: [rules[1]] } }), os),
        "scripts/postgres-server.sh": postgresInstallScript(pg, 'PostgresDatabase "golden"'),
        "scripts/synapse-install-pip.sh": synapseInstallScript(s, os),
        "scripts/synapse-install-apt.sh": synapseInstallScript({ ...s, installMethod: "apt", paths: { ...s.paths } }, os),
        "scripts/synapse-config.sh": synapseConfigScript(s, GOLDEN_PEERS, "golden"),
        // Secret-bearing scripts, with placeholders where the secrets go.
        "scripts/synapse-secrets.sh": synapseSecretsScript(s, {
            macaroonSecretKey: "<macaroon secret key>",
            formSecret: "<form secret>",
            registrationSharedSecret: "<registration shared secret>",
            signingKey: "ed25519 a_abcd <seed>",
            files: [pgpassSecretFile(GOLDEN_PEERS.database!, "<database password>"), emailSecretFile(s, "<smtp password>")],
        }),
        "scripts/synapse-admin.sh": synapseAdminScript(s, "admin", "<admin password>"),
        "scripts/postgres-database.sh": postgresDatabaseScript(pg, "<database password>"),
    };
}

describe("golden files (update with `npm run golden:update`, review the diff)", () => {
    const files = renderAll();
    for (const [name, content] of Object.entries(files)) {
        it(name, () => {
            const file = path.join(GOLDEN_DIR, name);
            if (UPDATE) {
                fs.mkdirSync(path.dirname(file), { recursive: true });
                fs.writeFileSync(file, content);
            }
            assert.ok(fs.existsSync(file), `${file} is missing: run npm run golden:update`);
            assert.equal(content, fs.readFileSync(file, "utf8"));
        });
    }

    it("every shell script parses (bash -n)", () => {
        for (const [name, content] of Object.entries(files).filter(([n]) => n.endsWith(".sh"))) {
            try {
                execFileSync("bash", ["-n"], { input: content, stdio: ["pipe", "pipe", "pipe"] });
            } catch (e) {
                assert.fail(`${name}: ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
            }
        }
    });

    it("rendering twice gives identical bytes", () => {
        assert.deepEqual(renderAll(), files);
    });

    it("no golden file is left over from a renamed render", () => {
        const walk = (d: string): string[] =>
            fs
                .readdirSync(d, { withFileTypes: true })
                .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.relative(GOLDEN_DIR, path.join(d, e.name))]));
        assert.deepEqual(walk(GOLDEN_DIR).sort(), Object.keys(files).sort());
    });
});
