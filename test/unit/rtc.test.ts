import * as assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { ReverseProxy } from "../../components/ReverseProxy";
import { RtcRemoval } from "../../components/RtcRemoval";
import { RtcServer } from "../../components/RtcServer";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { addressNames, wellKnownWorker } from "../../src/model/dns";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveReverseProxySettings, type ReverseProxyOptions } from "../../src/model/proxy";
import { isPublicAddress, resolveRtcSettings, RTC_FILES, rtcFirewallRules, RtcOptions, rtcPortClaims, type RtcSite, rtcSite } from "../../src/model/rtc";
import { planStack, StackPlanArgs } from "../../src/model/stack";
import { rtcBinaryInstall, rtcRemovalScript, rtcSecretScript, rtcServerScript, rtcSynapseConfigScript, rtcSynapseRemovalScript } from "../../src/provision/rtc";
import { renderNginxConf, renderNginxStreamConf } from "../../src/render/proxy/nginx";
import {
    livekitConfig,
    renderJwtEnv,
    renderJwtKey,
    renderJwtUnit,
    renderLivekitConfig,
    renderLivekitKeys,
    renderLivekitUnit,
    renderRtcSynapseYaml,
    rtcSynapseConfig,
} from "../../src/render/rtc";
import { golden } from "../support/golden";
import { goldenSynapseSettings, stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordingMocks, runWithMocks } from "../support/unit/mocks";

const C = 'RtcServer "rtc"';
const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);
const HS = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" };
const base: RtcOptions = { livekit: { sha256: SHA_A }, jwtService: { sha256: SHA_B } };
const resolve = (o: Partial<RtcOptions> = {}, hs: Parameters<typeof resolveRtcSettings>[2] = HS) => resolveRtcSettings(C, { ...base, ...o }, hs);

/** The proxy's settings for the homeserver serving MatrixRTC's site (with more proxy options). */
const proxyWith = (rtc: RtcSite, o: Partial<ReverseProxyOptions> = {}) =>
    resolveReverseProxySettings('ReverseProxy "proxy"', { acme: { email: "admin@example.com" }, ...o }, { ...HS, maxUploadSize: "50M" }, undefined, rtc);

/** The error names the component, the setting, the value and what is valid. */
function rejects(f: () => unknown, message: RegExp): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, /^RtcServer "rtc": /);
        assert.match(e.message, message);
        return true;
    });
}

describe("RtcServer: settings", () => {
    it("defaults: the homeserver's domain, loopback HTTP ports, ICE on 7881/tcp and 7882/udp, the server_name as full-access homeserver", () => {
        const s = resolve();
        assert.equal(s.domain, "matrix.example.com");
        assert.equal(s.ownDomain, false);
        assert.equal(s.serviceUrl, "https://matrix.example.com/livekit/jwt");
        assert.equal(s.sfuUrl, "wss://matrix.example.com/livekit/sfu");
        assert.deepEqual(s.udp, { kind: "mux", port: 7882 });
        assert.deepEqual(s.fullAccessHomeservers, ["example.com"]);
        assert.equal(s.livekit.downloadUrl, "https://github.com/livekit/livekit/releases/download/v1.13.5/livekit_1.13.5_linux_amd64.tar.gz");
        assert.equal(s.livekit.tarball, true);
        assert.equal(s.jwtService.downloadUrl, "https://github.com/element-hq/lk-jwt-service/releases/download/v0.5.0/lk-jwt-service_linux_amd64");
        assert.equal(s.jwtService.tarball, false);
        assert.deepEqual(rtcPortClaims(s), [
            { port: 7880, protocol: "tcp", address: "127.0.0.1", owner: "livekit-server HTTP", setting: "port" },
            { port: 8080, protocol: "tcp", address: "127.0.0.1", owner: "lk-jwt-service", setting: "jwtPort" },
            { port: 7881, protocol: "tcp", address: "*", owner: "livekit-server ICE/TCP", setting: "tcpPort" },
            { port: 7882, protocol: "udp", address: "*", owner: "livekit-server ICE/UDP", setting: "udpPort" },
        ]);
        assert.deepEqual(rtcFirewallRules(s), [
            { port: 7881, protocol: "tcp", owner: "livekit-server ICE/TCP" },
            { port: 7882, protocol: "udp", owner: "livekit-server ICE/UDP" },
        ]);
    });

    it("a UDP range, an own domain, arm64 and a URL of the user's", () => {
        const s = resolve({
            domain: "rtc.example.com",
            udpPorts: { min: 50000, max: 50199 },
            architecture: "arm64",
            livekit: { sha256: SHA_A.toUpperCase(), version: "1.9.0", downloadUrl: "http://127.0.0.1:9/{version}/{arch}/livekit.tar.gz" },
        });
        assert.equal(s.ownDomain, true);
        assert.equal(s.livekit.sha256, SHA_A, "lower-cased");
        assert.equal(s.livekit.downloadUrl, "http://127.0.0.1:9/1.9.0/arm64/livekit.tar.gz");
        assert.equal(s.livekit.path, "/opt/pulumi-matrix/rtc/livekit-server-1.9.0/livekit-server");
        assert.deepEqual(rtcFirewallRules(s)[1], { port: 50000, toPort: 50199, protocol: "udp", owner: "livekit-server ICE/UDP" });
    });

    it("refuses bad input, naming the setting and what is valid", () => {
        rejects(() => resolve({ tcpPort: 0 }), /tcpPort is 0; expected a whole number from 1 to 65535/);
        rejects(() => resolve({ udpPort: 70000 }), /udpPort is 70000; expected a whole number from 1 to 65535/);
        rejects(() => resolve({ tcpPort: 7880 }), /tcpPort is 7880; expected a port other than port \(7880\): both are TCP on this host/);
        rejects(() => resolve({ jwtPort: 7881 }), /tcpPort is 7881; expected a port other than jwtPort \(7881\)/);
        rejects(() => resolve({ udpPorts: { min: 60000, max: 50000 } }), /udpPorts is \{"min":60000,"max":50000\}; expected min <= max/);
        rejects(
            () => resolve({ udpPorts: { min: 50000, max: 50099 }, maxParticipants: 100 }),
            /udpPorts is .*; expected at least 200 ports: two per participant for maxParticipants 100 \(the range has 100\)/,
        );
        rejects(() => resolve({ udpPorts: { min: 50000, max: 60000 }, udpPort: 7882 }), /udpPort is 7882; expected udpPort or udpPorts, not both/);
        rejects(
            () => resolve({ domain: "element.example.com" }, { ...HS, elementDomain: "element.example.com" }),
            /domain is "element\.example\.com"; it is Element's domain \(element\.example\.com\)/,
        );
        for (const a of ["10.0.0.5", "127.0.0.1", "192.168.1.2", "172.20.0.1", "169.254.169.254", "100.64.0.1", "::1", "fd00::1", "fe80::1", "0.0.0.0", "nope"])
            rejects(() => resolve({ publicAddress: a }), /publicAddress is .*; expected the host's public IP address/);
        for (const a of ["127.0.0.1", "::1", "fe80::1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "::ffff:10.0.0.5", "eth0"])
            rejects(() => resolve({ localAddress: a }), /localAddress is .*; expected an IP address of the host's own network interface/);
        rejects(
            () => resolve({ livekit: { sha256: "abc" } }),
            /livekit\.sha256 is "abc"; expected the SHA-256 of the livekit-server 1\.13\.5 release file for linux amd64 \(64 hex digits\); there is no default/,
        );
        rejects(() => resolve({ jwtService: { sha256: "g".repeat(64) } }), /jwtService\.sha256 is "g+"; expected the SHA-256 of the lk-jwt-service/);
        rejects(
            () => resolve({ jwtService: { sha256: SHA_B, version: "v0.5.0" } }),
            /jwtService\.version is "v0\.5\.0"; expected a lk-jwt-service release such as 0\.5\.0/,
        );
        rejects(() => resolve({ livekit: { sha256: SHA_A, downloadUrl: "ftp://x/y" } }), /livekit\.downloadUrl is "ftp:\/\/x\/y"; expected an http\(s\) URL/);
        rejects(() => resolve({ architecture: "riscv64" as "amd64" }), /architecture is "riscv64"; expected one of "amd64", "arm64"/);
        rejects(() => resolve({ fullAccessHomeservers: [] }), /fullAccessHomeservers is \[\]; expected at least one server name/);
        rejects(() => resolve({ domain: "not a name" }), /domain is "not a name"; expected a DNS name/);
    });

    it("LiveKit's TURN: a name of its own, its port among the TCP ones, a relay range apart from the SFU's UDP; bad input refused", () => {
        const t = resolve({ turn: { domain: "turn.example.com" } }).turn;
        assert.deepEqual(t, { domain: "turn.example.com", port: 7883, relayPorts: { min: 30000, max: 40000 } });
        // One end of the range alone keeps the other's default.
        assert.deepEqual(resolve({ turn: { domain: "turn.example.com", relayPorts: { max: 31000 } as { min: number; max: number } } }).turn?.relayPorts, {
            min: 30000,
            max: 31000,
        });
        rejects(
            () => resolve({ turn: { domain: "matrix.example.com" } }),
            /turn\.domain is "matrix\.example\.com"; it is the homeserver's domain: nginx sends every TLS connection/,
        );
        rejects(
            () => resolve({ domain: "rtc.example.com", turn: { domain: "rtc.example.com" } }),
            /turn\.domain is "rtc\.example\.com"; it is MatrixRTC's domain \(rtc\.domain\)/,
        );
        rejects(
            () => resolve({ turn: { domain: "element.example.com" } }, { ...HS, elementDomain: "element.example.com" }),
            /turn\.domain is "element\.example\.com"; it is Element's domain/,
        );
        rejects(() => resolve({ turn: { domain: "not a name" } }), /turn\.domain is "not a name"; expected a DNS name of its own/);
        rejects(() => resolve({ turn: "turn.example.com" as unknown as { domain: string } }), /turn is "turn\.example\.com"; expected \{ domain \}/);
        rejects(() => resolve({ turn: { domain: "turn.example.com", port: 7880 } }), /turn\.port is 7880; expected a port other than port \(7880\)/);
        rejects(() => resolve({ turn: { domain: "turn.example.com", port: 70000 } }), /turn\.port is 70000; expected a whole number from 1 to 65535/);
        rejects(() => resolve({ turn: { domain: "turn.example.com", relayPorts: { min: 40000, max: 30000 } } }), /turn\.relayPorts is .*; expected min <= max/);
        rejects(
            () => resolve({ turn: { domain: "turn.example.com", relayPorts: { min: 30000, max: 30099 } } }),
            /turn\.relayPorts is .*; expected at least 200 ports: two per participant for maxParticipants 100 \(the range has 100\)/,
        );
        rejects(
            () => resolve({ turn: { domain: "turn.example.com", relayPorts: { min: 7000, max: 8000 } } }),
            /expected a range without the SFU's ICE\/UDP port 7882/,
        );
        rejects(
            () => resolve({ udpPorts: { min: 30000, max: 31000 }, turn: { domain: "turn.example.com" } }),
            /expected a range without the SFU's ICE\/UDP ports 30000-31000/,
        );
        // Claimed on every address (LiveKit binds them so); the firewall opens neither.
        const s = resolve({ turn: { domain: "turn.example.com" } });
        assert.deepEqual(
            rtcPortClaims(s)
                .filter((c) => c.setting?.startsWith("turn."))
                .map((c) => [c.protocol, c.port, c.toPort, c.address]),
            [
                ["tcp", 7883, undefined, "*"],
                ["udp", 30000, 40000, "*"],
            ],
        );
        assert.deepEqual(
            rtcFirewallRules(s).map((r) => r.port),
            [7881, 7882],
        );
    });

    it("public addresses", () => {
        for (const a of ["203.0.113.10", "198.51.100.7", "8.8.8.8", "2001:db8::10", "2a01:4f8::1"]) assert.ok(isPublicAddress(a), a);
    });
});

describe("RtcServer: rendered files and scripts", () => {
    it("the API key and secret are only in the key files, never in a readable file or the server script", () => {
        const s = resolve();
        const readable = [renderLivekitConfig(s), renderJwtEnv(s), renderLivekitUnit(s), renderJwtUnit(s), rtcServerScript(s, "rtc"), renderRtcSynapseYaml(s)];
        for (const text of readable) assert.doesNotMatch(text, /APIkeyvalue|secretvalue0123/);
        assert.equal(renderLivekitKeys("APIkeyvalue", "secretvalue0123"), "APIkeyvalue: secretvalue0123\n");
        assert.equal(renderJwtKey("APIkeyvalue", "secretvalue0123"), "APIkeyvalue:secretvalue0123\n");
        assert.throws(() => renderJwtKey("APIkey:x", "secretvalue0123"), /letters, digits/);
        assert.match(rtcSecretScript(s, "APIkeyvalue", "secretvalue0123"), /secretvalue0123/);
    });

    it("Synapse's fragment keeps the user's extraConfig: experimental features merged, their limits win", () => {
        const s = resolve();
        const merged = rtcSynapseConfig(s, { experimental_features: { msc3861: { enabled: false } }, rc_message: { per_second: 2, burst_count: 50 } });
        assert.deepEqual(merged.experimental_features, { msc3861: { enabled: false }, msc3266_enabled: true, msc4143_enabled: true, msc4222_enabled: true });
        assert.deepEqual(merged.rc_message, { per_second: 2, burst_count: 50 });
        assert.deepEqual(rtcSynapseConfig(s).matrix_rtc, { transports: [{ type: "livekit", livekit_service_url: "https://matrix.example.com/livekit/jwt" }] });
        assert.equal(rtcSynapseConfig(s).max_event_delay_duration, "24h");
    });

    it("livekit's config: loopback HTTP, node_ip when given, no auto-created rooms, the key file", () => {
        const text = renderLivekitConfig(resolve({ publicAddress: "203.0.113.10" }));
        assert.match(text, /^bind_addresses:\n {2}- 127\.0\.0\.1$/m);
        assert.match(text, /^ {2}use_external_ip: false\n {2}node_ip: 203\.0\.113\.10$/m);
        assert.match(text, /^room:\n {2}auto_create: false$/m);
        assert.match(text, new RegExp(`^key_file: ${RTC_FILES.livekitKeys}$`, "m"));
        assert.match(renderLivekitConfig(resolve()), /^ {2}use_external_ip: true$/m);
    });

    it("livekit's config: ICE candidates on the media address alone (publicAddress by default, localAddress behind 1:1 NAT)", () => {
        const includes = (o: Partial<RtcOptions>) => /^ {2}ips:\n {4}includes:\n {6}- (\S+)$/m.exec(renderLivekitConfig(resolve(o)))?.[1];
        assert.equal(includes({ publicAddress: "203.0.113.10" }), "203.0.113.10/32");
        assert.equal(includes({ publicAddress: "203.0.113.10", localAddress: "10.0.0.5" }), "10.0.0.5/32");
        assert.equal(includes({ publicAddress: "2001:db8::10" }), "2001:db8::10/128");
        assert.equal(includes({ localAddress: "192.168.1.20" }), "192.168.1.20/32");
        assert.equal(includes({}), undefined);
        // The server step checks the address on the host before it downloads or writes anything.
        const server = rtcServerScript(resolve({ publicAddress: "203.0.113.10", localAddress: "10.0.0.5" }), "rtc");
        assert.ok(server.indexOf("ip -o addr show to 10.0.0.5/32") > 0);
        assert.ok(server.indexOf("ip -o addr show to 10.0.0.5/32") < server.indexOf("downloading "));
        assert.doesNotMatch(rtcServerScript(resolve(), "rtc"), /ip -o addr show to/);
    });

    it("nginx: the two locations on the homeserver's domain, or a server block of the RTC domain's own on the certificate; the focus in the well-known", () => {
        const s = resolve();
        const proxy = proxyWith(rtcSite(s));
        const site = { proxy, publicBaseUrl: HS.publicBaseUrl, main: "127.0.0.1:8008", workers: [], tls: { certificate: "/c", key: "/k" }, rtc: rtcSite(s) };
        const conf = renderNginxConf(site);
        assert.match(conf, /location \^~ \/livekit\/jwt\/ \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:8080\/;/);
        assert.match(conf, /location \^~ \/livekit\/sfu\/ \{[^}]*proxy_set_header Upgrade \$http_upgrade;[^}]*proxy_pass http:\/\/127\.0\.0\.1:7880\/;/);
        assert.match(conf, /"org\.matrix\.msc4143\.rtc_foci":\[\{"type":"livekit","livekit_service_url":"https:\/\/matrix\.example\.com\/livekit\/jwt"\}\]/);
        assert.deepEqual(proxy.certificateNames, ["matrix.example.com"]);

        const own = resolve({ domain: "rtc.example.com" });
        const proxy2 = proxyWith(rtcSite(own));
        assert.deepEqual(proxy2.certificateNames, ["matrix.example.com", "rtc.example.com"]);
        const conf2 = renderNginxConf({ ...site, proxy: proxy2, rtc: rtcSite(own) });
        assert.match(conf2, /server_name rtc\.example\.com;/);
        assert.equal(conf2.match(/location \^~ \/livekit\/jwt\//g)?.length, 1, "only in the RTC domain's server block");
    });

    it("LiveKit's TURN: livekit's turn section (TLS ended by nginx), the name on the certificate, nginx's stream front routing 443 by SNI", () => {
        const s = resolve({ turn: { domain: "turn.example.com" }, publicAddress: "203.0.113.10" });
        assert.deepEqual(livekitConfig(s).turn, {
            enabled: true,
            domain: "turn.example.com",
            tls_port: 7883,
            external_tls: true,
            relay_range_start: 30000,
            relay_range_end: 40000,
        });
        assert.equal(livekitConfig(resolve()).turn, undefined, "no TURN unless asked for");
        const proxy = proxyWith(rtcSite(s));
        assert.deepEqual(proxy.certificateNames, ["matrix.example.com", "turn.example.com"]);
        const site = { proxy, publicBaseUrl: HS.publicBaseUrl, main: "127.0.0.1:8008", workers: [], tls: { certificate: "/c", key: "/k" }, rtc: rtcSite(s) };
        const conf = renderNginxConf(site);
        // 443 is the stream front's: the web servers (and the default server) take TLS from it on a socket, with the client's address.
        assert.doesNotMatch(conf, /listen (\[::\]:)?443\b/);
        assert.match(conf, /listen unix:\/run\/pulumi-matrix-nginx-https\.sock ssl proxy_protocol;/);
        assert.match(conf, /listen unix:\/run\/pulumi-matrix-nginx-https\.sock ssl default_server proxy_protocol;/);
        assert.match(conf, /^set_real_ip_from unix:;$/m);
        assert.match(conf, /^real_ip_header proxy_protocol;$/m);
        assert.match(conf, /listen 8448 ssl;/, "federation's own port is unchanged");
        const stream = renderNginxStreamConf(site);
        assert.match(stream, /turn\.example\.com unix:\/run\/pulumi-matrix-nginx-turn\.sock;/);
        assert.match(stream, /default unix:\/run\/pulumi-matrix-nginx-https\.sock;/);
        assert.match(stream, /listen 443;\s+listen \[::\]:443;\s+ssl_preread on;\s+proxy_protocol on;/);
        assert.match(
            stream,
            /listen unix:\/run\/pulumi-matrix-nginx-turn\.sock ssl proxy_protocol;[^}]*ssl_certificate \/c;[^}]*proxy_pass 127\.0\.0\.1:7883;/,
        );
        // A TURN name the web servers use is refused where the proxy meets it.
        assert.throws(
            () => proxyWith(rtcSite(s), { extraCertificateNames: ["turn.example.com"] }),
            /rtc\.turn\.domain is "turn\.example\.com"; this name already has a web server here/,
        );
        // Without TURN: no stream front, 443 as before.
        assert.throws(() => renderNginxStreamConf({ ...site, rtc: rtcSite(resolve()) }), /no LiveKit TURN/);
    });

    it("the install refuses a download whose SHA-256 does not match, and installs one that does (run for real in a temp dir)", async function () {
        this.timeout(60000);
        const body = Buffer.from("#!/bin/sh\necho fake-lk-jwt-service\n");
        const sum = crypto.createHash("sha256").update(body).digest("hex");
        const server = http.createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtc-install-"));
        try {
            const port = (server.address() as { port: number }).port;
            // Asynchronously: the server answers curl from this process's event loop.
            const run = async (sha256: string) => {
                const s = resolve({ jwtService: { sha256, downloadUrl: `http://127.0.0.1:${port}/lk-jwt-service_{arch}` } });
                const text = `set -euo pipefail\n${rtcBinaryInstall(s.jwtService, dir).text}\n`;
                try {
                    return { code: 0, out: (await promisify(execFile)("bash", ["-c", text], { encoding: "utf8" })).stdout };
                } catch (e) {
                    const err = e as { code: number; stderr: string };
                    return { code: err.code, out: err.stderr };
                }
            };
            const wrong = "0".repeat(64);
            const refused = await run(wrong);
            assert.equal(refused.code, 1);
            assert.match(
                refused.out,
                new RegExp(`checksum mismatch for .*: expected SHA-256 ${wrong} \\(the sha256 setting\\), got ${sum}; refusing to use it, nothing was changed`),
            );
            assert.deepEqual(fs.readdirSync(dir), [], "nothing left behind");
            const ok = await run(sum);
            assert.equal(ok.code, 0, ok.out);
            assert.match(ok.out, /installed lk-jwt-service 0\.5\.0 \(SHA-256 verified\)/);
            const bin = path.join(dir, "lk-jwt-service-0.5.0", "lk-jwt-service");
            assert.equal(execFileSync(bin, { encoding: "utf8" }), "fake-lk-jwt-service\n");
            assert.equal(fs.readFileSync(`${path.dirname(bin)}.sha256`, "utf8"), `${sum}\n`);
            assert.equal((await run(sum)).out, "", "a second run downloads nothing");
        } finally {
            server.close();
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("RtcServer as a component", () => {
    const commands = (mocks: RecordingMocks) => mocks.resources.filter((r) => r.type === "command:remote:Command");

    it("claims its ports, runs server, secrets (secret), then Synapse's step; the key never in a readable command", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            const rtc = new RtcServer("rtc", { synapse, ...base });
            new ReverseProxy("proxy", { synapse, acme: { email: "admin@example.com" }, rtc: rtcSite(rtc.settings) });
            assert.throws(
                () => host.claimPorts('Other "late"', [{ port: 7881, protocol: "tcp", address: "*", owner: "late" }]),
                /RtcServer "rtc" \(livekit-server ICE\/TCP\) already uses tcp port 7881/,
            );
            return rtc;
        });
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("rtc-server") < seq("rtc-secrets"));
        assert.ok(seq("rtc-secrets") < seq("rtc-synapse-config"));
        assert.ok(mocks.byName("rtc-secrets").secretInputs.includes("stdin"));
        for (const n of ["rtc-server", "rtc-synapse-config"]) assert.ok(!mocks.byName(n).secretInputs.includes("stdin"), n);
        for (const r of commands(mocks))
            if (!r.secretInputs.includes("stdin")) assert.doesNotMatch(String(r.inputs.stdin), /LIVEKIT_KEY=|livekit-keys\.yaml.*<</);
        assert.match(String(mocks.byName("proxy-nginx").inputs.stdin), /livekit_service_url/);
    });

    it("runs on the proxy's host only (nginx reaches it on loopback)", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const other = new Host("rtcvm", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            rejects(
                () => new RtcServer("rtc", { synapse, host: other, ...base }),
                /host is "Host \\"rtcvm\\""; expected the reverse proxy's host \(Synapse's, Host "vm"\)/,
            );
        });
    });

    it("the removal prunes what the steps wrote and closes the firewall", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            return new RtcRemoval("old", { rtcName: "rtc", synapse });
        });
        const server = String(mocks.byName("old-server").inputs.stdin);
        assert.match(server, /pm_prune firewall-rtcserver-rtc\n/);
        for (const set of ["rtc-secrets", "rtc-config", "rtc-units"]) assert.match(server, new RegExp(`pm_prune ${set}\\n`));
        assert.match(String(mocks.byName("old-synapse-config").inputs.stdin), /pm_prune rtc-synapse-config\n/);
    });
});

describe("MatrixStack's rtc (the plan and the stack)", () => {
    const args = (o: Partial<StackPlanArgs> = {}): StackPlanArgs => ({
        host: {},
        synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
        proxy: { acme: { email: "admin@example.com" } },
        rtc: base,
        ...o,
    });
    const plan = (a: StackPlanArgs) => planStack("dev", a, { stack: "prod" });
    const messages = (a: StackPlanArgs): string[] => {
        try {
            plan(a);
        } catch (e) {
            if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
            if (e instanceof ConfigError) return [e.message];
            throw e;
        }
        return [];
    };

    it("calls default to MatrixRTC with the proxy: left out, the plan asks for the pinned releases or rtc: false", () => {
        const { rtc: _rtc, ...without } = args();
        assert.deepEqual(messages(without as StackPlanArgs), [
            `MatrixStack "dev": rtc is not set; calls default to MatrixRTC (livekit-server and lk-jwt-service, pinned release binaries): give rtc: { livekit: { sha256 }, jwtService: { sha256 } } (download the release file for your architecture from the project's GitHub release page (livekit/livekit, element-hq/lk-jwt-service), compare it with the checksums the release publishes where it has them, then take sha256sum <file>), or rtc: false for a stack without it (coturn stays available through turn)`,
        ]);
        // Without the proxy nothing would serve it: none, and no error.
        assert.equal(plan({ ...(without as StackPlanArgs), proxy: false }).rtc.kind, "removal");
        assert.deepEqual(messages(args({ proxy: false })), [
            'MatrixStack "dev": rtc is set together with proxy: false; MatrixRTC is served through the stack\'s nginx: remove proxy: false, or set rtc: false (or run an RtcServer in your own stack)',
        ]);
        assert.equal(plan(args({ rtc: false })).rtc.kind, "removal");
    });

    it("resolves it once, claims its ports on the VM and puts an own rtcDomain on the certificate", () => {
        const p = plan(args({ rtc: { ...base, domain: "rtc.example.com" } }));
        assert.equal(p.rtc.kind, "server");
        assert.ok(p.proxy!.settings.certificateNames.includes("rtc.example.com"));
        const claimed = p.ports[p.labels.host].all().filter((c) => c.component === 'RtcServer "dev-rtc"');
        assert.deepEqual(
            claimed.map((c) => `${c.protocol}/${c.port}@${c.address} ${c.setting}`),
            ["tcp/7880@127.0.0.1 rtc.port", "tcp/8080@127.0.0.1 rtc.jwtPort", "tcp/7881@* rtc.tcpPort", "udp/7882@* rtc.udpPort"],
        );
    });

    it("DNS: an own rtcDomain gets the VM's address records; a Worker's well-known advertises the focus", () => {
        const dns = {
            zone: { name: "example.com" },
            ipv4: "203.0.113.10",
            delegation: "well-known" as const,
            wellKnownVia: "worker" as const,
            accountId: "0123456789abcdef0123456789abcdef",
            cloudflare: true,
        };
        const p = plan(args({ rtc: { ...base, domain: "rtc.example.com" }, dns }));
        assert.ok(addressNames(p.dns!.settings).some((n) => n.name === "rtc.example.com" && n.purposes.includes("MatrixRTC") && !n.proxied));
        assert.deepEqual(wellKnownWorker(p.dns!.settings)!.documents["/.well-known/matrix/client"], {
            "m.homeserver": { base_url: "https://matrix.example.com" },
            "org.matrix.msc4143.rtc_foci": [{ type: "livekit", livekit_service_url: "https://rtc.example.com/livekit/jwt" }],
        });
        assert.ok(
            !addressNames(plan(args({ dns })).dns!.settings).some((n) => n.purposes.includes("MatrixRTC")),
            "on the homeserver's domain: no record of its own",
        );
    });

    it("errors where settings meet name the rtc setting: a port clash, Element's domain", () => {
        assert.match(
            messages(args({ rtc: { ...base, tcpPort: 8008 } })).join("\n"),
            /RtcServer "dev-rtc": rtc\.tcpPort is 8008; SynapseHomeserver "dev-synapse" \(synapse http listener\) already uses tcp port 8008/,
        );
        assert.match(
            messages(
                args({ rtc: { ...base, domain: "element.example.com" }, element: { domain: "element.example.com", version: "1.11.100", sha256: SHA_A } }),
            ).join("\n"),
            /RtcServer "dev-rtc": domain is "element\.example\.com"; it is Element's domain/,
        );
    });

    it("the stack constructs the RtcServer, or the RtcRemoval without it", async () => {
        const on = await runWithMocks(() => new MatrixStack("prod", { ...stackArgs(), rtc: base }));
        for (const step of ["prod-rtc-server", "prod-rtc-secrets", "prod-rtc-synapse-config"]) assert.ok(on.mocks.byName(step), step);
        assert.ok(!on.mocks.resources.some((r) => r.name.startsWith("prod-rtc-removal")));
        assert.match(String(on.mocks.byName("prod-proxy-nginx").inputs.stdin), /location \^~ \/livekit\/sfu\//);
        const off = await runWithMocks(() => new MatrixStack("prod", stackArgs()));
        for (const step of ["prod-rtc-removal-server", "prod-rtc-removal-synapse-config"]) assert.ok(off.mocks.byName(step), step);
        assert.ok(!off.mocks.resources.some((r) => r.name === "prod-rtc-server"));
    });
});

describe("MatrixRTC: golden files (update with `npm run golden:update`, review the diff)", () => {
    const rtc = () => resolveRtcSettings('RtcServer "golden"', { ...base, publicAddress: "203.0.113.10" }, HS);
    const ranged = () => resolveRtcSettings('RtcServer "golden"', { ...base, domain: "rtc.example.com", udpPorts: { min: 50000, max: 60000 } }, HS);
    golden("rtc", "livekit.yaml", () => renderLivekitConfig(rtc()));
    golden("rtc", "livekit-range.yaml", () => renderLivekitConfig(ranged()));
    const turned = () => resolveRtcSettings('RtcServer "golden"', { ...base, publicAddress: "203.0.113.10", turn: { domain: "turn.example.com" } }, HS);
    golden("rtc", "livekit-turn.yaml", () => renderLivekitConfig(turned()));
    /** The proxy's site and stream front with LiveKit's TURN on 443. */
    const turnSite = () => {
        const rtc = rtcSite(turned());
        const proxy = proxyWith(rtc);
        return {
            proxy,
            publicBaseUrl: HS.publicBaseUrl,
            main: "127.0.0.1:8008",
            workers: [],
            tls: { certificate: "/etc/nginx/pulumi-matrix/tls/fullchain.pem", key: "/etc/nginx/pulumi-matrix/tls/privkey.pem" },
            rtc,
        };
    };
    golden("rtc", "nginx-turn.conf", () => renderNginxConf(turnSite()));
    golden("rtc", "nginx-stream.conf", () => renderNginxStreamConf(turnSite()));
    golden("rtc", "lk-jwt-service.env", () => renderJwtEnv(rtc()));
    golden("rtc", "livekit-server.service", () => renderLivekitUnit(rtc()));
    golden("rtc", "lk-jwt-service.service", () => renderJwtUnit(rtc()));
    golden("rtc", "synapse/46-rtc.yaml", () => renderRtcSynapseYaml(rtc()));
    golden("rtc", "scripts/rtc-server.sh", () => rtcServerScript(rtc(), "golden"));
    golden("rtc", "scripts/rtc-secret.sh", () => rtcSecretScript(rtc(), "APIgoldenkey0000", "golden-api-secret-placeholder"));
    golden("rtc", "scripts/rtc-synapse-config.sh", () => rtcSynapseConfigScript(goldenSynapseSettings(), rtc()));
    golden("rtc", "scripts/rtc-synapse-removal.sh", () => rtcSynapseRemovalScript(goldenSynapseSettings()));
    golden("rtc", "scripts/rtc-removal.sh", () => rtcRemovalScript("golden"));
});
