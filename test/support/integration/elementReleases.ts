// Fixture Element releases on a local HTTP server: small tarballs laid out as
// Element's (element-v<version>/index.html, i18n/, config.sample.json), with
// their SHA-256, for tests of the ElementWeb install (integration and VM).

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

import { freePort } from "./net";
import { registerCleanup, run } from "./processes";

/** Fixture releases on a local HTTP server that counts the requests for each path. */
export class ReleaseServer {
    readonly requests = new Map<string, number>();
    readonly sha256 = new Map<string, string>();
    private readonly tarballs = new Map<string, Buffer>();
    private server?: http.Server;
    port = 0;

    /** Builds a small release tarball for each version (top directory element-v<version>, as Element's) and serves them on 127.0.0.1. */
    async start(dir: string, versions: readonly string[]): Promise<void> {
        for (const v of versions) {
            const top = path.join(dir, v, `element-v${v}`);
            fs.mkdirSync(path.join(top, "i18n"), { recursive: true });
            fs.writeFileSync(path.join(top, "index.html"), `<!doctype html><title>Element ${v}</title>\n`);
            fs.writeFileSync(path.join(top, "i18n", "en_EN.json"), `{"version": "${v}"}\n`);
            fs.writeFileSync(path.join(top, "config.sample.json"), '{"default_server_config": {}}\n');
            const file = path.join(dir, `element-v${v}.tar.gz`);
            // Owned by someone else in the archive: the installed files must be root's all the same.
            await run("tar", ["-czf", file, "-C", path.join(dir, v), "--owner=1234", "--group=1234", `element-v${v}`]);
            const data = fs.readFileSync(file);
            this.tarballs.set(`/element-v${v}.tar.gz`, data);
            this.sha256.set(v, crypto.createHash("sha256").update(data).digest("hex"));
        }
        this.port = await freePort();
        this.server = http.createServer((req, res) => {
            const url = req.url ?? "";
            this.requests.set(url, (this.requests.get(url) ?? 0) + 1);
            const data = this.tarballs.get(url);
            if (!data) {
                res.writeHead(404).end("not found\n");
                return;
            }
            res.writeHead(200, { "content-type": "application/gzip", "content-length": data.length }).end(data);
        });
        await new Promise<void>((resolve) => this.server!.listen(this.port, "127.0.0.1", resolve));
        registerCleanup({ name: "element release server", run: () => this.stop() });
    }

    /** All requests so far. */
    total(): number {
        return [...this.requests.values()].reduce((a, b) => a + b, 0);
    }

    stop(): Promise<void> {
        return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    }
}
