/**
 * E2E smoke (in CI): the README's quickstart, typed as a user would in a
 * copy of this repository, deploys a fresh Debian VM through the real Pulumi
 * engine; then the homeserver is checked from this machine, a second `up`
 * changes nothing, and a setting change previews as a readable diff and
 * updates exactly the commands that ship it.
 *
 * The certificate comes from Pebble (Let's Encrypt's test CA, Debian's
 * package) on this machine's loopback, which the VM reaches at qemu's host
 * address 10.0.2.2; Pebble validates HTTP-01 by dialling the names (its DNS
 * answers 127.0.0.1) on the port forwarded to the VM's port 80. Clients here
 * reach nginx on the forwarded 443 and 8448 and trust Pebble's root only.
 *
 * Calls (MatrixRTC): livekit-server and lk-jwt-service are installed from
 * release files this machine serves (built from Go, checked by SHA-256 as a
 * user's VM checks GitHub's). A call's media cannot take qemu's forwarded
 * ports (WebRTC's ICE gathers no loopback candidates), so the VM also sits
 * on the harness's private switch with 198.51.100.10 (TEST-NET-2: it exists
 * only on that switch) as its public address, and the call's participants
 * run in a network namespace of this suite on the same switch. (Not
 * TEST-NET-3: this machine's resolver answers 203.0.113.80 for the package
 * registries, which a VM with that network on its second NIC could not reach.)
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";

import { Host } from "../../components/Host";
import { DEFAULT_SYNAPSE_PATHS, synapseFiles } from "../../src/model/synapse";
import { loginWithPassword } from "../support/integration/client";
import { ReleaseServer } from "../support/integration/elementReleases";
import { PebbleServer, startPebble } from "../support/integration/pebble";
import { joinCall, jwtClaims, matrixRtcBinaries, rtcClient, type RtcReleaseServer, serveRtcReleases } from "../support/integration/rtcClient";
import { registerWithSharedSecret } from "../support/integration/synapse";
import { bootVm, createPrivateNetwork, ensureBaseImage, PrivateNetwork, Vm } from "../support/vm";
import { httpsGet, httpsPost, startTimestamps, tunnel } from "../support/vm/deploy";
import { assertNothingChanged, EngineStack, inlineStack, projectCopy, readmeBlock, runShell, stepSeconds, useEngine } from "../support/vm/engine";
import { quickstartScript } from "../support/vm/quickstart";

/** The shared secret the operator reads on the VM (it is not a stack output). */
const REGISTRATION_SHARED_SECRET_FILE = synapseFiles(DEFAULT_SYNAPSE_PATHS).registrationSharedSecret;

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
const UNITS = [
    "matrix-synapse.service",
    "postgresql@15-main.service",
    "pulumi-matrix-firewall.service",
    "systemd-timesyncd.service",
    "redis-server.service",
    "nginx.service",
    "coturn.service",
    "livekit-server.service",
    "lk-jwt-service.service",
];
/** The suite's own network for calls: TEST-NET-2, which exists only on the harness's switch (see the top). */
const CALL_NET = "198.51.100";
/** The VM's address there: the SFU's public address (`rtcPublicAddress`). */
const VM_PUBLIC = `${CALL_NET}.10`;
/** The namespace the call's participants run in, and its address on the switch. */
const CALL_NS = `pm-smoke-call-${process.pid}`;
const CALL_CLIENT = `${CALL_NET}.250`;
/** Element's fixture release, served from this machine. */
const ELEMENT_VERSION = "1.11.999";
/** The default stack's workers: they read Synapse's config, so they restart after it, one by one. */
const WORKER_UNITS = ["matrix-synapse-worker@federation_reader1.service", "matrix-synapse-worker@federation_sender1.service"];

describe("e2e smoke: the README quickstart through the real engine, fresh VM to a working homeserver", function () {
    this.timeout(60 * 60_000);
    let vm: Vm;
    let dir: string;
    let stack: EngineStack;
    let outputs: Record<string, string>;
    let registrationSharedSecret: string;
    let upText = "";
    const timings: string[] = [];
    let closeTunnel = () => {};
    let pebble: PebbleServer;
    let releases: ReleaseServer;
    let rtcReleases: RtcReleaseServer;
    let callNet: PrivateNetwork;
    let callNs: { close(): void } | undefined;

    before(async function () {
        useEngine(log);
        const t0 = Date.now();
        // MatrixRTC's programs and the call client: cached builds (.ci/run builds them before this suite starts).
        const [img, bins] = await Promise.all([ensureBaseImage(log), matrixRtcBinaries(), rtcClient()]);
        timings.push(`image: ${img.cached ? "cached" : `built in ${img.buildSeconds} s`} (${Math.round((Date.now() - t0) / 1000)} s)`);
        callNet = await createPrivateNetwork(CALL_NET);
        vm = await bootVm({
            name: "smoke",
            memoryMb: 3072,
            forwardTcp: [8766, 5432, 9000, 8100, 6379, 80, 443, 8448, 5349],
            privateNetwork: callNet,
            privateIp: VM_PUBLIC,
            log,
        });
        timings.push(`boot to SSH: ${vm.bootSeconds} s (${vm.accel})`);
        dir = projectCopy();
        // The API on loopback: the VM reaches it at 10.0.2.2, which qemu maps to this machine's 127.0.0.1.
        pebble = await startPebble({ httpPort: vm.forwardedPort(80), extraApiHosts: ["10.0.2.2"] });
        // The VM as a deployed one is: its names resolve to it, and it trusts the CA that issues its certificates
        // (Pebble's root here, Let's Encrypt's there). lk-jwt-service checks a user's OpenID token at the user's
        // homeserver, found by name, over TLS.
        const trust = await vm.exec(
            "echo '127.0.0.1 matrix.test element.test turn.test' >> /etc/hosts && cat > /usr/local/share/ca-certificates/pebble-issuing-root.crt && update-ca-certificates >/dev/null",
            { stdin: await pebble.issuingRootPem() },
        );
        assert.equal(trust.code, 0, trust.stderr);
        releases = new ReleaseServer();
        await releases.start(fs.mkdtempSync(path.join(os.tmpdir(), "e2e-element-")), [ELEMENT_VERSION]);
        rtcReleases = await serveRtcReleases(bins);
        callNs = await callNet.attachNamespace(CALL_NS, CALL_CLIENT);
        // The participants' names resolve to the VM's public address (ip netns exec mounts these over /etc's).
        fs.mkdirSync(`/etc/netns/${CALL_NS}`, { recursive: true });
        process.once("exit", () => fs.rmSync(`/etc/netns/${CALL_NS}`, { recursive: true, force: true }));
        fs.writeFileSync(`/etc/netns/${CALL_NS}/hosts`, `127.0.0.1 localhost\n${VM_PUBLIC} matrix.test\n`);
        fs.writeFileSync(`/etc/netns/${CALL_NS}/resolv.conf`, "nameserver 127.0.0.1\n");
    });

    after(async function () {
        closeTunnel();
        for (const t of timings) log(`timing: ${t}`);
        await vm?.stop();
        await pebble?.stop();
        await releases?.stop();
        await rtcReleases?.close();
        callNs?.close();
        fs.rmSync(`/etc/netns/${CALL_NS}`, { recursive: true, force: true });
        callNet?.close();
    });

    it("with a wrong host key, `up` fails before anything runs on the VM", async function () {
        // Before the first deploy: the VM is fresh, so any trace of a script would show.
        const c = vm.connection();
        assert.equal((await vm.exec("test -e /var/lib/pulumi-matrix")).code, 1, "the VM is not fresh");
        // Another VM's key: a man in the middle would present it.
        const wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
        assert.notEqual(wrong, c.hostKey);
        const preauth = async () => ((await vm.exec("journalctl -u ssh.service --no-pager -o cat")).stdout.match(/\[preauth\]/g) ?? []).length;
        const closedBefore = await preauth();
        const t0 = Date.now();
        const stack = await inlineStack(async () => {
            // The library's Host as a user's stack builds it; a short bootTimeout because a mismatch is a failed dial, retried until then.
            new Host("wrongkey", { host: c.host, port: c.port, user: c.user, privateKey: c.privateKey, hostKey: wrong, bootTimeout: "20s" });
            return {};
        }, log);
        // The provider retries a refused key as any failed dial (it does not say why) until bootTimeout.
        await assert.rejects(stack.up("wrong host key"), /command:remote:Command \(wrongkey-probe\):\n\s+error: context deadline exceeded/);
        timings.push(`wrong host key refused: ${Math.round((Date.now() - t0) / 1000)} s`);
        assert.doesNotMatch(stack.text, /wrongkey-bootstrap/, "the bootstrap was started");
        assert.equal((await vm.exec("test -e /var/lib/pulumi-matrix")).code, 1, "a script ran despite the wrong host key");
        // sshd saw the probe's dials and each ended before authentication: the client refused the key it was shown.
        assert.ok((await preauth()) > closedBefore, "sshd logged no connection closed before authentication");
    });

    it("the README quickstart, typed in a fresh copy of the repository, deploys the VM", async function () {
        const c = vm.connection();
        const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "e2e-key-")), "id_ed25519");
        fs.writeFileSync(keyFile, c.privateKey, { mode: 0o600 });
        const script = quickstartScript(
            readmeBlock("## Quickstart"),
            { port: c.port, keyFile, hostKey: c.hostKey },
            {
                acmeDirectoryUrl: `https://10.0.2.2:${pebble.apiPort}/dir`,
                acmeCaFile: pebble.apiCaFile,
                element: {
                    version: ELEMENT_VERSION,
                    sha256: releases.sha256.get(ELEMENT_VERSION)!,
                    downloadUrl: `http://10.0.2.2:${releases.port}/element-v{version}.tar.gz`,
                },
                rtc: { ...rtcReleases.releases(`http://10.0.2.2:${rtcReleases.port}`), publicAddress: VM_PUBLIC },
            },
        );
        log(`quickstart:\n${script.replace(/^/gm, "        ")}`);
        const t0 = Date.now();
        const r = await runShell(dir, `set -x\n${script}`, { env: { PULUMI_SKIP_CONFIRMATIONS: "true" } });
        upText = r.stdout;
        timings.push(
            `quickstart (preview + first up): ${Math.round((Date.now() - t0) / 1000)} s (Synapse install step: ${stepSeconds(r.stdout, "dev-synapse-install")} s)`,
        );
        assert.equal(r.code, 0, `quickstart failed:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-4000)}`);
        stack = await EngineStack.select(dir, "dev", log);
        outputs = await stack.outputs();
        assert.equal(fs.readFileSync(path.join(dir, ".e2e-admin-password"), "utf8").trim(), outputs.adminPassword);
        assert.equal(outputs.serverName, "matrix.test");
        assert.equal(outputs.adminUserId, "@admin:matrix.test");
        assert.match(outputs.hostOs, /Debian GNU\/Linux 12/);
        assert.ok(fs.existsSync(path.join(dir, ".pulumi-state", ".pulumi")), "state is not in the checkout's .pulumi-state/");
        // Not a stack output (whoever reads outputs could make admins): the operator reads it on the VM, as the README says.
        assert.equal(outputs.registrationSharedSecret, undefined, "registrationSharedSecret is a stack output");
        const shared = await vm.exec(`cat ${REGISTRATION_SHARED_SECRET_FILE}`);
        assert.equal(shared.code, 0, shared.stderr);
        registrationSharedSecret = shared.stdout.trim();
        assert.ok(registrationSharedSecret.length >= 32, "the shared secret file is empty");
    });

    it("shows no secret: not in the CLI's output, the state file, any command's output or the journal", async function () {
        const exported = await stack.cli(["stack", "export", "--show-secrets"]);
        assert.equal(exported.code, 0, exported.stderr);
        const secrets = new Set<string>([outputs.adminPassword, registrationSharedSecret]);
        const walk = (v: unknown) => {
            if (typeof v === "string") {
                if (/PRIVATE KEY/.test(v)) for (const l of v.split("\n")) if (l.length > 40) secrets.add(l);
            } else if (v && typeof v === "object") for (const x of Object.values(v)) walk(x);
        };
        const deployment = JSON.parse(exported.stdout) as { deployment: { resources: { type: string; outputs?: Record<string, unknown> }[] } };
        for (const r of deployment.deployment.resources) {
            if (r.type === "random:index/randomPassword:RandomPassword") secrets.add(String(r.outputs?.result));
            if (r.type === "tls:index/privateKey:PrivateKey") walk(r.outputs);
        }
        const seed = (await vm.exec("cut -d' ' -f3 /etc/matrix-synapse/homeserver.signing.key")).stdout.trim();
        secrets.add(seed);
        assert.ok(secrets.size >= 6, `found only ${secrets.size} secrets`);
        const places: [string, string][] = [
            ["the quickstart's output", upText],
            ["the state (stack export)", (await stack.cli(["stack", "export"])).stdout],
            ["the state files", readTree(path.join(dir, ".pulumi-state"))],
            ["the journal", (await vm.exec("journalctl --no-pager -o cat")).stdout],
        ];
        for (const [where, text] of places) for (const secret of secrets) assert.ok(!text.includes(secret), `${where} holds a secret`);
    });

    it("answers /health and /_matrix/client/versions; publishes the key id of the Pulumi-side key", async function () {
        const r = await vm.exec("curl -fsS http://127.0.0.1:8008/health; echo; curl -fsS http://127.0.0.1:8008/_matrix/client/versions");
        assert.equal(r.code, 0, r.stderr);
        const [health, versions] = r.stdout.split("\n");
        assert.equal(health, "OK");
        assert.ok((JSON.parse(versions) as { versions: string[] }).versions.length > 0);
        const keys = JSON.parse((await vm.exec("curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server")).stdout) as { verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(keys.verify_keys), [`ed25519:${outputs.signingKeyId}`]);
    });

    it("serves over HTTPS with the certificate Pebble issued: client API, federation on 8448 (to the reader), well-known, Element; admin refused", async function () {
        const ca = await pebble.issuingRootPem();
        const get = (guestPort: number, name: string, p: string) => httpsGet(vm.forwardedPort(guestPort), name, p, ca);
        const versions = await get(443, "matrix.test", "/_matrix/client/versions");
        assert.equal(versions.status, 200, versions.body);
        assert.ok((JSON.parse(versions.body) as { versions: string[] }).versions.length > 0);
        assert.match(versions.issuer, /Pebble/, "the certificate is Pebble's, not the bootstrap one");
        // The TURN name is not on the web certificate: coturn has a lineage of its own.
        assert.deepEqual(versions.names.sort(), ["DNS:element.test", "DNS:matrix.test"]);
        const client = await get(443, "matrix.test", "/.well-known/matrix/client");
        assert.deepEqual(JSON.parse(client.body), {
            "m.homeserver": { base_url: "https://matrix.test" },
            "org.matrix.msc4143.rtc_foci": [{ type: "livekit", livekit_service_url: "https://matrix.test/livekit/jwt" }],
        });
        assert.equal(client.headers["access-control-allow-origin"], "*");
        assert.match(String(client.headers["content-type"]), /^application\/json/);
        assert.deepEqual(JSON.parse((await get(443, "matrix.test", "/.well-known/matrix/server")).body), { "m.server": "matrix.test:8448" });
        const journal = (unit: string) => vm.exec(`journalctl -u ${unit} --no-pager -o cat`).then((r) => r.stdout);
        const before = (await journal(WORKER_UNITS[0])).split("/_matrix/federation/v1/version").length;
        const federation = await get(8448, "matrix.test", "/_matrix/federation/v1/version");
        assert.equal(federation.status, 200, federation.body);
        assert.ok((await journal(WORKER_UNITS[0])).split("/_matrix/federation/v1/version").length > before, "the federation reader served it");
        assert.equal((await get(443, "matrix.test", "/_synapse/admin/v1/server_version")).status, 403);
        assert.equal((await get(443, "matrix.test", "/_synapse/metrics")).status, 404);
        const config = await get(443, "element.test", "/config.json");
        assert.equal(config.status, 200);
        assert.equal(
            (JSON.parse(config.body) as { default_server_config: { "m.homeserver": { base_url: string } } }).default_server_config["m.homeserver"].base_url,
            "https://matrix.test",
        );
        assert.equal(config.headers["x-frame-options"], "SAMEORIGIN");
        assert.equal(config.headers["x-content-type-options"], "nosniff");
        assert.equal(config.headers["content-security-policy"], "frame-ancestors 'self'");
        assert.equal(config.headers["cache-control"], "no-cache");
        assert.match((await get(443, "element.test", "/")).body, new RegExp(`Element ${ELEMENT_VERSION.replace(/\./g, "\\.")}`));
        const plain = await new Promise<http.IncomingMessage>((resolve, reject) =>
            http
                .get({ host: "127.0.0.1", port: vm.forwardedPort(80), path: "/_matrix/client/versions", headers: { host: "matrix.test" } }, resolve)
                .on("error", reject),
        );
        plain.resume();
        assert.equal(plain.statusCode, 301);
        assert.equal(plain.headers.location, "https://matrix.test/_matrix/client/versions");
    });

    it("runs coturn: TURN on 3478 and 5349 with Pebble's certificate; Synapse hands out credentials for its URIs; the secret file is root's", async function () {
        assert.equal((await vm.exec("systemctl is-active coturn.service")).stdout.trim(), "active");
        const listening = (await vm.exec("ss -Hlnu; ss -Hlnt")).stdout;
        for (const port of [3478, 5349]) assert.match(listening, new RegExp(`:${port}\\s`), `nothing listens on ${port}`);
        const ca = await pebble.issuingRootPem();
        const names = await new Promise<string>((resolve, reject) => {
            const socket = tls.connect({ host: "127.0.0.1", port: vm.forwardedPort(5349), servername: "turn.test", ca }, () => {
                resolve(socket.getPeerCertificate().subjectaltname ?? "");
                socket.end();
            });
            socket.on("error", reject);
        });
        // coturn's own certificate: the TURN name alone.
        assert.equal(names, "DNS:turn.test");
        const t = await tunnel(vm, 8008);
        try {
            const dave = await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, registrationSharedSecret, "dave", "dave-password-e2e", false);
            const r = await httpsGet(vm.forwardedPort(443), "matrix.test", "/_matrix/client/v3/voip/turnServer", ca, {
                authorization: `Bearer ${dave.access_token}`,
            });
            assert.equal(r.status, 200, r.body);
            const turn = JSON.parse(r.body) as { uris: string[]; username: string; password: string; ttl: number };
            assert.deepEqual(turn.uris, ["turn:turn.test?transport=udp", "turn:turn.test?transport=tcp", "turns:turn.test:5349?transport=tcp"]);
            assert.match(turn.username, /^\d+:@dave:matrix\.test$/);
            assert.ok(turn.password.length > 10 && turn.ttl === 3600, r.body);
        } finally {
            t.close();
        }
        const modes = (await vm.exec("stat -c '%a %U %G %n' /etc/coturn/pulumi-matrix/secret.conf /etc/coturn/pulumi-matrix/turnserver.conf")).stdout;
        assert.match(modes, /^600 root root .*secret\.conf$/m);
        assert.match(modes, /^640 root turnserver .*turnserver\.conf$/m);
    });

    it("registers a user through the shared-secret API; the user and the admin (adminPassword output) log in with matrix-js-sdk", async function () {
        const t = await tunnel(vm, 8008);
        closeTunnel = t.close;
        const baseUrl = `http://127.0.0.1:${t.port}`;
        await registerWithSharedSecret(baseUrl, registrationSharedSecret, "alice", "alice-password-e2e", false);
        const alice = await loginWithPassword(baseUrl, "alice", "alice-password-e2e");
        assert.equal(alice.userId, "@alice:matrix.test");
        alice.client.stopClient();
        const admin = await loginWithPassword(baseUrl, "admin", outputs.adminPassword);
        assert.equal(admin.userId, "@admin:matrix.test");
        admin.client.stopClient();
    });

    it("places a call through MatrixRTC: Synapse's OpenID tokens become LiveKit tokens at lk-jwt-service, and audio and video reach the other participant through the VM's SFU", async function () {
        // Installed from the served releases, each verified; both run as their own users.
        assert.deepEqual([...rtcReleases.downloads].sort(), ["/livekit_1.13.5_linux_amd64.tar.gz", "/lk-jwt-service_linux_amd64"]);
        const owners = await vm.exec("ps -o user= -C livekit-server; ps -o user= -C lk-jwt-service");
        assert.deepEqual(owners.stdout.trim().split("\n").sort(), ["livekit", "lk-jwt-service"], owners.stdout);
        const ca = await pebble.issuingRootPem();
        const t = await tunnel(vm, 8008);
        const users: { user_id: string; access_token: string }[] = [];
        let roomId: string;
        const synapse = async (p: string, token: string, body: unknown) => {
            const r = await fetch(`http://127.0.0.1:${t.port}${p}`, {
                method: "POST",
                headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
                body: JSON.stringify(body),
            });
            const text = await r.text();
            assert.equal(r.status, 200, `${p}: ${text}`);
            return JSON.parse(text) as Record<string, unknown>;
        };
        try {
            for (const name of ["erin", "frank"])
                users.push(await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, registrationSharedSecret, name, `${name}-password-e2e`, false));
            roomId = (await synapse("/_matrix/client/v3/createRoom", users[0].access_token, { preset: "public_chat" })).room_id as string;
            await synapse(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, users[1].access_token, {});
        } finally {
            t.close();
        }
        // The focus the well-known advertises (checked above), through nginx on the forwarded 443: a LiveKit token per user.
        const grants: { url: string; jwt: string }[] = [];
        for (const [i, u] of users.entries()) {
            const openid = await httpsPost(
                vm.forwardedPort(443),
                "matrix.test",
                `/_matrix/client/v3/user/${encodeURIComponent(u.user_id)}/openid/request_token`,
                ca,
                {},
                {
                    authorization: `Bearer ${u.access_token}`,
                },
            );
            assert.equal(openid.status, 200, openid.body);
            const device = `SMOKE${i}`;
            const r = await httpsPost(vm.forwardedPort(443), "matrix.test", "/livekit/jwt/get_token", ca, {
                room_id: roomId,
                slot_id: "m.call#ROOM",
                openid_token: JSON.parse(openid.body),
                member: { id: `member-${device}`, claimed_user_id: u.user_id, claimed_device_id: device },
            });
            assert.equal(r.status, 200, r.body);
            grants.push(JSON.parse(r.body) as { url: string; jwt: string });
        }
        assert.equal(grants[0].url, "wss://matrix.test/livekit/sfu");
        const publisher = jwtClaims(grants[0].jwt).sub as string;
        // The participants on the suite's network: matrix.test is the VM's public address there, and ICE's only way to the SFU.
        const inNs = ["ip", "netns", "exec", CALL_NS];
        const env = { SSL_CERT_FILE: pebble.issuingRootFile };
        const t0 = Date.now();
        const [pub, sub] = await Promise.all([
            joinCall({ mode: "publish", url: grants[0].url, token: grants[0].jwt, seconds: 15, prefix: inNs, env }),
            joinCall({ mode: "subscribe", url: grants[1].url, token: grants[1].jwt, seconds: 60, until: { audio: 50, video: 50 }, prefix: inNs, env }),
        ]);
        timings.push(`MatrixRTC call (join, 50 audio and 50 video packets through the VM's SFU): ${Math.round((Date.now() - t0) / 1000)} s`);
        const sfuLog = async () => (await vm.exec("journalctl -u livekit-server.service --no-pager -o cat | tail -n 30")).stdout;
        assert.equal(pub.run.code, 0, `${pub.run.stdout}\n${pub.run.stderr.slice(-3000)}\n${await sfuLog()}`);
        assert.equal(sub.run.code, 0, `${sub.run.stdout}\n${sub.run.stderr.slice(-3000)}\n${await sfuLog()}`);
        assert.deepEqual(pub.report.published, ["audio/opus", "video/VP8"]);
        const got = sub.report.participants[publisher];
        assert.ok(got && got.audio >= 50 && got.video >= 50, `too little media from ${publisher}: ${JSON.stringify(sub.report)}\n${await sfuLog()}`);
        // LiveKit places rooms only with its node's stats (/proc/loadavg: its unit must let it read them).
        assert.doesNotMatch((await vm.exec("journalctl -u livekit-server.service --no-pager -o cat")).stdout, /could not update node stats/);
        // Both WebSockets went through nginx on the VM.
        assert.match((await vm.exec("grep -c 'GET /livekit/sfu/rtc' /var/log/nginx/access.log || true")).stdout.trim(), /^[1-9]/);
    });

    it("PostgreSQL runs with the rendered settings: loopback only, tuning from memoryMb, UTF8/C database, nightly dump timer", async function () {
        const q = (sql: string) => vm.exec(`cd / && runuser -u postgres -- psql -X -At -c "${sql}"`).then((r) => r.stdout.trim());
        assert.equal(await q("SHOW listen_addresses"), "127.0.0.1");
        assert.equal(await q("SHOW shared_buffers"), "256MB");
        assert.equal(await q("SHOW effective_cache_size"), "768MB");
        assert.equal(
            await q("SELECT pg_encoding_to_char(encoding) || '/' || datcollate || '/' || datctype FROM pg_database WHERE datname = 'synapse'"),
            "UTF8/C/C",
        );
        assert.equal((await vm.exec("systemctl is-enabled pulumi-matrix-pg-backup.timer")).stdout.trim(), "enabled");
    });

    it("firewall: from outside the VM only SSH answers", async function () {
        // A listener on every address inside the VM, on a port nothing declared.
        await vm.exec("(setsid python3 -m http.server 8766 --bind 0.0.0.0 >/dev/null 2>&1 &); sleep 2");
        const get = async (guestPort: number) => {
            try {
                return (await fetch(`http://127.0.0.1:${vm.forwardedPort(guestPort)}/`, { signal: AbortSignal.timeout(5000) })).status;
            } catch {
                return "no answer";
            }
        };
        assert.equal((await vm.exec("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8766/")).stdout, "200");
        for (const port of [8766, 5432, 9000, 8100, 6379]) assert.equal(await get(port), "no answer", `port ${port} answers from outside`);
        const listening = await vm.exec("ss -Htln | awk '{print $4}'");
        assert.match(listening.stdout, /127\.0\.0\.1:5432/);
        assert.match(listening.stdout, /127\.0\.0\.1:9000/);
        assert.doesNotMatch(listening.stdout, /0\.0\.0\.0:(5432|9000|8008|8100|8120|9093|6379)/);
        await vm.exec("pkill -f 'http.server 8766' || true");
    });

    it("runs Redis, a federation reader and a federation sender: the reader answers federation on its port, and the main process sends none", async function () {
        const units = await vm.exec(`systemctl is-active redis-server.service ${WORKER_UNITS.join(" ")}`);
        assert.deepEqual(units.stdout.trim().split("\n"), ["active", "active", "active"]);
        assert.match((await vm.exec("redis-cli -h 127.0.0.1 ping")).stdout, /NOAUTH/, "Redis asks for the password");
        const version = await vm.exec("curl -fsS http://127.0.0.1:8100/_matrix/federation/v1/version");
        assert.equal((JSON.parse(version.stdout) as { server: { name: string } }).server.name, "Synapse");
        const journal = (unit: string) => vm.exec(`journalctl -u ${unit} --no-pager -o cat`).then((r) => r.stdout);
        assert.match(await journal(WORKER_UNITS[0]), /GET \/_matrix\/federation\/v1\/version/, "the reader logged the request");
        assert.doesNotMatch(await journal("matrix-synapse.service"), /\/_matrix\/federation\/v1\/version/);
        // To-device messages to a user of another server (a closed port on the VM): the sender tries to deliver them.
        // Another message every 15 s wakes the destination again should Synapse hold the first one back; this check
        // found the stack's default federation_domain_whitelist ([], read by Synapse as "nobody") before it was fixed.
        const t = await tunnel(vm, 8008);
        let sent = false;
        try {
            const carol = await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, registrationSharedSecret, "carol", "carol-password-e2e", false);
            for (let i = 0; i < 90 && !sent; i++) {
                if (i % 15 === 0) {
                    const r = await fetch(`http://127.0.0.1:${t.port}/_matrix/client/v3/sendToDevice/m.test/e2e${i}`, {
                        method: "PUT",
                        headers: { authorization: `Bearer ${carol.access_token}`, "content-type": "application/json" },
                        body: JSON.stringify({ messages: { "@bob:127.0.0.1:9": { DEVICE: { hello: "world" } } } }),
                    });
                    assert.equal(r.status, 200);
                }
                sent = /TX \[127\.0\.0\.1:9\] .*Sending transaction/.test(await journal(WORKER_UNITS[1]));
                if (!sent) await new Promise((res) => setTimeout(res, 1000));
            }
        } finally {
            t.close();
        }
        if (!sent) {
            const tail = async (unit: string) => (await vm.exec(`journalctl -u ${unit} --no-pager -o cat | tail -n 40`)).stdout;
            assert.fail(
                `the federation sender did not try to send the transaction\n--- ${WORKER_UNITS[1]}:\n${await tail(WORKER_UNITS[1])}\n--- main:\n${await tail("matrix-synapse.service")}`,
            );
        }
        assert.doesNotMatch(await journal("matrix-synapse.service"), /Sending transaction/, "the main process sends federation");
    });

    it("runs Synapse, its workers, coturn and MatrixRTC's programs in systemd's sandbox: systemd-analyze security rates each 3.0 or less", async function () {
        // The exposure systemd-analyze computes from the units as loaded (Debian's, with our drop-ins); 0 best, 10 worst.
        // Measured offline before the sandbox: Synapse's unit 7.1, coturn's 9.0.
        // Offline, before this suite ran them: livekit-server's and lk-jwt-service's units 1.3 each.
        for (const unit of ["matrix-synapse.service", WORKER_UNITS[0], "coturn.service", "livekit-server.service", "lk-jwt-service.service"]) {
            const r = await vm.exec(`systemd-analyze security --no-pager ${unit}`);
            const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
            assert.ok(m, `systemd-analyze security ${unit}:\n${r.stdout.slice(-1000)}\n${r.stderr}`);
            timings.push(`systemd-analyze security ${unit}: ${m[1]} ${m[2]}`);
            assert.ok(Number(m[1]) <= 3.0, `${unit}: exposure ${m[1]} ${m[2]}`);
        }
    });

    it("firewall: a flushed ruleset is reported by the drift check; `systemctl restart nftables` loads the table again", async function () {
        const table = () => vm.exec("nft list table inet pulumi_matrix >/dev/null 2>&1").then((r) => r.code);
        assert.equal(await table(), 0);
        // Debian's nftables.service flushes the whole ruleset; by hand, only our table's unit still reads active.
        await vm.exec("nft flush ruleset");
        assert.equal(await table(), 1);
        assert.equal((await vm.exec("systemctl is-active pulumi-matrix-firewall.service")).stdout.trim(), "active");
        const drift = await vm.exec("/usr/local/sbin/pulumi-matrix-drift");
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /firewall: the nftables table inet pulumi_matrix is missing/);
        // The unit is PartOf nftables.service: restarting it (a flush, then /etc/nftables.conf) reloads our table after it.
        const restart = await vm.exec("systemctl restart nftables.service");
        assert.equal(restart.code, 0, restart.stderr);
        assert.equal(await table(), 0, "the table is not back after nftables.service restarted");
        assert.doesNotMatch((await vm.exec("/usr/local/sbin/pulumi-matrix-drift")).stdout, /pulumi_matrix is missing/);
        assert.match((await vm.exec("nft list chain inet pulumi_matrix forward")).stdout, /policy drop/);
    });

    it("a second `pulumi up` reports no change, runs no command and restarts nothing", async function () {
        const before = await startTimestamps(vm, [...UNITS, ...WORKER_UNITS]);
        const downloads = rtcReleases.downloads.length;
        const again = await stack.up("second up");
        timings.push(`second up (no change): ${again.seconds} s`);
        assertNothingChanged(again);
        assert.deepEqual(
            [...again.ops.values()].filter((op) => op !== "same"),
            [],
        );
        assert.deepEqual(await startTimestamps(vm, [...UNITS, ...WORKER_UNITS]), before);
        assert.equal(rtcReleases.downloads.length, downloads, "MatrixRTC's releases were downloaded again");
        // The table nftables.service's restart removed (previous test) is there after the up too.
        assert.equal((await vm.exec("nft list table inet pulumi_matrix >/dev/null")).code, 0);
    });

    it("a maxUploadSize change previews as a readable YAML line, updates Synapse's config and nginx's site, restarts only Synapse (nginx reloads)", async function () {
        await stack.setConfig({ maxUploadSize: "100M" });
        const preview = await stack.preview("preview maxUploadSize 50M -> 100M");
        fs.mkdirSync(path.join(dirOfRuns()), { recursive: true });
        fs.writeFileSync(path.join(dirOfRuns(), "preview-maxUploadSize.txt"), preview.stdout);
        assert.match(preview.stdout, /-\s+max_upload_size: 50M/);
        assert.match(preview.stdout, /\+\s+max_upload_size: 100M/);
        for (const secret of [outputs.adminPassword, registrationSharedSecret]) assert.ok(!preview.stdout.includes(secret), "the preview shows a secret");
        // The README's excerpt of a preview is this suite's output, not written by hand.
        // Compared with runs of spaces collapsed: the CLI's indentation depends on nesting.
        const flat = (t: string) => t.replace(/[ \t]+/g, " ").trim();
        const previewLines = new Set(preview.stdout.split("\n").map(flat));
        for (const line of readmeBlock("<!-- preview excerpt: e2e smoke, maxUploadSize 50M -> 100M -->"))
            assert.ok(previewLines.has(flat(line)), `README's preview excerpt line is not in the real preview: ${line}`);
        const updated = [...preview.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`);
        assert.deepEqual(updated.sort(), ["update dev-proxy-nginx", "update dev-synapse-config"]);
        assert.match(preview.stdout, /-\s+client_max_body_size 50M;/);
        assert.match(preview.stdout, /\+\s+client_max_body_size 100M;/);

        const before = await startTimestamps(vm, [...UNITS, ...WORKER_UNITS]);
        const up = await stack.up("up maxUploadSize 100M");
        timings.push(`up of a maxUploadSize change: ${up.seconds} s`);
        assert.deepEqual(up.changes, { same: up.changes.same, update: 2 });
        const after = await startTimestamps(vm, [...UNITS, ...WORKER_UNITS]);
        assert.notEqual(after["matrix-synapse.service"], before["matrix-synapse.service"]);
        for (const u of UNITS.filter((x) => x !== "matrix-synapse.service")) assert.equal(after[u], before[u], `${u} restarted`);
        // The workers read homeserver.yaml too: restarted after the main process, one after the other.
        assert.ok(Number(after[WORKER_UNITS[0]]) > Number(after["matrix-synapse.service"]), "the reader restarted after the main process");
        assert.ok(Number(after[WORKER_UNITS[1]]) > Number(after[WORKER_UNITS[0]]), "the sender restarted after the reader");
        assert.match((await vm.exec("grep max_upload_size /etc/matrix-synapse/homeserver.yaml")).stdout, /100M/);
        assert.match((await vm.exec("grep client_max_body_size /etc/nginx/conf.d/pulumi-matrix.conf")).stdout, /100M/);
    });

    it("leaves no failed systemd unit", async function () {
        const r = await vm.exec("systemctl --failed --no-legend --plain");
        assert.equal(r.stdout.trim(), "");
    });
});

/** Where the suites keep what they produced for a reader (previews), git-ignored. */
export function dirOfRuns(): string {
    return path.join(__dirname, "..", "..", ".e2e");
}

/** The text of every file under `dir`. */
function readTree(dir: string): string {
    let out = "";
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
        if (e.isFile()) out += fs.readFileSync(path.join(e.parentPath, e.name), "utf8");
    }
    return out;
}
