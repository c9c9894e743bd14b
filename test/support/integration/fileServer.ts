// Release files served over HTTP on one address of this machine, as a
// project's download site would serve them to a host: GET of a known path
// answers its bytes, anything else 404; every request's path is recorded.

import * as http from "node:http";

import { registerCleanup } from "./processes";

export interface FileServer {
    port: number;
    /** The path of every request, in order (known or not). */
    readonly requests: readonly string[];
    /** Stops serving; the suite's cleanup does it too if a test never does. */
    close(): Promise<void>;
}

/** Serves `files` (URL path, such as `/element-v1.0.tar.gz`, to its bytes) on `listenAddress`, on a free port. */
export async function serveFiles(files: ReadonlyMap<string, Buffer>, listenAddress = "127.0.0.1", name = "release file server"): Promise<FileServer> {
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
        const url = req.url ?? "";
        requests.push(url);
        const data = files.get(url);
        if (!data) {
            res.writeHead(404).end("not found\n");
            return;
        }
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": data.length }).end(data);
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, listenAddress, resolve);
    });
    const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
    const unregister = registerCleanup({ name, run: stop });
    return {
        port: (server.address() as { port: number }).port,
        requests,
        close: () => {
            unregister();
            return stop();
        },
    };
}
