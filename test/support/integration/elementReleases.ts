// Fixture Element releases on a local HTTP server: small tarballs laid out as
// Element's (element-v<version>/index.html, i18n/, config.sample.json), with
// their SHA-256, for tests of the ElementWeb install (integration and VM).

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { type FileServer, serveFiles } from "./fileServer";
import { run } from "./processes";

/** Fixture releases on a local HTTP server that counts the requests for each path. */
export class ReleaseServer {
    readonly sha256 = new Map<string, string>();
    private server?: FileServer;

    /** Where it listens (once started). */
    get port(): number {
        return this.server?.port ?? 0;
    }

    /** How many requests each path got. */
    get requests(): Map<string, number> {
        const counts = new Map<string, number>();
        for (const url of this.server?.requests ?? []) counts.set(url, (counts.get(url) ?? 0) + 1);
        return counts;
    }

    /** Builds a small release tarball for each version (top directory element-v<version>, as Element's) and serves them on 127.0.0.1. */
    async start(dir: string, versions: readonly string[]): Promise<void> {
        const tarballs = new Map<string, Buffer>();
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
            tarballs.set(`/element-v${v}.tar.gz`, data);
            this.sha256.set(v, crypto.createHash("sha256").update(data).digest("hex"));
        }
        this.server = await serveFiles(tarballs, "127.0.0.1", "element release server");
    }

    /** All requests so far. */
    total(): number {
        return this.server?.requests.length ?? 0;
    }

    stop(): Promise<void> {
        return this.server?.close() ?? Promise.resolve();
    }
}
