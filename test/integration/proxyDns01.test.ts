// DNS-01 through Cloudflare against the real programs: the ReverseProxy's
// own scripts (acmeCredentialsScript, proxyServerScript, certificateScript),
// run as root in the proxy sandbox (test/support/integration/proxySandbox.ts), with Debian's
// nginx, certbot and certbot's real Cloudflare plugin
// (python3-certbot-dns-cloudflare), certificates from Pebble.
//
// Cloudflare is a small fake API on loopback over HTTPS
// (test/support/integration/fakeCloudflare.ts): the plugin's `cloudflare` library takes its
// base URL from CLOUDFLARE_API_URL (set in the scripts' environment by the
// test only), and trusts the fake API's CA through the same
// REQUESTS_CA_BUNDLE the certificate script gives certbot for a private
// ACME server (`acme.caBundle`: here Pebble's API CA and the fake API's CA).
// Each TXT record certbot creates there is set in Pebble's mock DNS
// (test/support/integration/challtestsrv.ts), so Pebble's DNS-01 validation really succeeds.
//
// The names' A records point to 127.0.0.2 and Pebble's HTTP-01 port has no
// listener: the CA cannot reach nginx over HTTP for any of them.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";

import { PROXY_FILES } from "../../src/model/proxy";
import { resolveReverseProxySettings, ReverseProxyOptions, ReverseProxySettings } from "../../src/model/proxy";
import { checkAcmeCredentials } from "../../src/model/proxy/acme";
import { acmeCredentialsScript, certificateScript, liveDir, proxyServerScript, servedCertificate } from "../../src/provision/proxy";
import { NginxSite } from "../../src/render/proxy";
import { FakeCloudflare, startFakeCloudflare } from "../support/integration/fakeCloudflare";
import { freePort, isListening } from "../support/integration/net";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { ProxySandbox } from "../support/integration/proxySandbox";

const ZONE = "pm-dns01.example";
const DOMAIN = `matrix.${ZONE}`;
/** On the certificate, and nowhere the CA could reach over HTTP. */
const INTERNAL = `internal.${ZONE}`;
const COMPONENT = 'ReverseProxy "dns01"';
/** Cloudflare tokens are 40 characters of letters, digits, - and _. */
const token = () => crypto.randomBytes(30).toString("base64url");
const TOKEN = token();
const WRONG_TOKEN = token();

describe("ReverseProxy with DNS-01: certbot's Cloudflare plugin against a fake Cloudflare API, certificates from Pebble", function () {
    let pebble: PebbleServer;
    let cloudflare: FakeCloudflare;
    let sandbox: ProxySandbox;
    let issuingRoot: string;
    /** Pebble's HTTP-01 port: nothing listens there. */
    let httpPort: number;
    let first: ReverseProxySettings;
    let firstSerial: string;

    function settings(o: Partial<ReverseProxyOptions> = {}): ReverseProxySettings {
        const s = resolveReverseProxySettings(
            COMPONENT,
            {
                acme: {
                    email: `admin@${ZONE}`,
                    directoryUrl: pebble.directoryUrl,
                    // certbot's requests trust this bundle: Pebble's API CA, and the fake Cloudflare API's CA.
                    caBundle: fs.readFileSync(pebble.apiCaFile, "utf8").trim() + "\n" + cloudflare.caPem,
                    challenge: "dns-01-cloudflare",
                    propagationSeconds: 1,
                },
                listenAddresses: ["127.0.0.1"],
                extraCertificateNames: [INTERNAL],
                ...o,
            },
            { serverName: ZONE, publicBaseUrl: `https://${DOMAIN}/`, maxUploadSize: "50M" },
        );
        // What the component checks: DNS-01 with a token.
        checkAcmeCredentials(COMPONENT, s.acme, true);
        return s;
    }

    function site(proxy: ReverseProxySettings): NginxSite {
        // Nothing listens behind nginx: this test is about the certificate.
        return { proxy, publicBaseUrl: `https://${DOMAIN}/`, main: "127.0.0.1:9", workers: [], tls: servedCertificate() };
    }

    /** The certificate script as the component runs it; only the API's address is the test's (CLOUDFLARE_API_URL). */
    const runCertificate = (s: ReverseProxySettings) => sandbox.tryRun(certificateScript(s), { env: { CLOUDFLARE_API_URL: cloudflare.baseUrl } });

    function issued(s: ReverseProxySettings = first): crypto.X509Certificate {
        return new crypto.X509Certificate(fs.readFileSync(sandbox.hostPath(`${liveDir(s)}/cert.pem`)));
    }

    /** The certificate nginx presents on 127.0.0.1:443 for `name`, trusting only Pebble's issuing root. */
    function served(name: string): Promise<DetailedPeerCertificate> {
        return new Promise((resolve, reject) => {
            const req = https.request(
                {
                    host: "127.0.0.1",
                    port: 443,
                    path: "/",
                    servername: name,
                    headers: { host: name },
                    ca: [issuingRoot],
                    rejectUnauthorized: true,
                    agent: false,
                    timeout: 30_000,
                },
                (res) => {
                    const cert = (res.socket as TLSSocket).getPeerCertificate(true);
                    res.resume();
                    res.on("end", () => resolve(cert));
                },
            );
            req.on("timeout", () => req.destroy(new Error(`https://${name}/: timed out`)));
            req.on("error", reject);
            req.end();
        });
    }

    const noSecret = (text: string, what: string) => {
        for (const t of [TOKEN, WRONG_TOKEN]) assert.ok(!text.includes(t), `${what} shows a Cloudflare API token`);
    };

    before(async function () {
        for (const port of [80, 443, 8448])
            assert.ok(
                !(await isListening(port)),
                `something already listens on 127.0.0.1:${port}; run this suite in a network namespace of its own (unshare -n, with lo up)`,
            );
        httpPort = await freePort();
        pebble = await startPebble({ httpPort });
        for (const name of [DOMAIN, INTERNAL]) await pebble.addARecord(name, "127.0.0.2");
        issuingRoot = fs.readFileSync(pebble.issuingRootFile, "utf8");
        cloudflare = await startFakeCloudflare({ token: TOKEN, zones: [ZONE, "unrelated.example"], dns: pebble });
        sandbox = new ProxySandbox("dns01");
        first = settings();
        await sandbox.run(proxyServerScript(site(first), COMPONENT));
    });

    it("writes the token to a root-only file in a step of its own; the certificate script never carries it", async () => {
        const script = acmeCredentialsScript(TOKEN);
        const out = await sandbox.run(script);
        noSecret(out, "the credentials step's output");
        const file = sandbox.hostPath(PROXY_FILES.cloudflareCredentials);
        const st = fs.statSync(file);
        assert.equal(st.mode & 0o777, 0o600);
        assert.equal(st.uid, 0);
        assert.equal(st.gid, 0);
        assert.match(fs.readFileSync(file, "utf8"), new RegExp(`^dns_cloudflare_api_token = ${TOKEN}$`, "m"));
        noSecret(certificateScript(first), "the certificate script");
        // Written again unchanged: nothing to do.
        assert.doesNotMatch(await sandbox.run(script), /updated/);
    });

    it("obtains the certificate through DNS-01: certbot writes the TXT records through the API, Pebble validates them, nginx serves the certificate", async () => {
        // The CA cannot reach nginx over HTTP for these names: they resolve to 127.0.0.2, where nothing listens on its HTTP-01 port.
        assert.ok(!(await isListening(httpPort, "127.0.0.2")));
        const r = await runCertificate(first);
        assert.equal(r.code, 0, `certificate step failed:\n${r.stdout}\n${r.stderr}\n${pebble.logTail()}`);
        noSecret(r.stdout + r.stderr, "the certificate step's output");
        assert.match(r.stdout, new RegExp(`nginx now serves the certificate for ${DOMAIN}, ${INTERNAL}`));

        const cert = issued();
        assert.deepEqual(cert.subjectAltName?.split(", ").sort(), [`DNS:${DOMAIN}`, `DNS:${INTERNAL}`].sort());
        firstSerial = cert.serialNumber.toUpperCase();
        for (const name of [INTERNAL, DOMAIN]) {
            const peer = await served(name);
            assert.equal(peer.serialNumber.toUpperCase(), firstSerial, `${name}: nginx serves another certificate`);
        }

        // The plugin's calls: the zone found by name, one TXT record per name, each deleted again, all with the token.
        const calls = cloudflare.calls();
        assert.ok(
            calls.every((c) => c.authorized && c.status === 200),
            JSON.stringify(calls, null, 1),
        );
        assert.ok(calls.some((c) => c.method === "GET" && c.path.startsWith("/zones?") && c.path.includes(`name=${ZONE}`)));
        assert.deepEqual(
            cloudflare
                .created()
                .map((c) => c.name)
                .sort(),
            [`_acme-challenge.${DOMAIN}`, `_acme-challenge.${INTERNAL}`].sort(),
        );
        assert.ok(cloudflare.created().every((c) => c.zoneId === cloudflare.zones.get(ZONE)));
        assert.equal(calls.filter((c) => c.method === "DELETE").length, 2);
        assert.deepEqual(cloudflare.records(), [], "certbot removes its TXT records");
        assert.ok(cloudflare.authorizations().every((a) => a === `Bearer ${TOKEN}`));

        // No HTTP-01: nginx never saw a challenge request.
        assert.deepEqual(
            sandbox.accessLog().filter((l) => l.includes("/.well-known/acme-challenge/")),
            [],
        );
        // certbot's timer renews the same way: the lineage's renewal config names the plugin and the credentials file, not the token.
        const renewal = fs.readFileSync(sandbox.hostPath(`/etc/letsencrypt/renewal/${DOMAIN}.conf`), "utf8");
        assert.match(renewal, /^authenticator = dns-cloudflare$/m);
        assert.match(renewal, new RegExp(`^dns_cloudflare_credentials = ${PROXY_FILES.cloudflareCredentials}$`, "m"));
        assert.match(renewal, /^dns_cloudflare_propagation_seconds = 1$/m);
        noSecret(renewal, "certbot's renewal config");
        noSecret(fs.readFileSync(sandbox.hostPath("/var/log/letsencrypt/letsencrypt.log"), "utf8"), "certbot's log");
        assert.equal(fs.readFileSync(sandbox.hostPath(PROXY_FILES.request), "utf8"), `${pebble.directoryUrl} ecdsa ${DOMAIN},${INTERNAL} dns-01-cloudflare\n`);
    });

    it("keeps the certificate when the request is unchanged: no call to the API", async () => {
        const before = cloudflare.calls().length;
        const r = await runCertificate(first);
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(cloudflare.calls().length, before);
        assert.equal(issued().serialNumber.toUpperCase(), firstSerial);
    });

    it("a wrong token (the API answers 403) fails the step with certbot's reason, shows no token and keeps the certificate", async () => {
        noSecret(await sandbox.run(acmeCredentialsScript(WRONG_TOKEN)), "the credentials step's output");
        const before = cloudflare.calls().length;
        const createdBefore = cloudflare.created().length;
        // Another name: the request changed, so certbot asks the CA (and Cloudflare) again.
        const changed = settings({ extraCertificateNames: [INTERNAL, `other.${ZONE}`] });
        const r = await runCertificate(changed);
        assert.notEqual(r.code, 0, `the step succeeded with a wrong token:\n${r.stdout}`);
        noSecret(r.stdout + r.stderr, "the failed step's output");
        // certbot's reason (the plugin's message for Cloudflare's error 9109), then the step's own hint.
        assert.match(r.stderr, /9109 Invalid access token/);
        assert.match(r.stderr, /Did you enter a valid Cloudflare Token\?/);
        assert.match(r.stderr, /through DNS-01 with Cloudflare: each name must be in a Cloudflare zone the API token may edit/);
        const calls = cloudflare.calls().slice(before);
        assert.ok(calls.length > 0 && calls.every((c) => !c.authorized && c.status === 403), JSON.stringify(calls));
        assert.equal(cloudflare.created().length, createdBefore, "no record was created");
        noSecret(fs.readFileSync(sandbox.hostPath("/var/log/letsencrypt/letsencrypt.log"), "utf8"), "certbot's log");
        // The certificate it had stays, and nginx serves it; the request on record is still the first one.
        assert.equal(issued().serialNumber.toUpperCase(), firstSerial);
        assert.equal((await served(DOMAIN)).serialNumber.toUpperCase(), firstSerial);
        assert.match(fs.readFileSync(sandbox.hostPath(PROXY_FILES.request), "utf8"), new RegExp(`${INTERNAL} dns-01-cloudflare\\n$`));
    });

    after(async function () {
        await sandbox?.stopNginx();
    });
});
