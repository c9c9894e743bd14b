// coturn's certificate lineage against the real programs: Debian's nginx
// and certbot, certificates from Pebble through real HTTP-01 validations
// (Pebble fetches each token from the rendered nginx on 127.0.0.1:80). The
// scripts are the ones the ReverseProxy and TurnServer components send to a
// VM (the proxy's server and certificate steps, coturn's server and
// certificate steps), run as root in a mount namespace
// (test/support/integration/proxySandbox.ts, with coturn's directories bound
// too). coturn itself is not started (turn.test.ts runs it): here
// coturn.service is bookkeeping, and what matters is which certificate and
// key reach coturn's directory.
//
// Proves: two lineages are issued (the web names; the TURN name alone),
// coturn's copy has only the TURN name and never the web key, a renewal of
// coturn's lineage by certbot reaches coturn (copy and reload), a renewal of
// the web lineage does not; and a host set up by an earlier release (one
// lineage with every name, coturn's hook on it) moves over without coturn
// ever losing a certificate for its name.

import { strict as assert } from "node:assert";
import { randomBytes, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { PROXY_FILES, resolveReverseProxySettings, ReverseProxyOptions, ReverseProxySettings } from "../../src/model/proxy";
import { resolveTurnSettings, TURN_FILES, TurnSettings } from "../../src/model/turn";
import { acmeCredentialsScript, certificateScript, liveDir, proxyServerScript, servedCertificate } from "../../src/provision/proxy";
import { turnCertificateScript, turnRemovalScript, turnServerScript } from "../../src/provision/turn";
import { NginxSite } from "../../src/render/proxy";
import { renderCoturnCertificateHook } from "../../src/render/turn";
import { FakeCloudflare, startFakeCloudflare } from "../support/integration/fakeCloudflare";
import { freePort, isListening } from "../support/integration/net";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { ProxySandbox } from "../support/integration/proxySandbox";

const DOMAIN = "matrix.pm-turn.example";
const TURN_DOMAIN = "turn.pm-turn.example";
const PROXY = 'ReverseProxy "test"';
const TURN = 'TurnServer "test"';

describe("coturn's own certificate lineage: certbot and nginx from Debian, certificates from Pebble", function () {
    let pebble: PebbleServer;
    let sandbox: ProxySandbox;
    const defaultsBefore = fs.existsSync("/etc/default/coturn") ? fs.readFileSync("/etc/default/coturn", "utf8") : undefined;

    function proxySettings(o: Partial<ReverseProxyOptions> = {}): ReverseProxySettings {
        const options: ReverseProxyOptions = {
            acme: { email: "admin@pm-turn.example", directoryUrl: pebble.directoryUrl, caBundle: fs.readFileSync(pebble.apiCaFile, "utf8") },
            listenAddresses: ["127.0.0.1"],
            ...o,
        };
        return resolveReverseProxySettings(PROXY, options, { serverName: DOMAIN, publicBaseUrl: `https://${DOMAIN}/`, maxUploadSize: "50M" });
    }

    function site(proxy: ReverseProxySettings): NginxSite {
        // Nothing answers on the upstream: nginx starts without it, and these tests never proxy a request.
        return { proxy, publicBaseUrl: `https://${DOMAIN}/`, main: "127.0.0.1:9", workers: [], tls: servedCertificate() };
    }

    function turnSettings(proxy: ReverseProxySettings): TurnSettings {
        return resolveTurnSettings(TURN, { domain: TURN_DOMAIN }, { acme: proxy.acme });
    }

    const read = (p: string) => fs.readFileSync(sandbox.hostPath(p), "utf8");
    const names = (p: string) =>
        (new X509Certificate(read(p)).subjectAltName ?? "")
            .split(", ")
            .map((n) => n.replace(/^DNS:/, ""))
            .sort();
    const webLive = () => liveDir({ homeserverDomain: DOMAIN });
    const turnLive = `/etc/letsencrypt/live/coturn-${TURN_DOMAIN}`;
    const coturnCopy = (f: string) => `${TURN_FILES.tlsDir}/${f}`;

    /** Every file under coturn's directory: none may hold the web lineage's key. */
    function coturnFiles(): string[] {
        const root = sandbox.hostPath("/etc/coturn");
        const out: string[] = [];
        const walk = (d: string) => {
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                const p = path.join(d, e.name);
                if (e.isDirectory()) walk(p);
                else if (e.isFile()) out.push(p);
            }
        };
        walk(root);
        return out;
    }

    function assertNoWebKey(): void {
        const webKey = read(`${webLive()}/privkey.pem`);
        for (const f of coturnFiles()) assert.notEqual(fs.readFileSync(f, "utf8"), webKey, `${f} holds the web lineage's key`);
    }

    before(async function () {
        for (const port of [80, 443]) assert.ok(!(await isListening(port)), `something already listens on 127.0.0.1:${port}`);
        pebble = await startPebble({ httpPort: 80 });
        for (const name of [DOMAIN, TURN_DOMAIN]) await pebble.addARecord(name, "127.0.0.1");
        sandbox = new ProxySandbox("turn-certificate", [
            { real: "/etc/coturn", name: "etc-coturn" },
            { real: "/etc/default/coturn", name: "etc-default-coturn", file: true, copy: true },
        ]);
    });

    after(async function () {
        await sandbox?.stopNginx();
        await pebble?.stop();
    });

    it("an earlier release's host: one lineage with the web names and the TURN name, coturn's hook copying it", async function () {
        // What a former release left: the TURN name on the web certificate, and coturn's copy of it (key included).
        const combined = proxySettings({ extraCertificateNames: [TURN_DOMAIN] });
        await sandbox.run(proxyServerScript(site(combined), PROXY));
        await sandbox.run(certificateScript(combined));
        const legacy = sandbox.hostPath(TURN_FILES.certificateHook);
        fs.writeFileSync(legacy, renderCoturnCertificateHook(webLive(), TURN_FILES.tlsDir), { mode: 0o755 });
        await sandbox.run(`RENEWED_LINEAGE=${webLive()} ${TURN_FILES.certificateHook}\n`);
        assert.deepEqual(names(coturnCopy("fullchain.pem")), [DOMAIN, TURN_DOMAIN].sort());
        assert.equal(read(coturnCopy("privkey.pem")), read(`${webLive()}/privkey.pem`));
    });

    it("the web certificate step re-issues without the TURN name and leaves coturn's copy alone (it still covers the TURN name)", async function () {
        const before = read(coturnCopy("fullchain.pem"));
        const webKeyBefore = read(`${webLive()}/privkey.pem`);
        sandbox.reset();
        const out = await sandbox.run(certificateScript(proxySettings()));
        assert.deepEqual(names(`${webLive()}/fullchain.pem`), [DOMAIN]);
        assert.deepEqual(sandbox.nginxLifecycle(), ["reload nginx.service"], out);
        // The legacy hook was not run: coturn still serves a certificate for its name...
        assert.equal(read(coturnCopy("fullchain.pem")), before);
        assert.ok(names(coturnCopy("fullchain.pem")).includes(TURN_DOMAIN));
        // ... and the web lineage's new key never went there.
        assert.notEqual(read(`${webLive()}/privkey.pem`), webKeyBefore, "certbot made a new key");
        assertNoWebKey();
    });

    it("coturn's steps issue its own lineage (the TURN name alone) and give coturn that copy; the web key is not in coturn's directory", async function () {
        const turn = turnSettings(proxySettings());
        sandbox.reset();
        await sandbox.run(turnServerScript(turn, "test"));
        const out = await sandbox.run(turnCertificateScript(turn));
        assert.match(out, /coturn: copied the certificate/);
        assert.deepEqual(names(`${turnLive}/fullchain.pem`), [TURN_DOMAIN]);
        assert.deepEqual(names(`${webLive()}/fullchain.pem`), [DOMAIN]);
        assert.deepEqual(names(coturnCopy("fullchain.pem")), [TURN_DOMAIN]);
        assert.equal(read(coturnCopy("fullchain.pem")), read(`${turnLive}/fullchain.pem`));
        assert.equal(read(coturnCopy("privkey.pem")), read(`${turnLive}/privkey.pem`));
        assert.notEqual(read(`${turnLive}/privkey.pem`), read(`${webLive()}/privkey.pem`));
        assertNoWebKey();
        // The hook now follows coturn's lineage.
        assert.match(
            read(TURN_FILES.certificateHook),
            new RegExp(`^\\[ "\\$\\{RENEWED_LINEAGE:-\\}" = ${turnLive.replace(/\./g, "\\.")} \\] \\|\\| exit 0$`, "m"),
        );
        assert.equal(read(TURN_FILES.certificateRequest), `${pebble.directoryUrl} ecdsa ${TURN_DOMAIN}\n`);
    });

    it("a second run of both certificate steps asks the CA for nothing and changes nothing", async function () {
        const turn = turnSettings(proxySettings());
        const serials = [webLive(), turnLive].map((l) => new X509Certificate(read(`${l}/cert.pem`)).serialNumber);
        sandbox.reset();
        const out = (await sandbox.run(certificateScript(proxySettings()))) + (await sandbox.run(turnCertificateScript(turn)));
        assert.doesNotMatch(out, /copied|reloading|updated /);
        assert.deepEqual(
            sandbox.calls().filter((c) => /^(reload|restart) /.test(c)),
            [],
        );
        assert.deepEqual(
            [webLive(), turnLive].map((l) => new X509Certificate(read(`${l}/cert.pem`)).serialNumber),
            serials,
        );
    });

    it("certbot's renewal of coturn's lineage reaches coturn (a new copy, a reload); the web lineage's renewal does not touch coturn", async function () {
        // coturn runs (bookkeeping: the stand-in marks it active), so the hook reloads it.
        await sandbox.run("systemctl start coturn.service\n");
        const before = read(coturnCopy("fullchain.pem"));
        sandbox.reset();
        // As certbot.timer runs it, in the sandbox's directories.
        const renew = (lineage: string) =>
            sandbox.run(
                `set -e\nREQUESTS_CA_BUNDLE=${PROXY_FILES.caBundle} certbot renew --cert-name ${lineage} --force-renewal --no-random-sleep-on-renew --non-interactive 2>&1\n`,
            );
        const out = await renew(`coturn-${TURN_DOMAIN}`);
        assert.match(out, /Congratulations, all renewals succeeded/, out);
        assert.match(out, /coturn: copied the certificate/, out);
        assert.ok(sandbox.calls().includes("reload coturn.service"), sandbox.calls().join("\n"));
        assert.notEqual(read(coturnCopy("fullchain.pem")), before);
        assert.equal(read(coturnCopy("fullchain.pem")), read(`${turnLive}/fullchain.pem`));
        assert.equal(read(coturnCopy("privkey.pem")), read(`${turnLive}/privkey.pem`));
        assertNoWebKey();

        const copy = read(coturnCopy("fullchain.pem"));
        sandbox.reset();
        const web = await renew(DOMAIN);
        assert.match(web, /Congratulations, all renewals succeeded/, web);
        assert.doesNotMatch(web, /coturn: copied/);
        assert.ok(!sandbox.calls().includes("reload coturn.service"), sandbox.calls().join("\n"));
        assert.equal(read(coturnCopy("fullchain.pem")), copy);
        assertNoWebKey();
    });

    it("taken away (TurnRemoval's step): coturn's lineage is deleted, the web lineage stays; a second run changes nothing", async function () {
        const webSerial = new X509Certificate(read(`${webLive()}/cert.pem`)).serialNumber;
        const out = await sandbox.run(turnRemovalScript("test"));
        assert.match(out, new RegExp(`^deleted coturn's certificate lineage coturn-${TURN_DOMAIN.replace(/\./g, "\\.")}$`, "m"));
        for (const p of [turnLive, `/etc/letsencrypt/renewal/coturn-${TURN_DOMAIN}.conf`, TURN_FILES.certificateRequest, TURN_FILES.dir])
            assert.ok(!fs.existsSync(sandbox.hostPath(p)), `${p} is still there`);
        assert.equal(new X509Certificate(read(`${webLive()}/cert.pem`)).serialNumber, webSerial);
        assert.ok(fs.existsSync(sandbox.hostPath(`/etc/letsencrypt/renewal/${DOMAIN}.conf`)));
        assert.doesNotMatch(await sandbox.run(turnRemovalScript("test")), /deleted|removed/);
    });

    it("left this machine's own coturn files alone", function () {
        assert.equal(fs.existsSync("/etc/default/coturn") ? fs.readFileSync("/etc/default/coturn", "utf8") : undefined, defaultsBefore);
        assert.ok(!fs.existsSync("/etc/coturn/pulumi-matrix"));
    });
});

describe("coturn's own certificate lineage through DNS-01: certbot's Cloudflare plugin against a fake Cloudflare API, certificates from Pebble", function () {
    const ZONE = "pm-turn-dns01.example";
    const WEB = `matrix.${ZONE}`;
    const TURN_NAME = `turn.${ZONE}`;
    const TOKEN = randomBytes(30).toString("base64url");
    let pebble: PebbleServer;
    let cloudflare: FakeCloudflare;
    let sandbox: ProxySandbox;

    before(async function () {
        for (const port of [80, 443]) assert.ok(!(await isListening(port)), `something already listens on 127.0.0.1:${port}`);
        // Nothing listens on Pebble's HTTP-01 port and the names point elsewhere: only DNS-01 can succeed.
        pebble = await startPebble({ httpPort: await freePort() });
        for (const name of [WEB, TURN_NAME]) await pebble.addARecord(name, "127.0.0.2");
        cloudflare = await startFakeCloudflare({ token: TOKEN, zones: [ZONE], dns: pebble });
        sandbox = new ProxySandbox("turn-dns01", [
            { real: "/etc/coturn", name: "etc-coturn" },
            { real: "/etc/default/coturn", name: "etc-default-coturn", file: true, copy: true },
        ]);
    });

    after(async function () {
        await sandbox?.stopNginx();
        await cloudflare?.stop();
        await pebble?.stop();
    });

    it("issues coturn's lineage (the TURN name alone) through the API with the proxy's credentials; coturn's copy is that one, never the web key", async function () {
        const proxy = resolveReverseProxySettings(
            PROXY,
            {
                acme: {
                    email: `admin@${ZONE}`,
                    directoryUrl: pebble.directoryUrl,
                    caBundle: fs.readFileSync(pebble.apiCaFile, "utf8").trim() + "\n" + cloudflare.caPem,
                    challenge: "dns-01-cloudflare",
                    propagationSeconds: 1,
                },
                listenAddresses: ["127.0.0.1"],
            },
            { serverName: WEB, publicBaseUrl: `https://${WEB}/`, maxUploadSize: "50M" },
        );
        const turn = resolveTurnSettings(TURN, { domain: TURN_NAME }, { acme: proxy.acme });
        const env = { CLOUDFLARE_API_URL: cloudflare.baseUrl };
        await sandbox.run(acmeCredentialsScript(TOKEN));
        await sandbox.run(proxyServerScript({ proxy, publicBaseUrl: `https://${WEB}/`, main: "127.0.0.1:9", workers: [], tls: servedCertificate() }, PROXY));
        await sandbox.run(certificateScript(proxy), { env });
        await sandbox.run(turnServerScript(turn, "test"));
        const out = await sandbox.run(turnCertificateScript(turn), { env });
        assert.match(out, /coturn: copied the certificate/);
        assert.ok(!out.includes(TOKEN), "the certificate step shows the token");

        const read = (p: string) => fs.readFileSync(sandbox.hostPath(p), "utf8");
        const sans = (p: string) => new X509Certificate(read(p)).subjectAltName;
        const turnLive = `/etc/letsencrypt/live/coturn-${TURN_NAME}`;
        const webLive = liveDir(proxy);
        assert.equal(sans(`${turnLive}/cert.pem`), `DNS:${TURN_NAME}`);
        assert.equal(sans(`${webLive}/cert.pem`), `DNS:${WEB}`);
        assert.equal(read(`${TURN_FILES.tlsDir}/fullchain.pem`), read(`${turnLive}/fullchain.pem`));
        assert.equal(read(`${TURN_FILES.tlsDir}/privkey.pem`), read(`${turnLive}/privkey.pem`));
        assert.notEqual(read(`${TURN_FILES.tlsDir}/privkey.pem`), read(`${webLive}/privkey.pem`));
        // certbot's renewal configuration keeps the plugin and its credentials: the timer renews coturn's lineage the same way.
        const renewal = read(`/etc/letsencrypt/renewal/coturn-${TURN_NAME}.conf`);
        assert.match(renewal, /^authenticator = dns-cloudflare$/m);
        assert.match(renewal, new RegExp(`^dns_cloudflare_credentials = ${PROXY_FILES.cloudflareCredentials}$`, "m"));
    });
});
