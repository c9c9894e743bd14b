// Let's Encrypt's test CA (Pebble, Debian package `pebble`) with its mock DNS
// server (pebble-challtestsrv) in a temp dir, for tests that need real ACME
// issuance: Pebble's validation authority really dials the challenged name
// (resolved through challtestsrv) on `httpPort`, so a challenge that is not
// served fails.
//
// Pebble's API certificate comes from a throw-away CA made here with openssl;
// clients trust it through `apiCaFile` (certbot: REQUESTS_CA_BUNDLE). The CA
// that signs issued certificates is Pebble's own, new on every start
// (`issuingRootPem()`).

import * as crypto from "node:crypto";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { freePort } from "./net";
import { makeTempDir, removeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

/** A running Pebble plus its mock DNS server. */
export interface PebbleServer {
    /** ACME directory URL, e.g. https://127.0.0.1:14000/dir */
    directoryUrl: string;
    /** Path of a PEM file with the CA that signed Pebble's own API TLS certificate (give certbot REQUESTS_CA_BUNDLE=this). */
    apiCaFile: string;
    /** PEM text of Pebble's current issuing root (from the management API /roots/0): clients trust issued certs with it. */
    issuingRootPem(): Promise<string>;
    /** Path of a file with that issuing root PEM (written after start). */
    issuingRootFile: string;
    /** Make pebble-challtestsrv answer A queries for `name` with `address` (default 127.0.0.1). */
    addARecord(name: string, address?: string): Promise<void>;
    /** The port Pebble's validation authority dials for HTTP-01 challenges. */
    httpPort: number;
    /** Port of the ACME API on `listenAddress` (to build a directory URL for another host, e.g. a VM). */
    apiPort: number;
    /** Last `n` lines of Pebble's and challtestsrv's output (for assertion messages). */
    logTail(n?: number): string;
    stop(): Promise<void>;
}

/** How to start Pebble. */
export interface PebbleOptions {
    /** Port that HTTP-01 validation dials on the challenged name (default: a free port picked by the caller; must be given). */
    httpPort: number;
    /** Address the ACME API and management API listen on. Default 127.0.0.1. (The VM suite will pass 0.0.0.0 or the host side of qemu's user network; keep it a parameter.) */
    listenAddress?: string;
    /** Default answer of the DNS test server for names without a record (default 127.0.0.1). */
    defaultIPv4?: string;
    /** More names or IPs for the API certificate (e.g. 10.0.2.2, how a qemu guest reaches the host). */
    extraApiHosts?: string[];
    /** How long to wait for Pebble to answer (default 60 s). */
    timeoutMs?: number;
}

const LOOPBACK = "127.0.0.1";

/**
 * Starts pebble-challtestsrv (DNS only) and Pebble with real validation, waits
 * until the ACME directory answers and writes the issuing root to a file.
 * Everything is registered for the suite's cleanup; `stop()` ends it earlier.
 */
export async function startPebble(opts: PebbleOptions): Promise<PebbleServer> {
    const listen = opts.listenAddress ?? LOOPBACK;
    const dir = makeTempDir("pebble");
    const daemons: SpawnedDaemon[] = [];
    const stop = async (): Promise<void> => {
        // Newest first: Pebble before the DNS server it queries.
        for (const d of [...daemons].reverse()) await d.stop("SIGTERM", 10_000);
        removeTempDir(dir);
    };
    try {
        const api = await makeApiCertificate(dir, apiCertHosts(listen, opts.extraApiHosts ?? []));
        const dns = await startChalltestsrv(dir, opts.defaultIPv4 ?? LOOPBACK);
        daemons.push(dns.daemon);
        const [apiPort, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
        const configFile = writePebbleConfig(dir, { listen, apiPort, managementPort, httpPort: opts.httpPort, tlsPort, api });
        const pebble = spawnPebble(dir, configFile, dns.dnsPort);
        daemons.push(pebble);

        const host = urlHost(listen);
        const directoryUrl = `https://${host}:${apiPort}/dir`;
        const rootUrl = `https://${host}:${managementPort}/roots/0`;
        const ca = fs.readFileSync(api.caFile);
        await waitForHttps(directoryUrl, ca, opts.timeoutMs ?? 60_000, () => exitReason(daemons));
        const issuingRootFile = path.join(dir, "issuing-root.pem");
        fs.writeFileSync(issuingRootFile, await httpsGet(rootUrl, ca));

        return {
            directoryUrl,
            apiCaFile: api.caFile,
            issuingRootPem: () => httpsGet(rootUrl, ca),
            issuingRootFile,
            addARecord: (name, address = LOOPBACK) => dns.addARecord(name, address),
            httpPort: opts.httpPort,
            apiPort,
            logTail: (n = 40) => logTails(daemons, n),
            stop,
        };
    } catch (err) {
        const logs = logTails(daemons, 40);
        await stop();
        throw new Error(`starting Pebble failed: ${(err as Error).message}\n${logs}`);
    }
}

// ---------------------------------------------------------------- API certificate

interface ApiCertificate {
    caFile: string;
    certFile: string;
    keyFile: string;
}

/** SAN entries of the API certificate: loopback always, the listen address unless it is a wildcard. */
function apiCertHosts(listen: string, extra: string[]): string[] {
    const wildcard = listen === "0.0.0.0" || listen === "::";
    const hosts = [LOOPBACK, "localhost", ...(wildcard ? [] : [listen]), ...extra];
    return [...new Set(hosts)];
}

function sanEntry(host: string): string {
    return net.isIP(host) ? `IP:${host}` : `DNS:${host}`;
}

/** A throw-away CA and a P-256 server certificate for Pebble's HTTPS listeners, made with openssl. */
async function makeApiCertificate(dir: string, hosts: string[]): Promise<ApiCertificate> {
    const f = (name: string): string => path.join(dir, name);
    // Our own config file, so the machine's openssl.cnf adds no extensions of its own.
    fs.writeFileSync(
        f("openssl.cnf"),
        [
            "[req]",
            "distinguished_name = dn",
            "prompt = no",
            "[dn]",
            "CN = unused",
            "[ca_ext]",
            "basicConstraints = critical, CA:TRUE",
            "keyUsage = critical, keyCertSign, cRLSign",
            "subjectKeyIdentifier = hash",
            "[server_ext]",
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature",
            "extendedKeyUsage = serverAuth",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid",
            `subjectAltName = ${hosts.map(sanEntry).join(", ")}`,
            "",
        ].join("\n"),
    );
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-config", f("openssl.cnf")];
    await run("openssl", [
        "req",
        "-x509",
        ...newKey,
        "-extensions",
        "ca_ext",
        "-days",
        "7",
        "-subj",
        "/CN=pulumi-matrix Pebble API test CA",
        "-keyout",
        f("api-ca.key"),
        "-out",
        f("api-ca.pem"),
    ]);
    await run("openssl", ["req", "-new", ...newKey, "-subj", "/CN=pebble-api", "-keyout", f("api.key"), "-out", f("api.csr")]);
    await run("openssl", [
        "x509",
        "-req",
        "-in",
        f("api.csr"),
        "-CA",
        f("api-ca.pem"),
        "-CAkey",
        f("api-ca.key"),
        "-set_serial",
        `0x${crypto.randomBytes(16).toString("hex")}`,
        "-days",
        "7",
        "-extfile",
        f("openssl.cnf"),
        "-extensions",
        "server_ext",
        "-out",
        f("api.pem"),
    ]);
    return { caFile: f("api-ca.pem"), certFile: f("api.pem"), keyFile: f("api.key") };
}

// ---------------------------------------------------------------- mock DNS

interface Challtestsrv {
    daemon: SpawnedDaemon;
    dnsPort: number;
    addARecord(name: string, address: string): Promise<void>;
}

/** A port free for both UDP and TCP on loopback (challtestsrv serves DNS on both). */
async function freeDnsPort(): Promise<number> {
    for (let i = 0; i < 20; i++) {
        const port = await freePort();
        if (await udpPortFree(port)) return port;
    }
    throw new Error("no port free for both UDP and TCP on 127.0.0.1");
}

function udpPortFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const sock = dgram.createSocket("udp4");
        sock.once("error", () => resolve(false));
        sock.bind(port, LOOPBACK, () => sock.close(() => resolve(true)));
    });
}

/**
 * pebble-challtestsrv as a DNS server only: its HTTP-01/HTTPS-01/TLS-ALPN-01
 * responders are switched off (empty flags) so they neither grab ports nor
 * answer challenges in place of the server under test.
 */
async function startChalltestsrv(dir: string, defaultIPv4: string): Promise<Challtestsrv> {
    const dnsPort = await freeDnsPort();
    const managementPort = await freePort();
    const daemon = spawnDaemon(
        "pebble-challtestsrv",
        [
            "-dns01",
            `${LOOPBACK}:${dnsPort}`,
            "-management",
            `${LOOPBACK}:${managementPort}`,
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv4",
            defaultIPv4,
            // Pebble's VA dials the FIRST address it resolves, AAAA before A: a default ::1 would win over every A record.
            "-defaultIPv6",
            "",
        ],
        { name: `pebble-challtestsrv:${dnsPort}`, cwd: dir, logFile: path.join(dir, "challtestsrv.log") },
    );
    const post = (endpoint: string, body: unknown): Promise<void> => postJson(`http://${LOOPBACK}:${managementPort}${endpoint}`, body);
    // The management API has no read endpoint; re-setting the default doubles as the readiness probe.
    const deadline = Date.now() + 30_000;
    for (;;) {
        if (daemon.hasExited()) throw new Error(`pebble-challtestsrv exited:\n${daemon.tail(40)}`);
        try {
            await post("/set-default-ipv4", { ip: defaultIPv4 });
            break;
        } catch (err) {
            if (Date.now() > deadline) throw new Error(`pebble-challtestsrv management API did not answer: ${String(err)}`);
            await sleep(100);
        }
    }
    return {
        daemon,
        dnsPort,
        addARecord: (name, address) => post("/add-a", { host: fqdn(name), addresses: [address] }),
    };
}

function fqdn(name: string): string {
    return name.endsWith(".") ? name : `${name}.`;
}

async function postJson(url: string, body: unknown): Promise<void> {
    const res = await fetch(url, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`POST ${url}: HTTP ${res.status} ${await res.text()}`);
}

// ---------------------------------------------------------------- Pebble

interface PebbleConfigValues {
    listen: string;
    apiPort: number;
    managementPort: number;
    httpPort: number;
    tlsPort: number;
    api: ApiCertificate;
}

function writePebbleConfig(dir: string, v: PebbleConfigValues): string {
    const file = path.join(dir, "pebble-config.json");
    const config = {
        pebble: {
            listenAddress: joinHostPort(v.listen, v.apiPort),
            managementListenAddress: joinHostPort(v.listen, v.managementPort),
            certificate: v.api.certFile,
            privateKey: v.api.keyFile,
            httpPort: v.httpPort,
            tlsPort: v.tlsPort,
            ocspResponderURL: "",
            externalAccountBindingRequired: false,
        },
    };
    fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
    return file;
}

/** Pebble with its test-only shortcuts set for speed and determinism, never for skipping validation. */
function spawnPebble(dir: string, configFile: string, dnsPort: number): SpawnedDaemon {
    const env: NodeJS.ProcessEnv = {};
    // No PEBBLE_* knob from the caller's environment (e.g. PEBBLE_VA_ALWAYS_VALID) may leak in.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PEBBLE_")) env[k] = v;
    Object.assign(env, {
        PEBBLE_VA_NOSLEEP: "1", // no random 0-15 s wait before each validation
        PEBBLE_WFE_NONCEREJECT: "0", // no deliberate badNonce errors
        PEBBLE_AUTHZREUSE: "0", // every order validates afresh
    });
    return spawnDaemon("pebble", ["-config", configFile, "-dnsserver", `${LOOPBACK}:${dnsPort}`, "-strict=false"], {
        name: "pebble",
        cwd: dir,
        env,
        logFile: path.join(dir, "pebble.log"),
    });
}

function logTails(daemons: SpawnedDaemon[], n: number): string {
    return daemons.map((d) => `--- ${d.name} (last ${n} lines) ---\n${d.tail(n)}`).join("\n");
}

function exitReason(daemons: SpawnedDaemon[]): string | undefined {
    const dead = daemons.find((d) => d.hasExited());
    return dead ? `${dead.name} exited` : undefined;
}

function joinHostPort(host: string, port: number): string {
    return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Host part of URLs for this machine: a wildcard listener is reached on loopback. */
function urlHost(listen: string): string {
    if (listen === "0.0.0.0" || listen === "::") return LOOPBACK;
    return net.isIPv6(listen) ? `[${listen}]` : listen;
}

// ---------------------------------------------------------------- HTTPS with our CA

/** GET over HTTPS trusting only `ca`; resolves with the body of a 200 response. */
function httpsGet(url: string, ca: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
        const req = https.get(url, { ca, timeout: 5000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: HTTP ${res.statusCode} ${body.slice(0, 200)}`))));
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
        req.on("error", reject);
    });
}

async function waitForHttps(url: string, ca: Buffer, timeoutMs: number, abort: () => string | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const reason = abort();
        if (reason) throw new Error(`waiting for ${url}: ${reason}`);
        try {
            await httpsGet(url, ca);
            return;
        } catch (err) {
            if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${url} (last: ${String(err)})`);
        }
        await sleep(200);
    }
}
