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
//
// Both programs run as children of the test process and end with it, or,
// with `detachedDir`, detached (the demo: they serve a VM that outlives
// `npm run demo`) until `stopDetachedPebble(dir)`.

import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";

import { freePort } from "./net";
import { lastLines, makeTempDir, removeTempDir, run, sleep, spawnDaemon } from "./processes";

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
    /** Adds a TXT value for `name` (`_acme-challenge.example.com`): what DNS-01 validation asks for. */
    setTxt(name: string, value: string): Promise<void>;
    /** Removes every TXT value of `name`. */
    clearTxt(name: string): Promise<void>;
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
    /**
     * Keep Pebble and challtestsrv running after this process exits (the
     * demo's VM renews its certificate later): their config, certificates,
     * logs and pid files live in this directory (emptied first), nothing is
     * registered for the suite's cleanup, and `stopDetachedPebble(dir)` (or
     * `stop()`) ends them and removes it. The API certificate is valid for a
     * year instead of a week.
     */
    detachedDir?: string;
}

const LOOPBACK = "127.0.0.1";

/**
 * Starts pebble-challtestsrv (DNS only) and Pebble with real validation, waits
 * until the ACME directory answers and writes the issuing root to a file.
 * Everything is registered for the suite's cleanup; `stop()` ends it earlier.
 * With `detachedDir`, both outlive this process instead (see there).
 */
export async function startPebble(opts: PebbleOptions): Promise<PebbleServer> {
    const listen = opts.listenAddress ?? LOOPBACK;
    const detached = opts.detachedDir !== undefined;
    const dir = opts.detachedDir ?? makeTempDir("pebble");
    if (detached) {
        await stopDetachedPebble(dir);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const launch: Launch = detached ? (...a) => launchDetached(dir, ...a) : (...a) => launchAttached(dir, ...a);
    const procs: PebbleProcess[] = [];
    const stop = async (): Promise<void> => {
        // Newest first: Pebble before the DNS server it queries.
        for (const p of [...procs].reverse()) await p.stop();
        if (detached) fs.rmSync(dir, { recursive: true, force: true });
        else removeTempDir(dir);
    };
    try {
        const api = await makeApiCertificate(dir, apiCertHosts(listen, opts.extraApiHosts ?? []), detached ? 365 : 7);
        const dns = await startChalltestsrv(launch, opts.defaultIPv4 ?? LOOPBACK);
        procs.push(dns.process);
        const [apiPort, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
        const configFile = writePebbleConfig(dir, { listen, apiPort, managementPort, httpPort: opts.httpPort, tlsPort, api });
        const pebble = spawnPebble(launch, configFile, dns.dnsPort);
        procs.push(pebble);

        const host = urlHost(listen);
        const directoryUrl = `https://${host}:${apiPort}/dir`;
        const rootUrl = `https://${host}:${managementPort}/roots/0`;
        const ca = fs.readFileSync(api.caFile);
        await waitForHttps(directoryUrl, ca, opts.timeoutMs ?? 60_000, () => exitReason(procs));
        const issuingRootFile = path.join(dir, "issuing-root.pem");
        fs.writeFileSync(issuingRootFile, await httpsGet(rootUrl, ca));

        return {
            directoryUrl,
            apiCaFile: api.caFile,
            issuingRootPem: () => httpsGet(rootUrl, ca),
            issuingRootFile,
            addARecord: (name, address = LOOPBACK) => dns.addARecord(name, address),
            setTxt: (name, value) => dns.setTxt(name, value),
            clearTxt: (name) => dns.clearTxt(name),
            httpPort: opts.httpPort,
            apiPort,
            logTail: (n = 40) => logTails(procs, n),
            stop,
        };
    } catch (err) {
        const logs = logTails(procs, 40);
        await stop();
        throw new Error(`starting Pebble failed: ${(err as Error).message}\n${logs}`);
    }
}

/** Stops a Pebble started with `detachedDir` (possibly by an earlier process) and removes the directory; true when something ran. */
export async function stopDetachedPebble(dir: string): Promise<boolean> {
    let was = false;
    // Newest first: Pebble before the DNS server it queries.
    for (const program of [PEBBLE, CHALLTESTSRV]) was = (await stopDetachedProgram(dir, program)) || was;
    fs.rmSync(dir, { recursive: true, force: true });
    return was;
}

/** Whether a Pebble started with `detachedDir` still runs, with its DNS server. */
export function detachedPebbleRunning(dir: string): boolean {
    return detachedPid(dir, PEBBLE) !== undefined && detachedPid(dir, CHALLTESTSRV) !== undefined;
}

// ---------------------------------------------------------------- the two programs, attached or detached

const PEBBLE = { command: "pebble", file: "pebble" } as const;
const CHALLTESTSRV = { command: "pebble-challtestsrv", file: "challtestsrv" } as const;
type Program = typeof PEBBLE | typeof CHALLTESTSRV;

/** Pebble or challtestsrv, running. */
interface PebbleProcess {
    readonly name: string;
    hasExited(): boolean;
    /** Last n lines of its output. */
    tail(n: number): string;
    stop(): Promise<void>;
}

/** Starts `program` in the Pebble directory, its output in `<file>.log` there. */
type Launch = (program: Program, args: string[], o: { name: string; env?: NodeJS.ProcessEnv }) => PebbleProcess;

/** A child of this process, registered for the suite's cleanup. */
function launchAttached(dir: string, program: Program, args: string[], o: { name: string; env?: NodeJS.ProcessEnv }): PebbleProcess {
    const d = spawnDaemon(program.command, args, { name: o.name, cwd: dir, env: o.env, logFile: path.join(dir, `${program.file}.log`) });
    return { name: d.name, hasExited: d.hasExited, tail: d.tail, stop: () => d.stop("SIGTERM", 10_000) };
}

/** A session of its own (setsid) that outlives this process: output to `<file>.log`, pid in `<file>.pid`. */
function launchDetached(dir: string, program: Program, args: string[], o: { name: string; env?: NodeJS.ProcessEnv }): PebbleProcess {
    const logFile = path.join(dir, `${program.file}.log`);
    const out = fs.openSync(logFile, "a");
    const child = spawn(program.command, args, { cwd: dir, env: o.env ?? process.env, detached: true, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    if (child.pid === undefined) {
        // The 'error' event that follows carries the reason (ENOENT...).
        child.once("error", () => undefined);
        throw new Error(`${o.name}: could not spawn ${program.command} (is the Debian package pebble installed?)`);
    }
    fs.writeFileSync(path.join(dir, `${program.file}.pid`), String(child.pid));
    let exited = false;
    child.once("exit", () => (exited = true));
    child.unref();
    return {
        name: o.name,
        hasExited: () => exited,
        tail: (n) => lastLines(readOr(logFile, ""), n),
        stop: async () => void (await stopDetachedProgram(dir, program)),
    };
}

function readOr(file: string, fallback: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return fallback;
    }
}

/**
 * The pid of `program` started detached in `dir`, while it runs. The pid file
 * may outlive the process and its pid be reused: the pid counts only while
 * that process runs `program` (/proc/<pid>/cmdline) in `dir` (/proc/<pid>/cwd).
 */
function detachedPid(dir: string, program: Program): number | undefined {
    try {
        const pid = Number(fs.readFileSync(path.join(dir, `${program.file}.pid`), "utf8").trim());
        if (!Number.isInteger(pid) || pid <= 1) return undefined;
        const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
        const ours = path.basename(argv0) === program.command && fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(dir);
        return ours ? pid : undefined;
    } catch {
        return undefined;
    }
}

/** SIGTERM, up to 5 s, then SIGKILL; true when it ran. */
async function stopDetachedProgram(dir: string, program: Program): Promise<boolean> {
    const pid = detachedPid(dir, program);
    if (pid === undefined) return false;
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && detachedPid(dir, program) !== undefined; i++) await sleep(100);
    if (detachedPid(dir, program) !== undefined) process.kill(pid, "SIGKILL");
    return true;
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
async function makeApiCertificate(dir: string, hosts: string[], days: number): Promise<ApiCertificate> {
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
        String(days),
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
        String(days),
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
    process: PebbleProcess;
    dnsPort: number;
    addARecord(name: string, address: string): Promise<void>;
    setTxt(name: string, value: string): Promise<void>;
    clearTxt(name: string): Promise<void>;
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
async function startChalltestsrv(launch: Launch, defaultIPv4: string): Promise<Challtestsrv> {
    const dnsPort = await freeDnsPort();
    const managementPort = await freePort();
    const daemon = launch(
        CHALLTESTSRV,
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
        { name: `pebble-challtestsrv:${dnsPort}` },
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
        process: daemon,
        dnsPort,
        addARecord: (name, address) => post("/add-a", { host: fqdn(name), addresses: [address] }),
        setTxt: (name, value) => post("/set-txt", { host: fqdn(name), value }),
        clearTxt: (name) => post("/clear-txt", { host: fqdn(name) }),
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
function spawnPebble(launch: Launch, configFile: string, dnsPort: number): PebbleProcess {
    const env: NodeJS.ProcessEnv = {};
    // No PEBBLE_* knob from the caller's environment (e.g. PEBBLE_VA_ALWAYS_VALID) may leak in.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PEBBLE_")) env[k] = v;
    Object.assign(env, {
        PEBBLE_VA_NOSLEEP: "1", // no random 0-15 s wait before each validation
        PEBBLE_WFE_NONCEREJECT: "0", // no deliberate badNonce errors
        PEBBLE_AUTHZREUSE: "0", // every order validates afresh
    });
    return launch(PEBBLE, ["-config", configFile, "-dnsserver", `${LOOPBACK}:${dnsPort}`, "-strict=false"], { name: "pebble", env });
}

function logTails(daemons: PebbleProcess[], n: number): string {
    return daemons.map((d) => `--- ${d.name} (last ${n} lines) ---\n${d.tail(n)}`).join("\n");
}

function exitReason(daemons: PebbleProcess[]): string | undefined {
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
