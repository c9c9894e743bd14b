// Proves test/support/integration/pebble.ts against the real programs: Debian's certbot gets a
// certificate from Pebble through a real HTTP-01 validation (Pebble fetches
// the token from our loopback web server), and does NOT get one when the
// token is not served or the name resolves elsewhere.

import { strict as assert } from "node:assert";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

import { freePort } from "../support/integration/net";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { makeTempDir, run, type RunResult } from "../support/integration/processes";

interface ServedRequest {
    host: string;
    url: string;
    status: number;
    userAgent: string;
}

/** A minimal HTTP-01 responder: serves /.well-known/acme-challenge/<token> from `webroot`, nothing else. */
function startChallengeServer(webroot: string, port: number): Promise<{ server: http.Server; requests: ServedRequest[] }> {
    const requests: ServedRequest[] = [];
    const server = http.createServer((req, res) => {
        const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "");
        const file = m ? path.join(webroot, ".well-known", "acme-challenge", m[1]!) : undefined;
        const body = file && fs.existsSync(file) ? fs.readFileSync(file) : undefined;
        res.writeHead(body ? 200 : 404, { "content-type": "text/plain" }).end(body ?? "not found\n");
        requests.push({ host: req.headers.host ?? "", url: req.url ?? "", status: res.statusCode, userAgent: req.headers["user-agent"] ?? "" });
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve({ server, requests }));
    });
}

describe("Pebble (test ACME CA) with Debian's certbot", function () {
    let pebble: PebbleServer;
    let server: http.Server | undefined;
    let requests: ServedRequest[];
    let dir: string;
    let webroot: string;

    before(async function () {
        dir = makeTempDir("pebble-test");
        webroot = path.join(dir, "webroot");
        fs.mkdirSync(webroot);
        const httpPort = await freePort();
        ({ server, requests } = await startChallengeServer(webroot, httpPort));
        pebble = await startPebble({ httpPort });
    });

    after(async function () {
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        await pebble?.stop();
    });

    /** certbot certonly against Pebble, every state dir in our temp dir (never /etc/letsencrypt). */
    function certbot(name: string, root: string): Promise<RunResult> {
        const args = ["certonly", "--webroot", "-w", root, "-d", name, "--server", pebble.directoryUrl];
        args.push("--agree-tos", "-m", "admin@example.test", "--no-eff-email", "--non-interactive");
        for (const d of ["config", "work", "logs"]) args.push(`--${d}-dir`, path.join(dir, `certbot-${d}`));
        return run("certbot", args, {
            env: { ...process.env, REQUESTS_CA_BUNDLE: pebble.apiCaFile },
            allowFailure: true,
            timeoutMs: 180_000,
        });
    }

    function output(r: RunResult): string {
        return `certbot exited ${r.code}\n${r.stdout}\n${r.stderr}\n${pebble.logTail(30)}`;
    }

    it("issues a certificate after a real HTTP-01 validation", async function () {
        const name = "pm-test.example.test";
        const r = await certbot(name, webroot);
        assert.equal(r.code, 0, output(r));

        const live = path.join(dir, "certbot-config", "live", name);
        const cert = path.join(live, "cert.pem");
        const chain = path.join(live, "chain.pem");
        // openssl builds the path leaf -> intermediate (untrusted) -> Pebble's root, and checks the name.
        const v = await run(
            "openssl",
            ["verify", "-CAfile", pebble.issuingRootFile, "-untrusted", chain, "-purpose", "sslserver", "-verify_hostname", name, cert],
            {
                allowFailure: true,
            },
        );
        assert.equal(v.code, 0, `openssl verify: ${v.stdout}${v.stderr}`);

        const leaf = new X509Certificate(fs.readFileSync(cert));
        assert.ok(leaf.subjectAltName?.split(", ").includes(`DNS:${name}`), `SAN: ${leaf.subjectAltName}`);
        // fullchain = leaf + intermediate, ending in the intermediate the root signed.
        const full = fs.readFileSync(path.join(live, "fullchain.pem"), "utf8");
        const blocks = full.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
        assert.equal(blocks.length, 2, "fullchain should hold leaf + intermediate");
        assert.ok(new X509Certificate(blocks[1]!).verify(new X509Certificate(await pebble.issuingRootPem()).publicKey));

        // Pebble itself fetched the token from our server, by the challenged name.
        const fetched = requests.find((q) => q.status === 200 && q.host === `${name}:${pebble.httpPort}`);
        assert.ok(fetched, `no successful challenge fetch for ${name}: ${JSON.stringify(requests)}`);
        assert.match(fetched.userAgent, /pebble/i);
    });

    it("refuses a name whose challenge file is not served", async function () {
        const unserved = path.join(dir, "unserved-webroot");
        fs.mkdirSync(unserved);
        const r = await certbot("pm-missing.example.test", unserved);
        assert.notEqual(r.code, 0, output(r));
        assert.match(r.stdout + r.stderr, /unauthorized|404/i, output(r));
    });

    it("resolves names through the mock DNS (addARecord)", async function () {
        // Nothing listens on 127.0.0.2: the served token cannot be reached there.
        const name = "pm-elsewhere.example.test";
        await pebble.addARecord(name, "127.0.0.2");
        const r = await certbot(name, webroot);
        assert.notEqual(r.code, 0, output(r));
        assert.match(r.stdout + r.stderr, /127\.0\.0\.2/, output(r));
        assert.ok(!requests.some((q) => q.host.startsWith(name)), "the validation must not have reached our server");
    });
});
