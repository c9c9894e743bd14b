// The reverse proxy against the real programs: Debian's nginx and certbot,
// driven by the very scripts the ReverseProxy component sends to a VM
// (proxyServerScript, certificateScript), run as root in a mount namespace
// where every directory they write is a temp dir (test/support/integration/proxySandbox.ts:
// /etc/nginx is a copy of this machine's, with Debian's default site).
// Certificates come from Pebble (Let's Encrypt's test CA) through a real
// HTTP-01 validation on the rendered nginx's port 80; Pebble's DNS answers
// 127.0.0.1 for the test names. Behind nginx run Synapse's main process and
// a federation reader (with Redis and PostgreSQL), configured by the
// library's own scripts as in workers.test.ts.
//
// nginx listens on 127.0.0.1 only (listenAddresses); clients connect there
// with the test name as SNI and Host, trusting nothing but Pebble's issuing
// root: no TLS check is switched off anywhere.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import * as tls from "node:tls";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { PROXY_FILES } from "../../src/model/proxy";
import {
    ElementSite,
    resolveReverseProxySettings,
    ReverseProxyOptions,
    ReverseProxySettings,
    synapseListener,
    wellKnownClient,
    wellKnownServer,
} from "../../src/model/proxy";
import { resolveSynapseSettings, synapseFiles, SynapsePeers, SynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, workerFiles, WorkerPeers, WorkerPoolSettings, WorkerUpstream, workerUpstreams } from "../../src/model/workers";
import { certificateScript, liveDir, proxyServerScript, servedCertificate, unknownNameCertificate } from "../../src/provision/proxy";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { workerConfigScript, workerSecretsScript } from "../../src/provision/workers";
import { NginxSite } from "../../src/render/proxy";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort, freeWorkerPorts, isListening } from "../support/integration/net";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir, run, sleep, type SpawnedDaemon } from "../support/integration/processes";
import { childrenOf, ProxySandbox } from "../support/integration/proxySandbox";
import { startRedis } from "../support/integration/redis";
import { startSynapse, startWorker, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const DOMAIN = "matrix.pm-test.example";
const SERVER_NAME = "pm-test.example";
const ELEMENT_DOMAIN = "element.pm-test.example";
/** A name Pebble's DNS points at 127.0.0.2, where nothing listens: its HTTP-01 validation fails. */
const UNREACHABLE = "moved.pm-test.example";
const COMPONENT = 'ReverseProxy "test"';
const HOST = 'Host "test"';
const random = () => crypto.randomBytes(24).toString("hex");
/** Every request of this run carries it, so the processes' logs tell our requests apart. */
const USER_AGENT = `pm-proxy-test/${random().slice(0, 12)}`;

/** Element Web's files, inside the bound /var/www so nginx's workers (www-data) can read them as on a VM. */
const ELEMENT: ElementSite = { domain: ELEMENT_DOMAIN, webRoot: "/var/www/element", configPath: "/var/www/element-config/config.json" };
const ELEMENT_CONFIG = JSON.stringify({ default_server_config: { "m.homeserver": { base_url: `https://${DOMAIN}` } }, brand: "pm-test" });

interface Reply {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
    /** The certificate nginx presented (HTTPS only), with its chain up to the trusted root. */
    cert?: DetailedPeerCertificate;
}

interface Deployment {
    proxy: ReverseProxySettings;
    site: NginxSite;
}

describe("ReverseProxy: nginx and certbot from Debian, certificates from Pebble, Synapse and a federation reader behind it", function () {
    let pebble: PebbleServer;
    let pg: PgServer;
    let redis: SpawnedDaemon;
    let sandbox: ProxySandbox;
    let settings: SynapseSettings;
    let pool: WorkerPoolSettings;
    let upstreams: WorkerUpstream[];
    let main: SynapseProcess;
    let reader: SynapseProcess;
    let issuingRoot: string;
    let first: Deployment;
    let firstRun: { server: string; certificate: string };
    /** The settings deployed last: each test starts from what the one before left. */
    let current: Deployment;
    let nginxMaster: number;
    /** The sandbox's mount namespace: an nginx in it is this suite's, whatever else runs nginx on the machine. */
    let sandboxMountNs: string | undefined;
    const startedPids: number[] = [];

    /** The proxy settings and site the component would derive from these options (Element served unless `element` is null). */
    function deployment(o: Partial<ReverseProxyOptions>, element: ElementSite | null = ELEMENT): Deployment {
        const options: ReverseProxyOptions = {
            acme: { email: `admin@${SERVER_NAME}`, directoryUrl: pebble.directoryUrl, caBundle: fs.readFileSync(pebble.apiCaFile, "utf8") },
            listenAddresses: ["127.0.0.1"],
            serverNameWellKnown: true,
            ...o,
        };
        const proxy = resolveReverseProxySettings(COMPONENT, options, settings, element ?? undefined);
        const site: NginxSite = {
            proxy,
            publicBaseUrl: settings.publicBaseUrl,
            main: synapseListener(settings),
            workers: upstreams,
            ...(element ? { element } : {}),
            tls: servedCertificate(),
        };
        return { proxy, site };
    }

    /** Both scripts, in the component's order (the certificate step runs after the server step). */
    async function deploy(d: Deployment): Promise<{ server: string; certificate: string }> {
        const server = await sandbox.run(proxyServerScript(d.site, COMPONENT));
        const certificate = await sandbox.run(certificateScript(d.proxy));
        current = d;
        return { server, certificate };
    }

    /** A request to nginx on 127.0.0.1 for `name` (SNI and Host), trusting only Pebble's issuing root. */
    function request(scheme: "https" | "http", name: string, port: number, urlPath: string, opts: { method?: string; body?: string } = {}): Promise<Reply> {
        const defaultPort = scheme === "https" ? 443 : 80;
        const headers: http.OutgoingHttpHeaders = { host: port === defaultPort ? name : `${name}:${port}`, "user-agent": USER_AGENT };
        if (opts.body !== undefined) headers["content-type"] = "application/json";
        const common = { host: "127.0.0.1", port, path: urlPath, method: opts.method ?? "GET", headers, agent: false as const, timeout: 30_000 };
        return new Promise((resolve, reject) => {
            const onResponse = (res: http.IncomingMessage) => {
                const socket = res.socket as TLSSocket;
                const cert = scheme === "https" ? socket.getPeerCertificate(true) : undefined;
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (d: string) => (body += d));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ...(cert ? { cert } : {}) }));
                res.on("error", reject);
            };
            const req =
                scheme === "https"
                    ? https.request({ ...common, servername: name, ca: [issuingRoot], rejectUnauthorized: true }, onResponse)
                    : http.request(common, onResponse);
            req.on("timeout", () => req.destroy(new Error(`${scheme}://${name}:${port}${urlPath}: timed out`)));
            req.on("error", reject);
            req.end(opts.body);
        });
    }
    const get = (name: string, urlPath: string, port = 443) => request("https", name, port, urlPath);

    /** The certificate certbot keeps in the live directory, read on this machine through the bind mount. */
    function issued(proxy: ReverseProxySettings = current.proxy): crypto.X509Certificate {
        return new crypto.X509Certificate(fs.readFileSync(sandbox.hostPath(`${liveDir(proxy)}/cert.pem`)));
    }

    async function servedSerial(name = DOMAIN, port = 443): Promise<string> {
        const r = await get(name, "/_matrix/client/versions", port);
        return r.cert!.serialNumber.toUpperCase();
    }

    /** nginx picks up a reload asynchronously for new connections: polls until the served serial is `serial` (10 s at most). */
    async function waitForServedSerial(serial: string, name = DOMAIN): Promise<void> {
        let last = "";
        for (let i = 0; i < 50; i++) {
            last = await servedSerial(name);
            if (last === serial.toUpperCase()) return;
            await sleep(200);
        }
        assert.fail(`nginx serves certificate ${last}, expected ${serial}\n${sandbox.nginxLog()}`);
    }

    const sans = (cert: { subjectaltname?: string; subjectAltName?: string }) => (cert.subjectaltname ?? cert.subjectAltName ?? "").split(", ").sort();

    before(async function () {
        const t0 = Date.now();
        let venv: string;
        // HTTP-01 validation dials port 80 of the name, where the rendered nginx listens (127.0.0.1 only).
        [pg, venv, pebble] = await Promise.all([startPostgres(), ensureSynapseVenv(), startPebble({ httpPort: 80 })]);
        for (const name of [DOMAIN, SERVER_NAME, ELEMENT_DOMAIN]) await pebble.addARecord(name, "127.0.0.1");
        await pebble.addARecord(UNREACHABLE, "127.0.0.2");
        issuingRoot = fs.readFileSync(pebble.issuingRootFile, "utf8");
        for (const port of [80, 443, 8448]) assert.ok(!(await isListening(port)), `something already listens on 127.0.0.1:${port}`);

        sandbox = new ProxySandbox("test");
        const dir = makeTempDir("proxy-synapse");

        // Redis, PostgreSQL, Synapse's and the pool's scripts, then the processes, as workers.test.ts does.
        const redisPassword = random();
        const started = await startRedis(dir, redisPassword);
        redis = started.daemon;
        const redisSettings = started.settings;
        startedPids.push(redis.pid);

        const dbPassword = random();
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        const peers: SynapsePeers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
        settings = resolveSynapseSettings("test", {
            serverName: SERVER_NAME,
            publicBaseUrl: `https://${DOMAIN}/`,
            installMethod: "pip",
            httpPort: await freePort(),
            metrics: { enabled: false },
            replication: { port: await freePort() },
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        pool = resolveWorkerPoolSettings(
            'WorkerPool "test"',
            { instances: [{ role: "federation_reader", count: 1, port: await freeWorkerPorts() }] },
            settings,
            HOST,
        );
        const workerPeers: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: redisSettings.port, tls: false }, redisPassword: true };
        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: key.fileLine,
                files: [pgpassSecretFile(peers.database!, dbPassword)],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, peers, "test"));
        await sandbox.run(workerSecretsScript(pool, settings, HOST, { replicationSecret: random(), redisPassword }));
        await sandbox.run(workerConfigScript(pool, settings, HOST, workerPeers, { component: 'WorkerPool "test"', synapsePeers: peers }));
        // The upstreams the WorkerPool component hands the ReverseProxy (one host: loopback).
        upstreams = workerUpstreams(pool, () => "127.0.0.1");
        assert.deepEqual(
            upstreams.map((u) => [u.name, u.role]),
            [["federation_reader1", "federation_reader"]],
        );

        const f = synapseFiles(settings.paths);
        main = await startSynapse({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `http://${synapseListener(settings)}/health`,
            cwd: settings.paths.dataDir,
            name: "main",
        });
        startedPids.push(main.pid);
        const w = pool.workers[0]!;
        reader = await startWorker({
            venv,
            configPaths: [f.homeserverYaml, f.confD + "/", workerFiles(settings.paths).worker(w.name)],
            healthUrl: `${upstreams[0]!.url}/health`,
            cwd: settings.paths.dataDir,
            name: w.name,
        });
        startedPids.push(reader.pid);

        // Element Web's files as the ElementWeb component would leave them (a release and its config.json).
        const webRoot = sandbox.hostPath(ELEMENT.webRoot);
        fs.mkdirSync(path.join(webRoot, "i18n"), { recursive: true });
        fs.mkdirSync(path.join(webRoot, "bundles"), { recursive: true });
        fs.writeFileSync(path.join(webRoot, "index.html"), "<!doctype html><title>Element</title>\n");
        fs.writeFileSync(path.join(webRoot, "i18n", "x.json"), '{"hello":"world"}\n');
        fs.writeFileSync(path.join(webRoot, "bundles", "app.js"), "console.log('element');\n");
        fs.mkdirSync(path.dirname(sandbox.hostPath(ELEMENT.configPath)), { recursive: true });
        fs.writeFileSync(sandbox.hostPath(ELEMENT.configPath), ELEMENT_CONFIG);

        // The first deployment: the admin API open to a network this machine is not in.
        first = deployment({ adminAllowList: ["10.0.0.0/8"] });
        sandbox.reset();
        firstRun = await deploy(first);
        nginxMaster = sandbox.nginxPid()!;
        assert.ok(nginxMaster, `nginx does not run\n${sandbox.nginxLog()}`);
        sandboxMountNs = fs.readlinkSync(`/proc/${nginxMaster}/ns/mnt`);
        startedPids.push(nginxMaster);
        process.stderr.write(`      (set-up: ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    });

    after(async function () {
        const workers = nginxMaster ? childrenOf(nginxMaster) : [];
        await sandbox?.stopNginx();
        await reader?.stop();
        await main?.stop();
        await redis?.stop("SIGTERM", 5000);
        await pg?.stop();
        await pebble?.stop();
        // Nothing this suite started is left: nginx's master and workers, Synapse, Redis.
        const left = [...startedPids, ...workers].filter((pid) => {
            try {
                process.kill(pid, 0);
                return true;
            } catch {
                return false;
            }
        });
        const nginx = await run("pgrep", ["-a", "-x", "nginx"], { allowFailure: true });
        const ours = nginx.stdout
            .trim()
            .split("\n")
            .filter((line) => {
                try {
                    return line !== "" && fs.readlinkSync(`/proc/${line.split(" ")[0]}/ns/mnt`) === sandboxMountNs;
                } catch {
                    return false; // gone meanwhile
                }
            });
        assert.deepEqual(left, [], "processes left running");
        assert.deepEqual(ours, [], "an nginx process of the sandbox is left");
    });

    it("first deployment: disables Debian's default site, starts nginx on a bootstrap certificate, then serves the one certbot got from Pebble", function () {
        const { server, certificate } = firstRun;
        assert.match(server, /^disabled Debian's default site$/m);
        assert.ok(!fs.existsSync(sandbox.hostPath(PROXY_FILES.defaultSite)), "the copy's sites-enabled/default is gone");
        assert.ok(fs.existsSync(sandbox.hostPath("/etc/nginx/sites-available/default")), "sites-available/default is kept");
        assert.ok(fs.lstatSync(PROXY_FILES.defaultSite).isSymbolicLink(), "this machine's own /etc/nginx was not touched");
        assert.match(server, /^nginx starts on a self-signed certificate until the CA issues one$/m);
        assert.match(server, new RegExp(`^updated ${PROXY_FILES.conf}$`, "m"));
        assert.match(server, /^starting nginx\.service$/m);
        assert.match(certificate, new RegExp(`^nginx now serves the certificate for ${DOMAIN}, ${SERVER_NAME}, ${ELEMENT_DOMAIN}$`, "m"));
        assert.match(certificate, /^new certificate: reloading nginx$/m);
        assert.match(certificate, /^certificate for .*: notAfter=/m);
        // nginx started once (by the server step), reloaded once (by the certificate step, for the issued certificate).
        assert.deepEqual(sandbox.nginxLifecycle(), ["start nginx.service", "reload nginx.service"]);
        const calls = sandbox.calls();
        assert.ok(calls.includes("enable certbot.timer"), calls.join("\n"));
        assert.ok(calls.includes("daemon-reload"), calls.join("\n"));
        assert.equal(fs.readlinkSync(sandbox.hostPath(PROXY_FILES.tls)), liveDir(first.proxy));
        assert.equal(fs.readFileSync(sandbox.hostPath(PROXY_FILES.caBundle), "utf8"), fs.readFileSync(pebble.apiCaFile, "utf8").trim() + "\n");
        assert.match(
            fs.readFileSync(sandbox.hostPath(PROXY_FILES.certbotDropIn), "utf8"),
            new RegExp(`^Environment=REQUESTS_CA_BUNDLE=${PROXY_FILES.caBundle}$`, "m"),
        );
        assert.ok(fs.statSync(sandbox.hostPath(PROXY_FILES.deployHook)).mode & 0o100, "the deploy hook is executable");
        // certbot's renewal configuration points at Pebble, so the timer renews from the same CA.
        const renewal = fs.readFileSync(sandbox.hostPath(`/etc/letsencrypt/renewal/${DOMAIN}.conf`), "utf8");
        assert.match(renewal, new RegExp(`^server = ${pebble.directoryUrl}$`, "m"));
        // The script's --no-directory-hooks is not saved: the timer's renewals run the deploy hook (see the forced renewal below).
        assert.doesNotMatch(renewal, /directory_hooks/);
    });

    it("serves Synapse's client API over HTTPS on 443 and 8448 with Pebble's certificate for every name, trusted through Pebble's root alone", async function () {
        const root = new crypto.X509Certificate(issuingRoot);
        const cert = issued();
        assert.deepEqual(sans(cert), [`DNS:${ELEMENT_DOMAIN}`, `DNS:${DOMAIN}`, `DNS:${SERVER_NAME}`]);
        for (const port of [443, 8448]) {
            const r = await get(DOMAIN, "/_matrix/client/versions", port);
            assert.equal(r.status, 200, r.body);
            assert.ok(Array.isArray((JSON.parse(r.body) as { versions: string[] }).versions), r.body);
            const served = r.cert!;
            assert.equal(served.serialNumber.toUpperCase(), cert.serialNumber.toUpperCase(), `port ${port} serves the certificate certbot keeps`);
            assert.deepEqual(sans(served), [`DNS:${ELEMENT_DOMAIN}`, `DNS:${DOMAIN}`, `DNS:${SERVER_NAME}`]);
            // Leaf <- Pebble's intermediate <- Pebble's issuing root.
            assert.match(String(served.issuer.CN), /^Pebble Intermediate CA/);
            assert.equal(served.issuerCertificate.subject.CN, served.issuer.CN);
            assert.equal(served.issuerCertificate.issuerCertificate.fingerprint256, root.fingerprint256);
            assert.equal(r.headers["strict-transport-security"], "max-age=63072000");
        }
        // The same certificate for the other names nginx serves.
        for (const name of [SERVER_NAME, ELEMENT_DOMAIN]) assert.equal(await servedSerial(name), cert.serialNumber.toUpperCase(), name);
        assert.match(main.log(), new RegExp(`"GET /_matrix/client/versions HTTP/1.1" "${USER_AGENT}"`));
    });

    it("refuses the TLS handshake for a name it does not serve, or none, on 443 and 8448: no certificate is shown", async function () {
        for (const port of [443, 8448])
            for (const servername of ["unknown.pm-test.example", ""]) {
                const r = await handshake(port, servername, issuingRoot);
                assert.equal(r.certificate, undefined, `port ${port}, SNI ${JSON.stringify(servername)}: a certificate was shown`);
                // nginx's ssl_reject_handshake answers with the unrecognized_name alert (112).
                assert.match(r.error ?? "", /unrecognized name|alert number 112|UNRECOGNIZED_NAME/i, `port ${port}, SNI ${JSON.stringify(servername)}`);
            }
        // Our names still get their certificate (and an answer) on the same ports.
        for (const port of [443, 8448]) {
            const r = await handshake(port, DOMAIN, issuingRoot);
            assert.equal(r.error, undefined, r.error);
            assert.ok(r.certificate?.subjectaltname?.includes(`DNS:${DOMAIN}`), JSON.stringify(r.certificate?.subjectaltname));
        }
        assert.equal((await get(DOMAIN, "/_matrix/client/versions")).status, 200);
    });

    it("port 80 closes the connection without an answer (444) for a Host it does not serve, or an IP address", async function () {
        for (const host of ["unknown.pm-test.example", "127.0.0.1"]) {
            const raw = await rawHttp(80, `GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
            assert.equal(raw, "", `Host ${host}: nginx answered ${JSON.stringify(raw.slice(0, 200))}`);
        }
        const ours = await rawHttp(80, `GET /x HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`);
        assert.match(ours, /^HTTP\/1\.1 301 /);
    });

    it("sends federation requests to the federation reader (its access log has them, the main process's has not)", async function () {
        const version = await get(DOMAIN, "/_matrix/federation/v1/version", 8448);
        assert.equal(version.status, 200, version.body);
        assert.equal((JSON.parse(version.body) as { server: { name: string } }).server.name, "Synapse");
        const keys = await request("https", DOMAIN, 8448, "/_matrix/key/v2/query", {
            method: "POST",
            body: JSON.stringify({ server_keys: { [SERVER_NAME]: {} } }),
        });
        assert.equal(keys.status, 200, keys.body);
        const line = (method: string, p: string) => new RegExp(`"${method} ${p.replace(/[.?*+^$()|[\]\\]/g, "\\$&")} HTTP/1.1" "${USER_AGENT}"`);
        await waitFor(
            () => line("GET", "/_matrix/federation/v1/version").test(reader.log()) && line("POST", "/_matrix/key/v2/query").test(reader.log()),
            `the reader logs both requests\n${reader.log().slice(-3000)}`,
        );
        assert.doesNotMatch(main.log(), line("GET", "/_matrix/federation/v1/version"));
        assert.doesNotMatch(main.log(), line("POST", "/_matrix/key/v2/query"));
        // Synapse logs the port of the listener that served it: the reader's.
        const served = reader
            .log()
            .split("\n")
            .find((l) => line("GET", "/_matrix/federation/v1/version").test(l))!;
        assert.match(served, new RegExp(`synapse\\.access\\.http\\.${pool.workers[0]!.port}\\b`), served);
    });

    it("passes %2F in a path through to Synapse unchanged (main process and federation reader)", async function () {
        const room = "%21a%2Fb%3Apm-test.example";
        const clientPath = `/_matrix/client/v3/rooms/${room}/state`;
        const client = await get(DOMAIN, clientPath);
        assert.equal(client.status, 401, client.body); // no access token: Synapse answered
        const federationPath = `/_matrix/federation/v1/state/${room}?event_id=%24e%2Ff`;
        const federation = await get(DOMAIN, federationPath, 8448);
        assert.equal(federation.status, 401, federation.body); // unsigned: the reader answered
        await waitFor(() => main.log().includes(`"GET ${clientPath} HTTP/1.1" "${USER_AGENT}"`), `main logs ${clientPath}\n${main.log().slice(-2000)}`);
        await waitFor(
            () => reader.log().includes(`"GET ${federationPath} HTTP/1.1" "${USER_AGENT}"`),
            `the reader logs ${federationPath}\n${reader.log().slice(-2000)}`,
        );
        assert.ok(!/rooms\/!a\/b|state\/!a\/b/.test(main.log() + reader.log()), "a decoded path reached Synapse");
    });

    it("serves the well-known documents as JSON with Access-Control-Allow-Origin: *", async function () {
        const server = await get(SERVER_NAME, "/.well-known/matrix/server");
        assert.equal(server.status, 200, server.body);
        assert.deepEqual(JSON.parse(server.body), wellKnownServer(first.proxy));
        assert.deepEqual(JSON.parse(server.body), { "m.server": `${DOMAIN}:8448` });
        for (const [name, r] of [
            [SERVER_NAME, await get(SERVER_NAME, "/.well-known/matrix/client")],
            [DOMAIN, await get(DOMAIN, "/.well-known/matrix/client")],
        ] as const) {
            assert.equal(r.status, 200, `${name}: ${r.status} ${r.body}`);
            assert.deepEqual(JSON.parse(r.body), wellKnownClient(settings.publicBaseUrl));
            assert.deepEqual(JSON.parse(r.body), { "m.homeserver": { base_url: `https://${DOMAIN}` } });
        }
        for (const r of [server, await get(SERVER_NAME, "/.well-known/matrix/client"), await get(DOMAIN, "/.well-known/matrix/client")]) {
            assert.equal(r.headers["content-type"], "application/json");
            assert.equal(r.headers["access-control-allow-origin"], "*");
        }
        // Nothing else on the server_name's domain, and no CORS header of nginx's outside the well-known documents.
        const other = await get(SERVER_NAME, "/_matrix/client/versions");
        assert.equal(other.status, 404);
        assert.equal(other.headers["access-control-allow-origin"], undefined);
        // Synapse sends its own CORS headers on the API: nginx adds no second one.
        const versions = await get(DOMAIN, "/_matrix/client/versions");
        assert.equal(versions.headers["access-control-allow-origin"], "*");
    });

    it("serves Element Web on its own domain: config.json with the security headers, entry files never cached, other files cacheable", async function () {
        const security = {
            "x-frame-options": "SAMEORIGIN",
            "x-content-type-options": "nosniff",
            "content-security-policy": "frame-ancestors 'self'",
            "referrer-policy": "no-referrer",
        };
        for (const p of ["/config.json", `/config.${ELEMENT_DOMAIN}.json`]) {
            const config = await get(ELEMENT_DOMAIN, p);
            assert.equal(config.status, 200, `${p}: ${config.body}`);
            assert.equal(config.body, ELEMENT_CONFIG);
            for (const [h, v] of Object.entries(security)) assert.equal(config.headers[h], v, `${p} ${h}`);
            assert.equal(config.headers["cache-control"], "no-cache", p);
        }
        for (const [p, body] of [
            ["/", "<!doctype html><title>Element</title>\n"] as const,
            ["/index.html", "<!doctype html><title>Element</title>\n"],
            ["/i18n/x.json", '{"hello":"world"}\n'],
        ]) {
            const r = await get(ELEMENT_DOMAIN, p);
            assert.equal(r.status, 200, p);
            assert.equal(r.body, body, p);
            assert.equal(r.headers["cache-control"], "no-cache", p);
            assert.equal(r.headers["x-frame-options"], "SAMEORIGIN", p);
        }
        const bundle = await get(ELEMENT_DOMAIN, "/bundles/app.js");
        assert.equal(bundle.status, 200);
        assert.equal(bundle.body, "console.log('element');\n");
        assert.equal(bundle.headers["cache-control"], undefined, "a release file may be cached");
        assert.equal(bundle.headers["x-content-type-options"], "nosniff");
        // The homeserver's API is not served under Element's origin.
        assert.equal((await get(ELEMENT_DOMAIN, "/_matrix/client/versions")).status, 404);
    });

    it("port 80 redirects to https (301), except ACME challenges, which it serves from certbot's webroot", async function () {
        for (const name of [DOMAIN, SERVER_NAME, ELEMENT_DOMAIN]) {
            const r = await request("http", name, 80, "/_matrix/client/versions?x=%2F");
            assert.equal(r.status, 301, name);
            assert.equal(r.headers.location, `https://${name}/_matrix/client/versions?x=%2F`);
        }
        const token = `pm-test-${random().slice(0, 16)}`;
        const challengeDir = sandbox.hostPath(`${first.proxy.acme.webroot}/.well-known/acme-challenge`);
        fs.mkdirSync(challengeDir, { recursive: true });
        fs.writeFileSync(path.join(challengeDir, token), "key-authorization\n");
        try {
            const served = await request("http", DOMAIN, 80, `/.well-known/acme-challenge/${token}`);
            assert.equal(served.status, 200);
            assert.equal(served.body, "key-authorization\n");
            const missing = await request("http", ELEMENT_DOMAIN, 80, "/.well-known/acme-challenge/not-there");
            assert.equal(missing.status, 404, "a challenge is answered on port 80, never redirected");
        } finally {
            fs.rmSync(path.join(challengeDir, token), { force: true });
        }
    });

    it("a second run of both scripts with the same settings changes nothing: no file, no reload, no new certificate", async function () {
        const serial = await servedSerial();
        sandbox.reset();
        const again = await deploy(first);
        const output = again.server + again.certificate;
        assert.doesNotMatch(output, /^(updated|removed) /m, output);
        assert.doesNotMatch(output, /new certificate|now serves|reloaded|restarting|starting/, output);
        assert.deepEqual(sandbox.nginxLifecycle(), [], sandbox.calls().join("\n"));
        assert.equal(sandbox.nginxPid(), nginxMaster, "the same nginx master");
        assert.equal(issued().serialNumber.toUpperCase(), serial);
        assert.equal(await servedSerial(), serial);
    });

    it("the admin API is refused (403) from outside the allow-list; re-running with 127.0.0.1/32 allows it after a reload (no restart)", async function () {
        const refused = await get(DOMAIN, "/_synapse/admin/v1/server_version");
        assert.equal(refused.status, 403, refused.body);
        assert.doesNotMatch(main.log(), /GET \/_synapse\/admin\/v1\/server_version/, "the refused request reached Synapse");

        sandbox.reset();
        const { server, certificate } = await deploy(deployment({ adminAllowList: ["127.0.0.1/32"] }));
        assert.match(server, new RegExp(`^updated ${PROXY_FILES.conf}$`, "m"));
        assert.match(server, /^reloaded nginx\.service$/m);
        assert.doesNotMatch(server + certificate, /restarting|starting|new certificate/);
        assert.deepEqual(sandbox.nginxLifecycle(), ["reload nginx.service"]);
        assert.equal(sandbox.nginxPid(), nginxMaster, "reloaded in place: the same master process");

        const allowed = await get(DOMAIN, "/_synapse/admin/v1/server_version");
        assert.equal(allowed.status, 200, allowed.body);
        assert.ok((JSON.parse(allowed.body) as { server_version: string }).server_version, allowed.body);
    });

    it("a forced renewal by certbot runs the installed deploy hook: nginx reloads and serves the new certificate; the services' hooks run with RENEWED_LINEAGE", async function () {
        const before = issued().serialNumber.toUpperCase();
        assert.equal(await servedSerial(), before);
        const marker = path.join(sandbox.dir, "hook-ran");
        const hook = sandbox.hostPath(`${PROXY_FILES.hooksDir}/50-pm-test`);
        fs.writeFileSync(hook, `#!/bin/sh\necho "$RENEWED_LINEAGE" >>${marker}\n`, { mode: 0o755 });

        sandbox.reset();
        // As certbot.timer runs it (with the drop-in's environment; without its random delay), in the same directories as the script.
        const out = await sandbox.run(
            `set -e\nREQUESTS_CA_BUNDLE=${PROXY_FILES.caBundle} certbot renew --force-renewal --no-random-sleep-on-renew --non-interactive 2>&1\n`,
        );
        assert.match(out, /Congratulations, all renewals succeeded/, out);
        assert.deepEqual(sandbox.nginxLifecycle(), ["reload nginx.service"], out);
        assert.equal(sandbox.nginxPid(), nginxMaster);

        const after = issued().serialNumber.toUpperCase();
        assert.notEqual(after, before, "certbot got a new certificate");
        await waitForServedSerial(after);
        assert.equal(await servedSerial(DOMAIN), after);
        assert.equal(fs.readFileSync(marker, "utf8"), `${liveDir(current.proxy)}\n`);
        fs.rmSync(marker);
    });

    it("changing the certificate's names (Element dropped) asks the CA again at once; nginx serves the new name set", async function () {
        const before = issued().serialNumber.toUpperCase();
        const marker = path.join(sandbox.dir, "hook-ran");
        sandbox.reset();
        const { server, certificate } = await deploy(deployment({ adminAllowList: ["127.0.0.1/32"] }, null));
        assert.deepEqual(current.proxy.certificateNames, [DOMAIN, SERVER_NAME]);
        assert.match(server, /^reloaded nginx\.service$/m); // the Element vhost is gone
        assert.match(certificate, /^new certificate: reloading nginx$/m);
        // One reload for the site (its Element server is gone), one for the new certificate: certbot itself runs no deploy hook here.
        assert.deepEqual(sandbox.nginxLifecycle(), ["reload nginx.service", "reload nginx.service"]);

        const cert = issued();
        assert.notEqual(cert.serialNumber.toUpperCase(), before);
        assert.deepEqual(sans(cert), [`DNS:${DOMAIN}`, `DNS:${SERVER_NAME}`]);
        await waitForServedSerial(cert.serialNumber);
        const served = (await get(DOMAIN, "/_matrix/client/versions")).cert!;
        assert.deepEqual(sans(served), [`DNS:${DOMAIN}`, `DNS:${SERVER_NAME}`]);
        assert.equal(fs.readFileSync(sandbox.hostPath(PROXY_FILES.request), "utf8"), `${pebble.directoryUrl} ecdsa ${DOMAIN},${SERVER_NAME}\n`);
        // The step reloads nginx alone: no service's hook runs for the web lineage (coturn has a lineage of its own).
        assert.ok(!fs.existsSync(marker), "a service's hook ran for the web lineage");
    });

    it("a name the CA cannot validate fails the certificate step with certbot's reason and the script's explanation; nginx keeps serving the previous certificate", async function () {
        const before = await servedSerial();
        const request = fs.readFileSync(sandbox.hostPath(PROXY_FILES.request), "utf8");
        const moved = deployment({ adminAllowList: ["127.0.0.1/32"] }, { ...ELEMENT, domain: UNREACHABLE });
        await sandbox.run(proxyServerScript(moved.site, COMPONENT));
        sandbox.reset();
        const r = await sandbox.tryRun(certificateScript(moved.proxy));
        assert.notEqual(r.code, 0, r.stdout);
        const names = `${DOMAIN}, ${SERVER_NAME}, ${UNREACHABLE}`;
        assert.ok(
            r.stderr.includes(
                `certbot could not obtain a certificate for ${names} from ${pebble.directoryUrl}: these names' DNS records must point to this host and port 80 must be reachable from the internet (the CA connects to http://<name>/.well-known/acme-challenge/)`,
            ),
            r.stderr,
        );
        // certbot's own words, printed before the explanation: the failed name and why.
        assert.match(r.stderr, new RegExp(`Domain: ${UNREACHABLE.replace(/\./g, "\\.")}`), r.stderr);
        assert.match(r.stderr, /127\.0\.0\.2/, r.stderr);
        assert.deepEqual(sandbox.nginxLifecycle(), []);
        assert.equal(
            fs.readFileSync(sandbox.hostPath(PROXY_FILES.request), "utf8"),
            request,
            "the request on record is still the one of the served certificate",
        );
        assert.equal(sandbox.nginxPid(), nginxMaster);
        assert.equal(await servedSerial(), before);
        assert.equal(await servedSerial(DOMAIN, 8448), before);
    });

    it("a burst of log-ins beyond the limit gets 429 M_LIMIT_EXCEEDED from nginx; reads, other paths and registration are not held back", async function () {
        // A low limit so the test is quick: 1 a minute, 2 more at once.
        const limited = deployment({ adminAllowList: ["127.0.0.1/32"], loginRateLimit: { perMinute: 1, burst: 2 } }, null);
        sandbox.reset();
        const server = await sandbox.run(proxyServerScript(limited.site, COMPONENT));
        assert.match(server, /^reloaded nginx\.service$/m);
        await sleep(500); // the reload reaches new connections asynchronously

        // Normal use: the login flows and /versions, many times, all answered by Synapse.
        for (let i = 0; i < 8; i++) {
            assert.equal((await get(DOMAIN, "/_matrix/client/v3/login")).status, 200);
            assert.equal((await get(DOMAIN, "/_matrix/client/versions")).status, 200);
        }
        const attempt = () =>
            request("https", DOMAIN, 443, "/_matrix/client/v3/login", {
                method: "POST",
                body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: "nobody" }, password: "wrong" }),
            });
        const replies: Reply[] = [];
        for (let i = 0; i < 6; i++) replies.push(await attempt());
        const byNginx = replies.filter((r) => r.status === 429 && r.body.includes("Too many requests from this address"));
        // The first three (1 + a burst of 2) reach Synapse (it refuses the password, or limits by its own rc_login); the rest are nginx's.
        assert.equal(byNginx.length, 3, replies.map((r) => `${r.status} ${r.body}`).join("\n"));
        assert.deepEqual(
            replies.slice(3).map((r) => r.status),
            [429, 429, 429],
        );
        for (const r of replies.slice(0, 3)) assert.doesNotMatch(r.body, /Too many requests from this address/, r.body);
        const body = JSON.parse(byNginx[0]!.body) as { errcode: string };
        assert.equal(body.errcode, "M_LIMIT_EXCEEDED");
        assert.equal(byNginx[0]!.headers["content-type"], "application/json");
        // Synapse saw three attempts from this run, not six.
        await waitFor(
            () => (main.log().match(new RegExp(`"POST /_matrix/client/v3/login HTTP/1.1" "${USER_AGENT}"`, "g")) ?? []).length >= 3,
            "main logs the attempts",
        );
        await sleep(500);
        assert.equal((main.log().match(new RegExp(`"POST /_matrix/client/v3/login HTTP/1.1" "${USER_AGENT}"`, "g")) ?? []).length, 3);
        // Registration has its own zone: not held back by the log-ins (Synapse answers: registration is closed).
        const register = await request("https", DOMAIN, 443, "/_matrix/client/v3/register", { method: "POST", body: "{}" });
        assert.notEqual(register.status, 429, register.body);
        // Reads are never limited.
        assert.equal((await get(DOMAIN, "/_matrix/client/v3/login")).status, 200);
    });

    it("an nginx without ssl_reject_handshake (Ubuntu 22.04's): unknown names get a certificate for unknown.invalid, then no answer; ours are unchanged", async function () {
        const base = deployment({ adminAllowList: ["127.0.0.1/32"] }, null);
        const legacy: NginxSite = { ...base.site, unknownNameCertificate: unknownNameCertificate() };
        sandbox.reset();
        const out = await sandbox.run(proxyServerScript(legacy, COMPONENT));
        assert.match(out, /^reloaded nginx\.service$/m);
        assert.ok(fs.existsSync(sandbox.hostPath(legacy.unknownNameCertificate!.key)), "the certificate's key was made");
        await sleep(500);
        try {
            // openssl shows the certificate the default server presents; the request it then sends gets no answer (444).
            const r = await run("openssl", ["s_client", "-connect", "127.0.0.1:443", "-servername", "unknown.pm-test.example", "-ign_eof"], {
                input: "GET / HTTP/1.1\r\nHost: unknown.pm-test.example\r\n\r\n",
                allowFailure: true,
                timeoutMs: 20_000,
            });
            assert.match(r.stdout, /subject=CN ?= ?unknown\.invalid/, r.stdout + r.stderr);
            assert.doesNotMatch(r.stdout, /pm-test\.example|HTTP\/1\.1/, "a name of ours, or an answer");
            const served = await servedSerial(DOMAIN);
            assert.equal(served, issued().serialNumber.toUpperCase());
            assert.equal((await get(DOMAIN, "/_matrix/client/versions")).status, 200);
        } finally {
            await sandbox.run(proxyServerScript(base.site, COMPONENT));
        }
    });
});

/** A TLS handshake with nginx on 127.0.0.1: the certificate shown, or the error that ended it. */
function handshake(port: number, servername: string, ca: string): Promise<{ certificate?: tls.PeerCertificate; error?: string }> {
    return new Promise((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port, ca: [ca], rejectUnauthorized: true, ...(servername ? { servername } : {}) });
        socket.setTimeout(10_000, () => socket.destroy(new Error("timed out")));
        socket.once("secureConnect", () => {
            const cert = socket.getPeerCertificate();
            socket.end();
            resolve({ certificate: cert && Object.keys(cert).length ? cert : undefined });
        });
        socket.once("error", (e) => resolve({ error: e.message }));
    });
}

/** Plain HTTP bytes to nginx on 127.0.0.1: what comes back until it closes. */
function rawHttp(port: number, request: string): Promise<string> {
    return new Promise((resolve, reject) => {
        let data = "";
        const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(request));
        socket.setTimeout(10_000, () => socket.destroy(new Error("timed out")));
        socket.on("data", (d) => (data += d.toString("latin1")));
        socket.on("close", () => resolve(data));
        socket.on("error", (e) => ((e as NodeJS.ErrnoException).code === "ECONNRESET" ? resolve(data) : reject(e)));
    });
}

/** Polls until `check` holds (20 s at most). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
        if (check()) return;
        await sleep(100);
    }
    assert.fail(`timed out: ${what}`);
}
