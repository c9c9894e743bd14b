// A small stand-in for the Cloudflare API v4 on loopback, over HTTPS, for
// certbot's real Cloudflare plugin (Debian's python3-certbot-dns-cloudflare):
// that plugin talks to the API through the python `cloudflare` library
// (Debian's python3-cloudflare), whose base URL is read from the
// CLOUDFLARE_API_URL environment variable (CloudFlare/read_configs.py) and
// whose HTTP client is `requests`, which trusts REQUESTS_CA_BUNDLE. So a
// test points certbot here with CLOUDFLARE_API_URL=`baseUrl` and adds
// `caPem` to the bundle certbot trusts.
//
// Only what the plugin calls: the zone lookup by name
// (GET /zones?name=...&per_page=1), creating a TXT record
// (POST /zones/<id>/dns_records), finding it (GET /zones/<id>/dns_records
// ?type=TXT&name=...&content=...) and deleting it
// (DELETE /zones/<id>/dns_records/<record id>). Each TXT record created or
// deleted is also set in or cleared from Pebble's mock DNS (`dns`), so
// Pebble's DNS-01 validation sees what certbot wrote "in Cloudflare".
// Requests without `Bearer <token>` are answered 403 with Cloudflare's
// "Invalid access token" error (code 9109).

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

import type { PebbleServer } from "./pebble";
import { makeTempDir, registerCleanup, run } from "./processes";

/** One request the fake API answered. */
export interface ApiCall {
    method: string;
    /** Path and query below the base URL, e.g. `/zones?name=example.com&per_page=1`. */
    path: string;
    /** The request carried the expected token. */
    authorized: boolean;
    status: number;
}

export interface TxtRecord {
    id: string;
    zoneId: string;
    name: string;
    content: string;
}

export interface FakeCloudflare {
    /** For CLOUDFLARE_API_URL, e.g. https://127.0.0.1:41234/client/v4 */
    readonly baseUrl: string;
    /** PEM of the CA that signed the server's certificate. */
    readonly caPem: string;
    /** The zones it knows, by name. */
    readonly zones: ReadonlyMap<string, string>;
    /** Every request so far. */
    calls(): ApiCall[];
    /** The TXT records that exist now. */
    records(): TxtRecord[];
    /** Every TXT record ever created (also the deleted ones). */
    created(): TxtRecord[];
    /** Every header value seen in Authorization (to check where a token travelled). */
    authorizations(): string[];
    stop(): Promise<void>;
}

/** A throw-away CA and a server certificate for 127.0.0.1, made with openssl. */
async function makeCertificate(dir: string): Promise<{ ca: string; cert: string; key: string }> {
    const f = (n: string) => path.join(dir, n);
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc"];
    await run("openssl", ["req", "-x509", ...newKey, "-days", "2", "-subj", "/CN=fake Cloudflare API test CA", "-keyout", f("ca.key"), "-out", f("ca.pem")]);
    await run("openssl", ["req", "-new", ...newKey, "-subj", "/CN=127.0.0.1", "-keyout", f("server.key"), "-out", f("server.csr")]);
    fs.writeFileSync(f("ext.cnf"), "basicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n");
    await run("openssl", [
        "x509",
        "-req",
        "-in",
        f("server.csr"),
        "-CA",
        f("ca.pem"),
        "-CAkey",
        f("ca.key"),
        "-set_serial",
        `0x${crypto.randomBytes(16).toString("hex")}`,
        "-days",
        "2",
        "-extfile",
        f("ext.cnf"),
        "-out",
        f("server.pem"),
    ]);
    return { ca: fs.readFileSync(f("ca.pem"), "utf8"), cert: fs.readFileSync(f("server.pem"), "utf8"), key: fs.readFileSync(f("server.key"), "utf8") };
}

/** Starts the fake API on 127.0.0.1 for `zones` (names), accepting only `token`. */
export async function startFakeCloudflare(opts: { token: string; zones: string[]; dns: Pick<PebbleServer, "setTxt" | "clearTxt"> }): Promise<FakeCloudflare> {
    const dir = makeTempDir("fake-cloudflare");
    const tls = await makeCertificate(dir);
    const zones = new Map(opts.zones.map((z) => [z, crypto.randomBytes(16).toString("hex")]));
    const records = new Map<string, TxtRecord>();
    const created: TxtRecord[] = [];
    const calls: ApiCall[] = [];
    const authorizations: string[] = [];

    const envelope = (result: unknown, extra: Record<string, unknown> = {}) => ({ success: true, errors: [], messages: [], result, ...extra });
    const list = (items: unknown[]) =>
        envelope(items, { result_info: { page: 1, per_page: items.length, count: items.length, total_count: items.length, total_pages: 1 } });
    const recordJson = (r: TxtRecord) => ({ id: r.id, zone_id: r.zoneId, type: "TXT", name: r.name, content: r.content, ttl: 120, proxied: false });

    async function handle(method: string, url: URL, body: string): Promise<[number, unknown]> {
        const p = url.pathname.replace(/^\/client\/v4/, "");
        if (method === "GET" && p === "/zones") {
            const name = url.searchParams.get("name");
            const found = [...zones].filter(([z]) => name === null || z === name).map(([z, id]) => ({ id, name: z, status: "active" }));
            return [200, list(found)];
        }
        const m = /^\/zones\/([0-9a-f]+)\/dns_records(?:\/([0-9a-f]+))?$/.exec(p);
        if (!m || ![...zones.values()].includes(m[1]))
            return [404, { success: false, errors: [{ code: 7003, message: "Could not route to " + p }], messages: [], result: null }];
        const zoneId = m[1];
        if (method === "POST" && !m[2]) {
            const data = JSON.parse(body) as { type?: string; name?: string; content?: string };
            if (data.type !== "TXT" || !data.name || data.content === undefined)
                return [400, { success: false, errors: [{ code: 9000, message: "only TXT records here" }], messages: [], result: null }];
            const r: TxtRecord = { id: crypto.randomBytes(16).toString("hex"), zoneId, name: data.name, content: data.content };
            await opts.dns.setTxt(r.name, r.content);
            records.set(r.id, r);
            created.push(r);
            return [200, envelope(recordJson(r))];
        }
        if (method === "GET" && !m[2]) {
            const q = url.searchParams;
            const found = [...records.values()].filter(
                (r) =>
                    r.zoneId === zoneId &&
                    (q.get("type") ?? "TXT") === "TXT" &&
                    [null, r.name].includes(q.get("name")) &&
                    [null, r.content].includes(q.get("content")),
            );
            return [200, list(found.map(recordJson))];
        }
        if (method === "DELETE" && m[2]) {
            const r = records.get(m[2]);
            if (!r) return [404, { success: false, errors: [{ code: 81044, message: "Record does not exist." }], messages: [], result: null }];
            records.delete(r.id);
            // challtestsrv clears every value of a name: put back the ones that remain.
            await opts.dns.clearTxt(r.name);
            for (const o of records.values()) if (o.name === r.name) await opts.dns.setTxt(o.name, o.content);
            return [200, envelope({ id: r.id })];
        }
        return [405, { success: false, errors: [{ code: 10000, message: `${method} ${p} is not served here` }], messages: [], result: null }];
    }

    const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
        let body = "";
        req.setEncoding("utf8");
        req.on("data", (d: string) => (body += d));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", "https://127.0.0.1");
            const auth = req.headers.authorization ?? "";
            authorizations.push(auth);
            const authorized = auth === `Bearer ${opts.token}`;
            const reply = (status: number, json: unknown) => {
                calls.push({ method: req.method ?? "", path: url.pathname.replace(/^\/client\/v4/, "") + url.search, authorized, status });
                res.writeHead(status, { "content-type": "application/json" });
                res.end(JSON.stringify(json));
            };
            if (!authorized) return reply(403, { success: false, errors: [{ code: 9109, message: "Invalid access token" }], messages: [], result: null });
            handle(req.method ?? "", url, body).then(
                ([status, json]) => reply(status, json),
                (err: Error) => reply(500, { success: false, errors: [{ code: 500, message: err.message }], messages: [], result: null }),
            );
        });
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const stop = () =>
        new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
        });
    registerCleanup({ name: `fake Cloudflare API on ${port}`, run: stop });
    return {
        baseUrl: `https://127.0.0.1:${port}/client/v4`,
        caPem: tls.ca,
        zones,
        calls: () => [...calls],
        records: () => [...records.values()],
        created: () => [...created],
        authorizations: () => [...authorizations],
        stop,
    };
}
