import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { MatrixStack } from "../../components/MatrixStack";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { PROXY_FILES } from "../../src/model/proxy";
import { resolveReverseProxySettings, ReverseProxyOptions } from "../../src/model/proxy";
import { checkAcmeCredentials } from "../../src/model/proxy/acme";
import { acmeCredentialsScript, certificateScript } from "../../src/provision/proxy";
import { stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordingMocks, runWithMocks } from "../support/unit/mocks";

const HOMESERVER = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" };
const resolve = (acme: Partial<ReverseProxyOptions["acme"]> = {}) =>
    resolveReverseProxySettings('ReverseProxy "p"', { acme: { email: "admin@example.com", ...acme } }, HOMESERVER);
/** Looks like a Cloudflare API token (40 characters); SECRET marks it for the leak checks. */
const TOKEN = "SECRETcloudflare-token-0123456789abcdefgh";

function rejects(f: () => unknown, message: RegExp): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, message);
        return true;
    });
}

describe("ACME DNS-01 through Cloudflare: settings", () => {
    it("defaults to HTTP-01 without a propagation time; dns-01-cloudflare waits 30 s by default", () => {
        const s = resolve();
        assert.equal(s.acme.challenge, "http-01");
        assert.equal(s.acme.propagationSeconds, undefined);
        const d = resolve({ challenge: "dns-01-cloudflare" });
        assert.equal(d.acme.challenge, "dns-01-cloudflare");
        assert.equal(d.acme.propagationSeconds, 30);
        assert.equal(resolve({ challenge: "dns-01-cloudflare", propagationSeconds: 0 }).acme.propagationSeconds, 0);
    });

    it("refuses an unknown challenge, a bad propagation time, and a propagation time with HTTP-01", () => {
        rejects(
            () => resolve({ challenge: "dns-01" as "http-01" }),
            /^ReverseProxy "p": acme\.challenge is "dns-01"; expected "http-01" .* or "dns-01-cloudflare"/,
        );
        rejects(
            () => resolve({ challenge: "dns-01-cloudflare", propagationSeconds: -1 }),
            /acme\.propagationSeconds is -1; expected a whole number of seconds from 0 to 3600/,
        );
        rejects(() => resolve({ challenge: "dns-01-cloudflare", propagationSeconds: 1.5 }), /acme\.propagationSeconds is 1\.5/);
        rejects(() => resolve({ propagationSeconds: 10 }), /acme\.propagationSeconds is 10; it is only used with challenge "dns-01-cloudflare"/);
    });

    it("DNS-01 needs the token, HTTP-01 takes none; the token's value is never shown", () => {
        rejects(
            () => checkAcmeCredentials('ReverseProxy "p"', { challenge: "dns-01-cloudflare" }, false),
            /^ReverseProxy "p": cloudflareApiToken is not set; acme\.challenge "dns-01-cloudflare" writes the TXT records through the Cloudflare API: expected a Cloudflare API token with the Zone:DNS:Edit permission/,
        );
        rejects(
            () => checkAcmeCredentials('ReverseProxy "p"', { challenge: "http-01" }, true),
            /^ReverseProxy "p": cloudflareApiToken is \[secret, not shown\]; it is only used with acme\.challenge "dns-01-cloudflare", and the challenge is "http-01"/,
        );
        checkAcmeCredentials('ReverseProxy "p"', { challenge: "dns-01-cloudflare" }, true);
        checkAcmeCredentials('ReverseProxy "p"', { challenge: "http-01" }, false);
    });
});

describe("ACME DNS-01 through Cloudflare: scripts", () => {
    it("runs certbot with the Cloudflare plugin, its credentials file and the propagation time instead of the webroot", () => {
        const script = certificateScript(resolve({ challenge: "dns-01-cloudflare", propagationSeconds: 45 }));
        assert.match(script, /^pm_apt_install python3-certbot-dns-cloudflare$/m);
        assert.match(
            script,
            / --dns-cloudflare --dns-cloudflare-credentials \/etc\/pulumi-matrix\/acme-cloudflare\.ini --dns-cloudflare-propagation-seconds 45 --cert-name matrix\.example\.com /,
        );
        assert.doesNotMatch(script, /--webroot/);
        // The challenge is part of the request: switching it asks the CA again.
        assert.match(
            script,
            /= 'https:\/\/acme-v02\.api\.letsencrypt\.org\/directory ecdsa matrix\.example\.com dns-01-cloudflare' \]; then pm_when=--keep-until-expiring/,
        );
        assert.match(script, /through DNS-01 with Cloudflare: each name must be in a Cloudflare zone the API token may edit/);
        // A missing credentials file stops the step before certbot runs.
        assert.match(script, /if \[ ! -s \/etc\/pulumi-matrix\/acme-cloudflare\.ini \]; then .* exit 1; fi/);
    });

    it("HTTP-01 is unchanged: the webroot, no plugin, the request line without a challenge", () => {
        const script = certificateScript(resolve());
        assert.match(script, / --webroot -w \/var\/www\/pulumi-matrix-acme --cert-name /);
        assert.doesNotMatch(script, /cloudflare/i);
        assert.match(script, /= 'https:\/\/acme-v02\.api\.letsencrypt\.org\/directory ecdsa matrix\.example\.com' \]; then/);
        assert.equal(script, certificateScript(resolve({ challenge: "http-01" })));
    });

    it("writes the token to a root-only file (0600), recorded as a secret; a malformed token is refused without being shown", () => {
        const script = acmeCredentialsScript(TOKEN);
        assert.match(script, new RegExp(`^pm_write acme-cloudflare ${PROXY_FILES.cloudflareCredentials} 0600 root root secret <<'PM_EOF'$`, "m"));
        assert.match(script, new RegExp(`^dns_cloudflare_api_token = ${TOKEN}$`, "m"));
        for (const bad of ["short", "with space 0123456789abcdefghij", "line\nbreak-0123456789abcdefghij", "hash#0123456789abcdefghijklmn"])
            rejects(() => acmeCredentialsScript(bad), /cloudflareApiToken is \[secret, not shown\]; expected a Cloudflare API token/);
        try {
            acmeCredentialsScript("SECRET with space 0123456789");
        } catch (e) {
            assert.doesNotMatch((e as Error).message, /SECRET/);
        }
    });
});

describe("ACME DNS-01 through Cloudflare: ReverseProxy under Pulumi mocks", () => {
    const dnsArgs = () => ({
        ...stackArgs(),
        proxy: { acme: { email: "admin@example.com", challenge: "dns-01-cloudflare" as const }, cloudflareApiToken: TOKEN },
    });

    it("the token travels only in the secret credentials step, which runs before the certificate step", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", dnsArgs()));
        const credentials = mocks.byName("prod-proxy-acme-credentials");
        const certificate = mocks.byName("prod-proxy-certificate");
        assert.ok(certificate.seq > credentials.seq, "the certificate step waits for the credentials");
        assert.ok(credentials.secretInputs.includes("stdin"));
        assert.equal(credentials.inputs.logging, "none");
        assert.match(String(credentials.inputs.stdin), new RegExp(`dns_cloudflare_api_token = ${TOKEN}`));
        assert.doesNotMatch(String(credentials.inputs.create), /SECRET/);
        // Nothing else carries it: not the certificate script, not a command line, not a readable input.
        for (const r of mocks.resources.filter((x) => x !== credentials)) {
            for (const [k, v] of Object.entries(r.inputs))
                if (!r.secretInputs.includes(k)) assert.doesNotMatch(JSON.stringify(v) ?? "", /SECRETcloudflare/, `${r.name}.${k}`);
        }
        assert.deepEqual(
            certificate.secretInputs.filter((k) => k !== "connection"),
            [],
        );
        assert.match(String(certificate.inputs.stdin), / --dns-cloudflare --dns-cloudflare-credentials \/etc\/pulumi-matrix\/acme-cloudflare\.ini /);
    });

    it("the default stack has no credentials step", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", stackArgs()));
        assert.ok(!mocks.resources.some((r) => r.name.includes("acme-credentials")));
    });

    it("refuses DNS-01 without the token and a token with HTTP-01 before anything is registered", async () => {
        const { mocks } = await runWithMocks(() => {
            const { cloudflareApiToken: _, ...noToken } = dnsArgs().proxy;
            assert.throws(
                () => new MatrixStack("x", { ...stackArgs(), proxy: noToken }),
                /ReverseProxy "x-proxy": cloudflareApiToken is not set; acme\.challenge "dns-01-cloudflare"/,
            );
            assert.throws(
                () => new MatrixStack("y", { ...stackArgs(), proxy: { acme: { email: "admin@example.com" }, cloudflareApiToken: TOKEN } }),
                (e: Error) =>
                    /ReverseProxy "y-proxy": cloudflareApiToken is \[secret, not shown\]; it is only used with acme\.challenge/.test(e.message) &&
                    !e.message.includes(TOKEN),
            );
        });
        assert.deepEqual(
            mocks.resources.filter((r) => r.type !== "matrix:index:MatrixStack"),
            [],
        );
    });
});

describe("ACME DNS-01 through Cloudflare: stack config", () => {
    async function runProgram(config: Record<string, string>, secretKeys: string[], mocks = new RecordingMocks()) {
        await pulumi.runtime.setMocks(mocks, "matrix", "dev", false);
        pulumi.runtime.setAllConfig(
            Object.fromEntries(Object.entries(config).map(([k, v]) => [`matrix:${k}`, v])),
            secretKeys.map((k) => `matrix:${k}`),
        );
        const p = require.resolve("../../src/program");
        delete require.cache[p];
        require(p);
        await new Promise((r) => setTimeout(r, 50));
        return mocks;
    }
    async function programError(config: Record<string, string>, secretKeys: string[]): Promise<string> {
        try {
            await runProgram(config, secretKeys);
        } catch (e) {
            return (e as Error).message;
        }
        return assert.fail(`the program ran with ${JSON.stringify(config)}`);
    }
    const base = {
        sshHost: "203.0.113.10",
        sshPrivateKey: TEST_SSH_KEY,
        sshHostKey: TEST_HOST_KEY,
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        acmeEmail: "admin@example.com",
        // Without MatrixRTC: its releases must be pinned (rtc.test.ts covers it).
        rtc: "none",
        acmeChallenge: "http-01",
        acmeCloudflareApiToken: "",
    };

    it("acmeChallenge dns-01-cloudflare with the secret token: the credentials step gets it", async () => {
        const mocks = await runProgram({ ...base, acmeChallenge: "dns-01-cloudflare", acmeCloudflareApiToken: TOKEN }, [
            "sshPrivateKey",
            "acmeCloudflareApiToken",
        ]);
        const credentials = mocks.byName("dev-proxy-acme-credentials");
        assert.ok(credentials.secretInputs.includes("stdin"));
        assert.match(String(credentials.inputs.stdin), new RegExp(TOKEN));
        assert.match(String(mocks.byName("dev-proxy-certificate").inputs.stdin), /--dns-cloudflare /);
    });

    it("the defaults (http-01, empty token) make no credentials step", async () => {
        const mocks = await runProgram(base, ["sshPrivateKey"]);
        assert.ok(!mocks.resources.some((r) => r.name.includes("acme-credentials")));
    });

    it("errors name the keys; the token is never shown", async () => {
        const noToken = await programError({ ...base, acmeChallenge: "dns-01-cloudflare" }, ["sshPrivateKey"]);
        assert.match(
            noToken,
            /^matrix:acmeCloudflareApiToken is not set; acme\.challenge "dns-01-cloudflare" writes the TXT records through the Cloudflare API/,
        );
        const withHttp = await programError({ ...base, acmeCloudflareApiToken: TOKEN }, ["sshPrivateKey", "acmeCloudflareApiToken"]);
        assert.match(
            withHttp,
            /^matrix:acmeCloudflareApiToken is \[secret, not shown\]; it does nothing without matrix:acmeChallenge, which is not set \(the CA validates the names through HTTP-01/,
        );
        assert.doesNotMatch(withHttp, /SECRET/);
        const plain = await programError({ ...base, acmeChallenge: "dns-01-cloudflare", acmeCloudflareApiToken: TOKEN }, ["sshPrivateKey"]);
        assert.match(plain, /^matrix:acmeCloudflareApiToken is set in plain text; it is a secret/);
        assert.doesNotMatch(plain, /SECRET/);
        const malformed = await programError({ ...base, acmeChallenge: "dns-01-cloudflare", acmeCloudflareApiToken: "SECRET token with spaces" }, [
            "sshPrivateKey",
            "acmeCloudflareApiToken",
        ]);
        assert.match(malformed, /^matrix:acmeCloudflareApiToken is \[secret, not shown\]; expected a Cloudflare API token/);
        assert.doesNotMatch(malformed, /SECRET/);
        assert.match(await programError({ ...base, acmeChallenge: "dns-02" }, ["sshPrivateKey"]), /^matrix:acmeChallenge is "dns-02"; expected "http-01"/);
    });
});
