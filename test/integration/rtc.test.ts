// MatrixRTC as the library deploys it, against the real programs: a call
// between two users of the homeserver through livekit-server (the LiveKit
// SFU) and lk-jwt-service (the MatrixRTC authorization service) behind
// Debian's nginx with a certificate from Pebble, Synapse from PyPI (SQLite).
//
// Every file comes from the library's scripts, run as root in a mount
// namespace (test/support/integration/proxySandbox.ts) inside a network
// namespace of this test's own: nginx, livekit-server and lk-jwt-service
// run there, started by the `systemctl` stand-in from the rendered units (as
// the unit's user, with its EnvironmentFile). The namespace's veth carries
// NS_SIDE (nginx's address; Pebble validates through it) and PUBLIC (the
// SFU's public address, as on a cloud VM; nothing routes to or from it);
// this namespace's end, HOST_SIDE, has Synapse's listener (behind nginx),
// Pebble's API and the "release" server the install step downloads the two
// binaries from, checked against their SHA-256. Names resolve through the
// namespace's own hosts file (/etc/netns/<ns>/hosts, which `ip netns exec`
// puts over /etc/hosts); lk-jwt-service trusts Pebble's root as the system
// store (a bound /etc/ssl/certs/ca-certificates.crt), the clients through
// SSL_CERT_FILE. No TLS check is switched off anywhere.
//
// Then, as Element Call does: each user gets an OpenID token from Synapse,
// exchanges it at the authorization service (through nginx) for a LiveKit
// token, and joins the call over nginx's WebSocket route with the LiveKit
// test client (test/support/integration/rtc-client): one publishes Opus and
// VP8, the other counts the packets the SFU forwards. A user of another
// homeserver (a second Synapse with a TLS federation listener of its own,
// outside fullAccessHomeservers) joins a call that exists but cannot start
// one; forged OpenID tokens are refused.

import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import * as tls from "node:tls";

import { PROXY_FILES, resolveReverseProxySettings, type ReverseProxySettings, synapseListener } from "../../src/model/proxy";
import { resolveRtcSettings, RTC_FILES, type RtcOptions, type RtcSettings, rtcSite } from "../../src/model/rtc";
import { resolveSynapseSettings, synapseFiles, type SynapseSettings } from "../../src/model/synapse";
import { firewallFragmentPath } from "../../src/provision/host";
import { certificateScript, proxyServerScript, servedCertificate } from "../../src/provision/proxy";
import { rtcFirewallOwner, rtcRemovalScript, rtcSecretScript, rtcServerScript, rtcSynapseConfigScript, rtcSynapseRemovalScript } from "../../src/provision/rtc";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import { WRITTEN_DIR } from "../../src/render/drift";
import type { NginxSite } from "../../src/render/proxy";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { freePort } from "../support/integration/net";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { lookupUser, makeTempDir, registerCleanup, run } from "../support/integration/processes";
import { ProxySandbox } from "../support/integration/proxySandbox";
import { addClientNamespace } from "../support/integration/remotePeer";
import {
    joinCall,
    jwtClaims,
    type MatrixRtcBinaries,
    matrixRtcBinaries,
    rtcClient,
    type RtcReleaseServer,
    serveRtcReleases,
} from "../support/integration/rtcClient";
import type { RealService } from "../support/integration/serviceSandbox";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const NS = `pm-rtc-${process.pid}`;
const HOST_IF = `pmrt${process.pid % 100000}`;
const HOST_SIDE = "10.231.10.2";
const NS_SIDE = "10.231.10.1";
/** The SFU's public address (TEST-NET-3: routed nowhere), on the namespace's veth. */
const PUBLIC = "203.0.113.7";
const SERVER_NAME = "pm-rtc.example";
const DOMAIN = "matrix.pm-rtc.example";
/** Another homeserver (not in fullAccessHomeservers): its federation listener on HOST_SIDE:8448 with a certificate of its own CA. */
const OTHER = "pm-rtc-other.example";
/** MatrixRTC's own domain, when it has one (the test before the removal moves it there). */
const RTC_DOMAIN = "rtc.pm-rtc.example";
/** LiveKit's TURN name (TURN over TLS on 443, routed by SNI). */
const TURN_DOMAIN = "turn.pm-rtc.example";
const COMPONENT = 'RtcServer "test"';
const PROXY = 'ReverseProxy "test"';
const USERS = ["livekit", "lk-jwt-service"];
const random = () => crypto.randomBytes(24).toString("hex");

interface Reply {
    status: number;
    body: string;
}

interface OpenIdToken {
    access_token: string;
    token_type: string;
    matrix_server_name: string;
    expires_in: number;
}

/**
 * Bash that starts a unit from its rendered file as systemd would: ExecStart
 * as User=, with EnvironmentFile= loaded, no capabilities, no new
 * privileges; in the background, its pid in `pidFile`. With `trace`, under
 * `strace -f` writing there (the pid is then strace's).
 */
function launchUnit(unit: string, log: string, pidFile: string, trace?: string): string {
    return String.raw`
    local u=/etc/systemd/system/${unit} cmd user envfile
    [ -e "$u" ] || { echo "no $u" >&2; return 1; }
    cmd=$(grep '^ExecStart=.' "$u" | tail -n 1); cmd=${"${cmd#ExecStart=}"}
    user=$(grep '^User=.' "$u" | tail -n 1); user=${"${user#User=}"}
    envfile=$(grep '^EnvironmentFile=.' "$u" | tail -n 1); envfile=${"${envfile#EnvironmentFile=}"}
    (
        if [ -n "$envfile" ]; then set -a; . "$envfile"; set +a; fi
        exec setsid ${trace ? `strace -f -qq -o ${trace} ` : ""}setpriv --no-new-privs --bounding-set -all --inh-caps -all --reuid "$user" --regid "$user" --init-groups -- $cmd
    ) </dev/null >>${log} 2>&1 &
    echo $! >${pidFile}`;
}

/** A unit the stand-in runs for real from its rendered file (`launchUnit`); its pid file and output in `dir`. */
function renderedUnit(unit: string, name: string, dir: string): RealService {
    const pidFile = path.join(dir, `${name}.pid`);
    const log = path.join(dir, `${name}.log`);
    return {
        unit,
        name,
        pidFile,
        start: `
    ${name}_pid >/dev/null && return 0${launchUnit(unit, log, pidFile)}`,
        stop: String.raw`
    local p; p=$(${name}_pid) || return 0
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p"
    return 0`,
        reload: "    return 0",
    };
}

/**
 * A homeserver elsewhere, as lk-jwt-service meets one: Synapse with its own
 * TLS federation listener on HOST_SIDE:8448 (a certificate from a CA of
 * this test, which the namespace's trust store holds), no well-known, no
 * DNS: what's left is the name's port 8448. Configured by hand: it is not
 * a deployment of this library. A plain listener serves the test's own
 * client calls. Returns its CA and client base URL.
 */
async function startOtherHomeserver(venv: string, sharedSecret: string): Promise<{ ca: string; baseUrl: string; synapse: SynapseProcess }> {
    const dir = makeTempDir("rtc-other-synapse");
    const o = (...a: string[]) => run("openssl", a, { cwd: dir });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    await o("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=other test CA", "-days", "2");
    await o("req", ...ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", `/CN=${OTHER}`);
    fs.writeFileSync(path.join(dir, "san.ext"), `subjectAltName=DNS:${OTHER}\n`);
    await o("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tls.crt", "-days", "2", "-extfile", "san.ext");
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    fs.writeFileSync(path.join(dir, "signing.key"), key.fileLine);
    const clientPort = await freePort();
    const config = {
        server_name: OTHER,
        pid_file: path.join(dir, "homeserver.pid"),
        listeners: [
            { port: 8448, bind_addresses: [HOST_SIDE], type: "http", tls: true, resources: [{ names: ["client", "federation"] }] },
            { port: clientPort, bind_addresses: [HOST_SIDE], type: "http", resources: [{ names: ["client"] }] },
        ],
        tls_certificate_path: path.join(dir, "tls.crt"),
        tls_private_key_path: path.join(dir, "tls.key"),
        database: { name: "sqlite3", args: { database: path.join(dir, "homeserver.db") } },
        media_store_path: path.join(dir, "media"),
        signing_key_path: path.join(dir, "signing.key"),
        registration_shared_secret: sharedSecret,
        macaroon_secret_key: random(),
        form_secret: random(),
        report_stats: false,
        trusted_key_servers: [],
        suppress_key_server_warning: true,
    };
    const file = path.join(dir, "homeserver.yaml");
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    const baseUrl = `http://${HOST_SIDE}:${clientPort}`;
    const synapse = await startSynapse({ venv, configPaths: [file], healthUrl: `${baseUrl}/health`, cwd: dir, name: "other-synapse" });
    return { ca: fs.readFileSync(path.join(dir, "ca.crt"), "utf8"), baseUrl, synapse };
}

describe("MatrixRTC: a call through livekit-server and lk-jwt-service behind nginx, with Synapse's OpenID tokens", function () {
    let sandbox: ProxySandbox;
    let pebble: PebbleServer;
    let synapse: SynapseProcess | undefined;
    let other: { ca: string; baseUrl: string; synapse: SynapseProcess } | undefined;
    let settings: SynapseSettings;
    let rtc: RtcSettings;
    let rtcOptions: RtcOptions;
    let proxy: ReverseProxySettings;
    let site: NginxSite;
    let issuingRoot: string;
    let releaseServer: RtcReleaseServer;
    let downloads: readonly string[] = [];
    const apiKey = `pmkey${crypto.randomBytes(6).toString("hex")}`;
    const apiSecret = crypto.randomBytes(32).toString("base64url");
    const registrationSharedSecret = random();
    let synapseUrl: string;
    let alice: { user_id: string; access_token: string };
    let bob: { user_id: string; access_token: string };
    const inNs = ["ip", "netns", "exec", NS];
    /** Where the stand-in keeps the MatrixRTC units' pid files and output. */
    let units: string;
    let bins: MatrixRtcBinaries;

    /** HTTPS to nginx in the namespace (its veth address) for DOMAIN, trusting Pebble's root alone. */
    function request(urlPath: string, opts: { method?: string; body?: unknown; token?: string; port?: number; name?: string } = {}): Promise<Reply> {
        const name = opts.name ?? DOMAIN;
        const headers: http.OutgoingHttpHeaders = { host: name };
        if (opts.body !== undefined) headers["content-type"] = "application/json";
        if (opts.token) headers.authorization = `Bearer ${opts.token}`;
        return new Promise((resolve, reject) => {
            const req = https.request(
                {
                    host: NS_SIDE,
                    port: opts.port ?? 443,
                    path: urlPath,
                    method: opts.method ?? "GET",
                    headers,
                    servername: name,
                    ca: [issuingRoot],
                    agent: false,
                    timeout: 30_000,
                },
                (res) => {
                    let body = "";
                    res.setEncoding("utf8");
                    res.on("data", (d: string) => (body += d));
                    res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
                    res.on("error", reject);
                },
            );
            req.on("timeout", () => req.destroy(new Error(`https://${name}${urlPath}: timed out`)));
            req.on("error", reject);
            req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
        });
    }

    async function openIdToken(user: { user_id: string; access_token: string }): Promise<OpenIdToken> {
        const r = await request(`/_matrix/client/v3/user/${encodeURIComponent(user.user_id)}/openid/request_token`, {
            method: "POST",
            body: {},
            token: user.access_token,
        });
        assert.equal(r.status, 200, r.body);
        return JSON.parse(r.body) as OpenIdToken;
    }

    /** The authorization service's `/get_token` (MSC4195), through nginx. */
    function getToken(roomId: string, openid: OpenIdToken, userId: string, deviceId: string, name = DOMAIN): Promise<Reply> {
        return request("/livekit/jwt/get_token", {
            name,
            method: "POST",
            body: {
                room_id: roomId,
                slot_id: "m.call#ROOM",
                openid_token: openid,
                member: { id: `member-${deviceId}`, claimed_user_id: userId, claimed_device_id: deviceId },
            },
        });
    }

    const clientEnv = () => ({ SSL_CERT_FILE: pebble.issuingRootFile });

    /** The proxy's settings for this homeserver with MatrixRTC served as `rtcServed` says (its domain, its TURN name). */
    function proxyFor(rtcServed: { domain: string; ownDomain: boolean; turn?: { domain: string } }): ReverseProxySettings {
        return resolveReverseProxySettings(
            PROXY,
            {
                acme: { email: `admin@${SERVER_NAME}`, directoryUrl: pebble.directoryUrl, caBundle: fs.readFileSync(pebble.apiCaFile, "utf8") },
                serverNameWellKnown: true,
            },
            settings,
            undefined,
            rtcServed,
        );
    }

    function unitLog(name: string): string {
        const f = path.join(units, `${name}.log`);
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").slice(-30).join("\n") : "(no log)";
    }

    /** The pid the stand-in recorded for a unit it runs, while that process lives. */
    function unitPid(name: string): number | undefined {
        const f = path.join(units, `${name}.pid`);
        if (!fs.existsSync(f)) return undefined;
        const pid = Number(fs.readFileSync(f, "utf8").trim());
        try {
            process.kill(pid, 0);
            return pid;
        } catch {
            return undefined;
        }
    }

    before(async function () {
        this.timeout(30 * 60_000);
        const t0 = Date.now();
        // The builds (cached on content; minutes when cold) and Synapse's virtualenv.
        const [built, , venv] = await Promise.all([matrixRtcBinaries(), rtcClient(), ensureSynapseVenv()]);
        bins = built;
        units = makeTempDir("rtc-units");

        await addClientNamespace(NS, HOST_IF, HOST_SIDE, NS_SIDE);
        await run("ip", ["-n", NS, "addr", "add", `${PUBLIC}/32`, "dev", "v1"]);
        // The namespace's own hosts file and resolver (a DNS server that is not there: SRV lookups fail at once).
        const netnsDir = `/etc/netns/${NS}`;
        const hadNetnsRoot = fs.existsSync("/etc/netns");
        const removeNetnsDir = () => {
            fs.rmSync(netnsDir, { recursive: true, force: true });
            // /etc/netns itself only when this suite made it and nobody else put a namespace's files there since.
            if (!hadNetnsRoot)
                try {
                    fs.rmdirSync("/etc/netns");
                } catch {
                    /* not empty, or gone */
                }
        };
        registerCleanup({ name: netnsDir, run: removeNetnsDir, runSync: removeNetnsDir });
        fs.mkdirSync(netnsDir, { recursive: true });
        fs.writeFileSync(
            path.join(netnsDir, "hosts"),
            `127.0.0.1 localhost\n${NS_SIDE} ${DOMAIN} ${SERVER_NAME} ${RTC_DOMAIN} ${TURN_DOMAIN}\n${HOST_SIDE} ${OTHER}\n`,
        );
        fs.writeFileSync(path.join(netnsDir, "resolv.conf"), "nameserver 127.0.0.1\n");

        // The system users the install step makes go again with the suite (this machine keeps none of them).
        const created = USERS.filter((u) => lookupUser(u) === undefined);
        const removeUsers = () => {
            for (const u of created) spawnSync("userdel", [u], { stdio: "ignore" });
        };
        registerCleanup({ name: `users ${created.join(", ")}`, run: removeUsers, runSync: removeUsers });

        // HTTP-01 validation dials port 80 of the names: nginx in the namespace, through the veth.
        pebble = await startPebble({ httpPort: 80, listenAddress: HOST_SIDE });
        for (const name of [DOMAIN, SERVER_NAME, RTC_DOMAIN, TURN_DOMAIN]) await pebble.addARecord(name, NS_SIDE);
        issuingRoot = fs.readFileSync(pebble.issuingRootFile, "utf8");

        // The "release": livekit-server as a tarball (as LiveKit publishes it), lk-jwt-service as the program itself.
        releaseServer = await serveRtcReleases(bins, HOST_SIDE);
        downloads = releaseServer.downloads;

        const dir = makeTempDir("rtc-synapse");
        const port = await freePort();
        synapseUrl = `http://${HOST_SIDE}:${port}`;
        settings = resolveSynapseSettings("test", {
            serverName: SERVER_NAME,
            publicBaseUrl: `https://${DOMAIN}/`,
            installMethod: "pip",
            httpPort: port,
            httpBindAddresses: [HOST_SIDE],
            metrics: { enabled: false },
            sqlite: {},
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: venv, user: "root" },
        });
        rtcOptions = {
            ...releaseServer.releases(`http://${HOST_SIDE}:${releaseServer.port}`),
            publicAddress: PUBLIC,
        };
        rtc = resolveRtcSettings(COMPONENT, rtcOptions, { serverName: SERVER_NAME, publicBaseUrl: settings.publicBaseUrl });
        proxy = proxyFor({ domain: rtc.domain, ownDomain: rtc.ownDomain });
        site = { proxy, publicBaseUrl: settings.publicBaseUrl, main: synapseListener(settings), workers: [], rtc: rtcSite(rtc), tls: servedCertificate() };

        sandbox = new ProxySandbox(
            "rtc",
            [
                { real: "/opt/pulumi-matrix", name: "opt-pulumi-matrix" },
                // The system trust store of the namespace's programs (lk-jwt-service's Go): Pebble's root, as Let's Encrypt's is on a VM.
                { real: "/etc/ssl/certs/ca-certificates.crt", name: "ca-certificates.crt", file: true },
            ],
            {
                netns: NS,
                services: [renderedUnit("livekit-server.service", "livekit", units), renderedUnit("lk-jwt-service.service", "lkjwt", units)],
                journal: `tail -n 20 ${units}/*.log`,
            },
        );
        other = await startOtherHomeserver(venv, registrationSharedSecret);
        fs.writeFileSync(sandbox.hostPath("/etc/ssl/certs/ca-certificates.crt"), issuingRoot.trim() + "\n" + other.ca);
        registerCleanup({
            name: `MatrixRTC services of ${sandbox.dir}`,
            run: async () => {
                await sandbox.run("systemctl stop lk-jwt-service.service livekit-server.service\n");
            },
            // On an abrupt exit: SIGKILL to whatever of the two still runs.
            runSync: () => {
                for (const name of ["lkjwt", "livekit"]) {
                    const pid = unitPid(name);
                    if (pid !== undefined) process.kill(pid, "SIGKILL");
                }
            },
        });

        // The scripts in the order the components run them.
        const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret,
                signingKey: key.fileLine,
                files: [],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, {}, "test"));
        await sandbox.run(rtcSynapseConfigScript(settings, rtc));
        const f = synapseFiles(settings.paths);
        synapse = await startSynapse({ venv, configPaths: [f.homeserverYaml, f.confD + "/"], healthUrl: `${synapseUrl}/health`, cwd: settings.paths.dataDir });
        await sandbox.run(proxyServerScript(site, PROXY));
        await sandbox.run(certificateScript(proxy));
        await sandbox.run(rtcServerScript(rtc, "test"));
        await sandbox.run(rtcSecretScript(rtc, apiKey, apiSecret));

        alice = await registerWithSharedSecret(synapseUrl, registrationSharedSecret, "alice", random(), false);
        bob = await registerWithSharedSecret(synapseUrl, registrationSharedSecret, "bob", random(), false);
        process.stderr.write(`      (set-up: ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    });

    after(async function () {
        await other?.synapse.stop();
        await synapse?.stop();
        await sandbox?.stopNginx();
        await pebble?.stop();
    });

    it("the client well-known advertises the authorization service as the MatrixRTC focus (org.matrix.msc4143.rtc_foci)", async function () {
        const r = await request("/.well-known/matrix/client");
        assert.equal(r.status, 200, r.body);
        const wk = JSON.parse(r.body) as Record<string, unknown>;
        assert.deepEqual(wk["org.matrix.msc4143.rtc_foci"], [{ type: "livekit", livekit_service_url: `https://${DOMAIN}/livekit/jwt` }]);
        assert.deepEqual(wk["m.homeserver"], { base_url: `https://${DOMAIN}` });
    });

    it("Synapse's RTC transports endpoint (MSC4143) answers with the same service, to a logged-in user only", async function () {
        const p = "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports";
        const r = await request(p, { token: alice.access_token });
        assert.equal(r.status, 200, r.body);
        assert.deepEqual(JSON.parse(r.body), { rtc_transports: [{ type: "livekit", livekit_service_url: `https://${DOMAIN}/livekit/jwt` }] });
        assert.equal((await request(p)).status, 401);
    });

    it("installed both releases from their download URLs, verified; each runs as its own user, the API secret only in root's key files", function () {
        assert.deepEqual([...downloads].sort(), ["/livekit_1.13.5_linux_amd64.tar.gz", "/lk-jwt-service_linux_amd64"]);
        const digest = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
        assert.equal(digest(sandbox.hostPath(rtc.livekit.path)), digest(bins.livekitServer));
        assert.equal(digest(sandbox.hostPath(rtc.jwtService.path)), digest(bins.lkJwtService));
        for (const [name, user] of [
            ["livekit", "livekit"],
            ["lkjwt", "lk-jwt-service"],
        ] as const) {
            const pid = unitPid(name);
            assert.ok(pid, `${name} does not run:\n${unitLog(name)}`);
            const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
            assert.equal(Number(uid), lookupUser(user)!.uid);
            const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
            assert.ok(!cmdline.includes(apiSecret), `${name}'s command line holds the secret`);
            assert.ok(!fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes(apiSecret), `${name}'s environment holds the secret`);
            assert.ok(!unitLog(name).includes(apiSecret), `${name} logged the secret`);
        }
        for (const p of [RTC_FILES.livekitConfig, RTC_FILES.jwtEnv, RTC_FILES.livekitUnit, RTC_FILES.jwtUnit])
            assert.ok(!fs.readFileSync(sandbox.hostPath(p), "utf8").includes(apiSecret), `${p} holds the secret`);
        for (const p of [RTC_FILES.livekitKeys, RTC_FILES.jwtKey]) {
            const st = fs.statSync(sandbox.hostPath(p));
            assert.equal(st.uid, 0, p);
            assert.equal(st.mode & 0o007, 0, `${p} is readable by others`);
            assert.ok(fs.readFileSync(sandbox.hostPath(p), "utf8").includes(apiSecret), p);
        }
    });

    /** The Matrix room the call is in (alice makes it in the call's test; the refusals ask for it too). */
    let roomId = "!call:pm-rtc.example";

    it("two users exchange Synapse's OpenID tokens at the authorization service for LiveKit tokens to the same call, and media flows: audio and video from one reach the other", async function () {
        this.timeout(120_000);
        const created = await request("/_matrix/client/v3/createRoom", {
            method: "POST",
            body: { preset: "private_chat", invite: [bob.user_id] },
            token: alice.access_token,
        });
        assert.equal(created.status, 200, created.body);
        roomId = (JSON.parse(created.body) as { room_id: string }).room_id;
        const aliceOpenId = await openIdToken(alice);
        assert.equal(aliceOpenId.matrix_server_name, SERVER_NAME);
        const a = await getToken(roomId, aliceOpenId, alice.user_id, "ALICEDEVICE");
        assert.equal(a.status, 200, `${a.body}\n${unitLog("lkjwt")}`);
        const aliceGrant = JSON.parse(a.body) as { url: string; jwt: string };
        assert.equal(aliceGrant.url, `wss://${DOMAIN}/livekit/sfu`);
        // Bob through the legacy endpoint (/sfu/get, still what older Element Call sends): the same LiveKit room.
        const b = await request("/livekit/jwt/sfu/get", {
            method: "POST",
            body: { room: roomId, openid_token: await openIdToken(bob), device_id: "BOBDEVICE" },
        });
        assert.equal(b.status, 200, `${b.body}\n${unitLog("lkjwt")}`);
        const bobGrant = JSON.parse(b.body) as { url: string; jwt: string };
        const claims = [jwtClaims(aliceGrant.jwt), jwtClaims(bobGrant.jwt)];
        const video = claims.map((c) => c.video as Record<string, unknown>);
        assert.equal(video[0].room, video[1].room);
        assert.equal(claims[0].iss, apiKey);
        // No token may create rooms: lk-jwt-service created this one for its full-access user (auto_create is off).
        assert.ok(!video[0].roomCreate && !video[1].roomCreate);
        const aliceIdentity = claims[0].sub as string;

        const [pub, sub] = await Promise.all([
            joinCall({ mode: "publish", url: aliceGrant.url, token: aliceGrant.jwt, seconds: 8, prefix: inNs, env: clientEnv() }),
            joinCall({
                mode: "subscribe",
                url: bobGrant.url,
                token: bobGrant.jwt,
                seconds: 30,
                until: { audio: 50, video: 50 },
                prefix: inNs,
                env: clientEnv(),
            }),
        ]);
        assert.equal(pub.run.code, 0, `${pub.run.stdout}\n${pub.run.stderr.slice(-3000)}\n${unitLog("livekit")}`);
        assert.equal(sub.run.code, 0, `${sub.run.stdout}\n${sub.run.stderr.slice(-3000)}\n${unitLog("livekit")}`);
        assert.deepEqual(pub.report.published, ["audio/opus", "video/VP8"]);
        assert.equal(sub.report.room, video[0].room);
        const got = sub.report.participants[aliceIdentity];
        assert.ok(got, `nothing from alice (${aliceIdentity}): ${JSON.stringify(sub.report)}`);
        assert.ok(got.audio >= 50 && got.video >= 50, `too few packets from alice: ${JSON.stringify(got)}\n${unitLog("livekit")}`);
        assert.deepEqual(got.codecs, ["audio/opus", "video/VP8"]);
        // Both went through nginx: the authorization service's and the SFU's routes are in its access log.
        const log = sandbox.accessLog().join("\n");
        assert.match(log, /POST \/livekit\/jwt\/get_token/);
        assert.match(log, /GET \/livekit\/sfu\/rtc/);
    });

    it("refuses a forged OpenID token, and a real one presented for another user", async function () {
        const forged: OpenIdToken = {
            access_token: crypto.randomBytes(18).toString("base64url"),
            token_type: "Bearer",
            matrix_server_name: SERVER_NAME,
            expires_in: 3600,
        };
        const r = await getToken(roomId, forged, alice.user_id, "ALICEDEVICE");
        assert.equal(r.status, 401, r.body);
        assert.equal((JSON.parse(r.body) as { errcode: string }).errcode, "M_UNAUTHORIZED");
        assert.ok(!r.body.includes("jwt"));
        const other = await getToken(roomId, await openIdToken(bob), alice.user_id, "ALICEDEVICE");
        assert.equal(other.status, 401, other.body);
    });

    it("a user of a server outside fullAccessHomeservers may join a call that exists, but cannot create one", async function () {
        this.timeout(120_000);
        const carol = await registerWithSharedSecret(other!.baseUrl, registrationSharedSecret, "carol", random(), false);
        assert.equal(carol.user_id, `@carol:${OTHER}`);
        const r = await fetch(`${other!.baseUrl}/_matrix/client/v3/user/${encodeURIComponent(carol.user_id)}/openid/request_token`, {
            method: "POST",
            headers: { authorization: `Bearer ${carol.access_token}`, "content-type": "application/json" },
            body: "{}",
        });
        assert.equal(r.status, 200);
        const carolOpenId = (await r.json()) as OpenIdToken;
        assert.equal(carolOpenId.matrix_server_name, OTHER);

        // A call nobody of this homeserver started: the authorization service checks carol at her server and hands her a token, but creates no room.
        const lone = await getToken("!lone:pm-rtc-other.example", carolOpenId, carol.user_id, "CAROLDEVICE");
        assert.equal(lone.status, 200, `${lone.body}\n${unitLog("lkjwt")}`);
        assert.match(unitLog("lkjwt"), new RegExp(`Got Matrix user info for @carol:${OTHER.replace(/\./g, "\\.")} \\(restricted access\\)`));
        const loneGrant = JSON.parse(lone.body) as { url: string; jwt: string };
        assert.ok(!(jwtClaims(loneGrant.jwt).video as Record<string, unknown>).roomCreate);
        const refused = await joinCall({ mode: "subscribe", url: loneGrant.url, token: loneGrant.jwt, seconds: 3, prefix: inNs, env: clientEnv() });
        assert.equal(refused.run.code, 2, JSON.stringify(refused.report));
        assert.match(refused.report.error ?? "", /room|not found|does not exist/i);

        // A call alice (full access) asked for: the room exists, and carol joins it.
        const meeting = `!meeting:${SERVER_NAME}`;
        const a = await getToken(meeting, await openIdToken(alice), alice.user_id, "ALICEDEVICE");
        assert.equal(a.status, 200, a.body);
        const c = await getToken(meeting, carolOpenId, carol.user_id, "CAROLDEVICE");
        assert.equal(c.status, 200, c.body);
        const grant = JSON.parse(c.body) as { url: string; jwt: string };
        const joined = await joinCall({ mode: "subscribe", url: grant.url, token: grant.jwt, seconds: 2, prefix: inNs, env: clientEnv() });
        assert.equal(joined.run.code, 0, `${JSON.stringify(joined.report)}\n${joined.run.stderr.slice(-2000)}`);
        assert.equal(joined.report.room, (jwtClaims(grant.jwt).video as Record<string, unknown>).room);
    });

    it("a second run of every step downloads nothing, changes nothing and restarts nothing; a wrong SHA-256, or a media address the host lacks, is refused and changes nothing", async function () {
        const pids = [unitPid("livekit"), unitPid("lkjwt"), sandbox.nginxPid()];
        const downloaded = downloads.length;
        sandbox.reset();
        const out = [
            await sandbox.run(rtcServerScript(rtc, "test")),
            await sandbox.run(rtcSecretScript(rtc, apiKey, apiSecret)),
            await sandbox.run(rtcSynapseConfigScript(settings, rtc)),
            await sandbox.run(proxyServerScript(site, PROXY)),
        ].join("\n");
        assert.deepEqual(downloads.slice(downloaded), []);
        assert.doesNotMatch(out, /updated |removed |restarting |starting |installed |downloading /);
        assert.deepEqual(
            sandbox.calls().filter((c) => /^(start|stop|restart|reload) /.test(c)),
            [],
        );
        assert.deepEqual([unitPid("livekit"), unitPid("lkjwt"), sandbox.nginxPid()], pids);

        const wrong = resolveRtcSettings(
            COMPONENT,
            { ...rtcOptions, livekit: { ...rtcOptions.livekit, sha256: "0".repeat(64) } },
            { serverName: SERVER_NAME, publicBaseUrl: settings.publicBaseUrl },
        );
        const before = fs.readFileSync(sandbox.hostPath(rtc.livekit.path));
        const r = await sandbox.tryRun(rtcServerScript(wrong, "test"));
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /checksum mismatch/);
        assert.deepEqual(fs.readFileSync(sandbox.hostPath(rtc.livekit.path)), before);
        assert.equal(unitPid("livekit"), pids[0]);

        // A media address the host does not have (198.51.100.77 here: behind NAT, not the private address) is refused
        // before anything changes; the message names both settings and lists the host's addresses.
        const config = fs.readFileSync(sandbox.hostPath(RTC_FILES.livekitConfig), "utf8");
        const elsewhere = resolveRtcSettings(
            COMPONENT,
            { ...rtcOptions, localAddress: "198.51.100.77" },
            { serverName: SERVER_NAME, publicBaseUrl: settings.publicBaseUrl },
        );
        const r2 = await sandbox.tryRun(rtcServerScript(elsewhere, "test"));
        assert.notEqual(r2.code, 0);
        assert.match(
            r2.stderr,
            /no network interface with the address 198\.51\.100\.77 \(localAddress, else publicAddress: the stack keys rtcLocalAddress and rtcPublicAddress\)/,
        );
        assert.match(r2.stderr, new RegExp(`This host's addresses: .*${PUBLIC.replace(/\./g, "\\.")}.*; nothing was changed`));
        assert.equal(fs.readFileSync(sandbox.hostPath(RTC_FILES.livekitConfig), "utf8"), config);
        assert.equal(unitPid("livekit"), pids[0]);
    });

    it("every system call livekit-server and lk-jwt-service make (start, tokens, a call with media, stop) is one their units' SystemCallFilter allows", async function () {
        this.timeout(180_000);
        // systemd's groups as this systemd expands them.
        const groups = new Map<string, string[]>();
        let current: string[] | undefined;
        for (const line of (await run("systemd-analyze", ["syscall-filter", "--no-pager"])).stdout.split("\n")) {
            if (/^@\S+$/.test(line)) groups.set(line, (current = []));
            else if (current && /^\s+[@a-z0-9_-]+$/.test(line)) current.push(line.trim());
        }
        const expand = (name: string, seen = new Set<string>()): string[] =>
            name.startsWith("@") ? (seen.has(name) ? [] : (seen.add(name), (groups.get(name) ?? []).flatMap((n) => expand(n, seen)))) : [name];
        /** The calls a unit's SystemCallFilter= lines allow (allow-lists joined, then every ~deny-list taken away). */
        const allowedBy = (unitPath: string): Set<string> => {
            const lines = fs
                .readFileSync(sandbox.hostPath(unitPath), "utf8")
                .split("\n")
                .filter((l) => l.startsWith("SystemCallFilter="))
                .map((l) => l.slice("SystemCallFilter=".length));
            const allow = lines.filter((l) => !l.startsWith("~")).flatMap((l) => l.split(/\s+/).flatMap((n) => expand(n)));
            const deny = new Set(
                lines
                    .filter((l) => l.startsWith("~"))
                    .flatMap((l) =>
                        l
                            .slice(1)
                            .split(/\s+/)
                            .flatMap((n) => expand(n)),
                    ),
            );
            assert.ok(allow.length > 0 && deny.size > 0, `${unitPath} has no SystemCallFilter= allow and deny lines`);
            return new Set(allow.filter((n) => !deny.has(n)));
        };
        const programs = [
            { name: "livekit", unit: "livekit-server.service", file: RTC_FILES.livekitUnit, binary: rtc.livekit.path },
            { name: "lkjwt", unit: "lk-jwt-service.service", file: RTC_FILES.jwtUnit, binary: rtc.jwtService.path },
        ];
        const trace = (name: string) => path.join(units, `${name}.strace`);
        const tracer = (name: string) => path.join(units, `${name}.strace.pid`);
        // Ends the traced programs (TERM, as systemd stops them); strace ends with them.
        const stopTraced = programs
            .map(
                (p) => `s=$(cat ${tracer(p.name)} 2>/dev/null) && c=$(ps -o pid= --ppid "$s" | tr -d ' ' | head -n 1) && [ -n "$c" ] && kill -TERM "$c"
for _ in $(seq 100); do [ -n "$s" ] && kill -0 "$s" 2>/dev/null || break; sleep 0.1; done
s=""`,
            )
            .join("\n");

        await sandbox.run("systemctl stop lk-jwt-service.service livekit-server.service\n");
        try {
            await sandbox.run(
                [
                    ...programs.map((p) => `pm_start_${p.name}() {${launchUnit(p.unit, path.join(units, `${p.name}.log`), tracer(p.name), trace(p.name))}\n}`),
                    ...programs.map((p) => `pm_start_${p.name}`),
                    `for _ in $(seq 300); do curl -fsS -o /dev/null http://127.0.0.1:${rtc.port}/ && curl -fsS -o /dev/null http://127.0.0.1:${rtc.jwtPort}/healthz && exit 0; sleep 0.2; done`,
                    'echo "livekit-server or lk-jwt-service did not answer under strace" >&2',
                    "exit 1",
                    "",
                ].join("\n"),
            );
            // Tokens for a new call (the room created through the SFU's API), then media both ways through the SFU.
            const room = `!traced:${SERVER_NAME}`;
            const a = await getToken(room, await openIdToken(alice), alice.user_id, "ALICEDEVICE");
            assert.equal(a.status, 200, a.body);
            const b = await getToken(room, await openIdToken(bob), bob.user_id, "BOBDEVICE");
            assert.equal(b.status, 200, b.body);
            const [ag, bg] = [JSON.parse(a.body), JSON.parse(b.body)] as { url: string; jwt: string }[];
            const [, sub] = await Promise.all([
                joinCall({ mode: "publish", url: ag.url, token: ag.jwt, seconds: 5, prefix: inNs, env: clientEnv() }),
                joinCall({ mode: "subscribe", url: bg.url, token: bg.jwt, seconds: 20, until: { audio: 20, video: 20 }, prefix: inNs, env: clientEnv() }),
            ]);
            const got = Object.values(sub.report.participants)[0];
            assert.ok(got && got.audio >= 20 && got.video >= 20, JSON.stringify(sub.report));
        } finally {
            await sandbox.run(`${stopTraced}\nexit 0\n`);
            // Back as the units run them, for the removal below.
            await sandbox.run("systemctl start livekit-server.service lk-jwt-service.service\n");
        }
        for (const p of programs) {
            const lines = fs.readFileSync(trace(p.name), "utf8").split("\n");
            fs.rmSync(trace(p.name));
            // From the program's own execve on (systemd applies the filter just before it).
            const start = lines.findIndex((l) => l.includes(`execve("${p.binary}"`) && / = 0$/.test(l));
            assert.ok(start >= 0, `no execve of ${p.binary} in the trace`);
            const calls = lines.slice(start + 1).flatMap((l) => {
                const m = /^\d+\s+([a-z0-9_]+)\(.*\) += (.*)$/.exec(l) ?? /^\d+\s+<\.\.\. ([a-z0-9_]+) resumed>.*\) += (.*)$/.exec(l);
                return m ? [{ name: m[1], result: m[2] }] : [];
            });
            const used = new Set(calls.map((x) => x.name));
            assert.ok(used.has("accept4") || used.has("accept"), `${p.name}: ${[...used].join(" ")}`);
            const allowed = allowedBy(p.file);
            // Outside the filter a call fails with EPERM (SystemCallErrorNumber=EPERM): harmless only where the kernel refused it so already.
            const changed = [...used].filter((n) => !allowed.has(n) && calls.some((x) => x.name === n && !/^-1 EPERM\b/.test(x.result))).sort();
            assert.deepEqual(changed, [], `${p.name} makes calls outside its unit's filter that succeed today: ${changed.join(" ")}`);
        }
    });

    it("LiveKit's TURN over TLS on 443: nginx routes the TURN name by SNI to LiveKit's TURN server and clients allowed only relays get their media through it; the web keeps 443 and the client's address; taken away, 443 is the web's alone", async function () {
        this.timeout(240_000);
        const turnRtc = resolveRtcSettings(
            COMPONENT,
            { ...rtcOptions, turn: { domain: TURN_DOMAIN } },
            { serverName: SERVER_NAME, publicBaseUrl: settings.publicBaseUrl },
        );
        const turnProxy = proxyFor(rtcSite(turnRtc));
        assert.ok(turnProxy.certificateNames.includes(TURN_DOMAIN));
        const turnSite: NginxSite = { ...site, proxy: turnProxy, rtc: rtcSite(turnRtc) };
        sandbox.reset();
        await sandbox.run(proxyServerScript(turnSite, PROXY));
        await sandbox.run(certificateScript(turnProxy));
        await sandbox.run(rtcServerScript(turnRtc, "test"));
        assert.ok(sandbox.calls().includes("restart livekit-server.service"), sandbox.calls().join("\n"));
        assert.ok(fs.existsSync(sandbox.hostPath(PROXY_FILES.stream)), "no stream front");

        // The web through the front: answered, and logged with the client's address (from the PROXY header), not the socket's.
        const versions = await request("/_matrix/client/versions");
        assert.equal(versions.status, 200, versions.body);
        assert.match(sandbox.accessLog().slice(-1)[0] ?? "", new RegExp(`^${HOST_SIDE.replace(/\./g, "\\.")} `));
        // The TURN name on 443: nginx's TLS with the certificate that names it.
        const names = await new Promise<string>((resolve, reject) => {
            const socket = tls.connect({ host: NS_SIDE, port: 443, servername: TURN_DOMAIN, ca: [issuingRoot] }, () => {
                resolve(socket.getPeerCertificate().subjectaltname ?? "");
                socket.end();
            });
            socket.on("error", reject);
        });
        assert.match(names, new RegExp(`DNS:${TURN_DOMAIN.replace(/\./g, "\\.")}`));

        // A call whose participants may use relays only: their media can reach the SFU through LiveKit's TURN alone.
        const room = `!turn:${SERVER_NAME}`;
        const a = await getToken(room, await openIdToken(alice), alice.user_id, "ALICEDEVICE");
        assert.equal(a.status, 200, `${a.body}\n${unitLog("lkjwt")}`);
        const b = await getToken(room, await openIdToken(bob), bob.user_id, "BOBDEVICE");
        assert.equal(b.status, 200, b.body);
        const [ag, bg] = [JSON.parse(a.body), JSON.parse(b.body)] as { url: string; jwt: string }[];
        const [pub, sub] = await Promise.all([
            joinCall({ mode: "publish", url: ag.url, token: ag.jwt, seconds: 8, relay: true, prefix: inNs, env: clientEnv() }),
            joinCall({
                mode: "subscribe",
                url: bg.url,
                token: bg.jwt,
                seconds: 40,
                until: { audio: 30, video: 30 },
                relay: true,
                prefix: inNs,
                env: clientEnv(),
            }),
        ]);
        assert.equal(pub.run.code, 0, `${pub.run.stdout}\n${pub.run.stderr.slice(-3000)}\n${unitLog("livekit")}`);
        const got = Object.values(sub.report.participants)[0];
        assert.ok(got && got.audio >= 30 && got.video >= 30, `${JSON.stringify(sub.report)}\n${sub.run.stderr.slice(-3000)}\n${unitLog("livekit")}`);

        // Taken away: the front goes with the file set, nginx listens on 443 itself again, LiveKit runs without TURN.
        sandbox.reset();
        await sandbox.run(proxyServerScript(site, PROXY));
        await sandbox.run(rtcServerScript(rtc, "test"));
        assert.ok(!fs.existsSync(sandbox.hostPath(PROXY_FILES.stream)), "the stream front is still there");
        assert.equal((await request("/_matrix/client/versions")).status, 200);
        assert.doesNotMatch(fs.readFileSync(sandbox.hostPath(RTC_FILES.livekitConfig), "utf8"), /^turn:/m);
        // And relay-only clients get no media now (fresh tokens: the restarted SFU forgot the room), while clients that may
        // go direct do: the call above needed the TURN server.
        const again = async () => {
            const room2 = `!noturn${crypto.randomBytes(4).toString("hex")}:${SERVER_NAME}`;
            const grants: { url: string; jwt: string }[] = [];
            for (const [u, device] of [
                [alice, "ALICEDEVICE"],
                [bob, "BOBDEVICE"],
            ] as const) {
                const r = await getToken(room2, await openIdToken(u), u.user_id, device);
                assert.equal(r.status, 200, r.body);
                grants.push(JSON.parse(r.body) as { url: string; jwt: string });
            }
            return grants;
        };
        const [na, nb] = await again();
        const [, none] = await Promise.all([
            joinCall({ mode: "publish", url: na.url, token: na.jwt, seconds: 6, relay: true, prefix: inNs, env: clientEnv() }),
            joinCall({
                mode: "subscribe",
                url: nb.url,
                token: nb.jwt,
                seconds: 10,
                until: { audio: 1, video: 1 },
                relay: true,
                prefix: inNs,
                env: clientEnv(),
            }),
        ]);
        const leaked = Object.values(none.report.participants).find((m) => m.audio > 0 || m.video > 0);
        assert.equal(leaked, undefined, `media reached a relay-only client without TURN: ${JSON.stringify(none.report)}`);
        const [da, db] = await again();
        const [, direct] = await Promise.all([
            joinCall({ mode: "publish", url: da.url, token: da.jwt, seconds: 6, prefix: inNs, env: clientEnv() }),
            joinCall({ mode: "subscribe", url: db.url, token: db.jwt, seconds: 20, until: { audio: 10, video: 10 }, prefix: inNs, env: clientEnv() }),
        ]);
        const m = Object.values(direct.report.participants)[0];
        assert.ok(m && m.audio >= 10 && m.video >= 10, `the same clients, not relay-only, got no media: ${JSON.stringify(direct.report)}`);
    });

    it("on a domain of its own: the certificate gains the name, nginx serves both routes there alone, Synapse and the well-known follow, and a call goes through it", async function () {
        this.timeout(180_000);
        const moved = resolveRtcSettings(COMPONENT, { ...rtcOptions, domain: RTC_DOMAIN }, { serverName: SERVER_NAME, publicBaseUrl: settings.publicBaseUrl });
        assert.ok(moved.ownDomain);
        const movedProxy = proxyFor({ domain: moved.domain, ownDomain: moved.ownDomain });
        assert.ok(movedProxy.certificateNames.includes(RTC_DOMAIN));
        const movedSite: NginxSite = { ...site, proxy: movedProxy, rtc: rtcSite(moved) };
        sandbox.reset();
        await sandbox.run(proxyServerScript(movedSite, PROXY));
        await sandbox.run(certificateScript(movedProxy));
        await sandbox.run(rtcServerScript(moved, "test"));
        await sandbox.run(rtcSynapseConfigScript(settings, moved));
        assert.ok(sandbox.calls().includes("restart matrix-synapse.service"), sandbox.calls().join("\n"));
        await synapse!.restart();
        const serviceUrl = `https://${RTC_DOMAIN}/livekit/jwt`;
        const wk = JSON.parse((await request("/.well-known/matrix/client")).body) as Record<string, unknown>;
        assert.deepEqual(wk["org.matrix.msc4143.rtc_foci"], [{ type: "livekit", livekit_service_url: serviceUrl }]);
        const t = await request("/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", { token: alice.access_token });
        assert.deepEqual(JSON.parse(t.body), { rtc_transports: [{ type: "livekit", livekit_service_url: serviceUrl }] });
        // Only the two routes there; none of them on the homeserver's domain any more.
        assert.equal((await request("/_matrix/client/versions", { name: RTC_DOMAIN })).status, 404);
        assert.notEqual((await request("/livekit/jwt/healthz")).status, 200);
        assert.equal((await request("/livekit/jwt/healthz", { name: RTC_DOMAIN })).status, 200);

        const room = `!moved:${SERVER_NAME}`;
        const a = await getToken(room, await openIdToken(alice), alice.user_id, "ALICEDEVICE", RTC_DOMAIN);
        assert.equal(a.status, 200, `${a.body}\n${unitLog("lkjwt")}`);
        const b = await getToken(room, await openIdToken(bob), bob.user_id, "BOBDEVICE", RTC_DOMAIN);
        assert.equal(b.status, 200, b.body);
        const [ag, bg] = [JSON.parse(a.body), JSON.parse(b.body)] as { url: string; jwt: string }[];
        assert.equal(ag.url, `wss://${RTC_DOMAIN}/livekit/sfu`);
        const [, sub] = await Promise.all([
            joinCall({ mode: "publish", url: ag.url, token: ag.jwt, seconds: 5, prefix: inNs, env: clientEnv() }),
            joinCall({ mode: "subscribe", url: bg.url, token: bg.jwt, seconds: 20, until: { audio: 20, video: 20 }, prefix: inNs, env: clientEnv() }),
        ]);
        const got = Object.values(sub.report.participants)[0];
        assert.ok(got && got.audio >= 20 && got.video >= 20, `${JSON.stringify(sub.report)}\n${sub.run.stderr.slice(-2000)}`);
        // The removal below takes it away from here as well as from the homeserver's domain.
    });

    it("taken away (RtcRemoval's steps, the proxy without it): both programs stop, their units, files, binaries and firewall opening go; Synapse and the well-known stop advertising it; a second run changes nothing", async function () {
        this.timeout(180_000);
        sandbox.reset();
        const synapseOut = await sandbox.run(rtcSynapseRemovalScript(settings));
        assert.match(synapseOut, /removed .*46-rtc\.yaml/);
        assert.ok(sandbox.calls().includes("restart matrix-synapse.service"), sandbox.calls().join("\n"));
        // The restart the step asked for, done to the test's own Synapse.
        await synapse!.restart();
        const transports = await request("/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", { token: alice.access_token });
        assert.notEqual(transports.status, 200, transports.body);

        const withoutRtc: NginxSite = { ...site, rtc: undefined };
        delete withoutRtc.rtc;
        await sandbox.run(proxyServerScript(withoutRtc, PROXY));
        const wk = JSON.parse((await request("/.well-known/matrix/client")).body) as Record<string, unknown>;
        assert.equal(wk["org.matrix.msc4143.rtc_foci"], undefined);

        sandbox.reset();
        const out = await sandbox.run(rtcRemovalScript("test"));
        assert.equal(unitPid("livekit"), undefined, "livekit-server still runs");
        assert.equal(unitPid("lkjwt"), undefined, "lk-jwt-service still runs");
        assert.match(out, /stopped livekit-server\.service/);
        assert.match(out, /stopped lk-jwt-service\.service/);
        for (const p of [RTC_FILES.confDir, RTC_FILES.binDir, RTC_FILES.livekitUnit, RTC_FILES.jwtUnit, firewallFragmentPath(rtcFirewallOwner("test"))])
            assert.ok(!fs.existsSync(sandbox.hostPath(p)), `${p} is still there`);
        const records = path.join(sandbox.hostPath(WRITTEN_DIR), "records");
        for (const p of [RTC_FILES.livekitConfig, RTC_FILES.livekitKeys, RTC_FILES.jwtKey, RTC_FILES.livekitUnit])
            assert.ok(!fs.existsSync(path.join(records, p)), `the drift record still lists ${p}`);
        assert.deepEqual(fs.readdirSync(sandbox.hostPath("/opt/pulumi-matrix")), []);

        sandbox.reset();
        const again = (await sandbox.run(rtcSynapseRemovalScript(settings))) + (await sandbox.run(rtcRemovalScript("test")));
        assert.doesNotMatch(again, /removed |stopped |restarting |reloaded/);
        assert.deepEqual(sandbox.calls(), []);
    });
});
