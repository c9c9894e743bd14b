// Loopback-only networking helpers for the integration suite.

import * as net from "node:net";

import { sleep } from "./processes";

/**
 * A TCP port that is free on 127.0.0.1 right now (the kernel picks it).
 * Ports handed out by this process are not handed out again, so two servers
 * started back to back do not get the same one.
 */
const handedOut = new Set<number>();
export async function freePort(): Promise<number> {
    for (let i = 0; i < 50; i++) {
        const port = await new Promise<number>((resolve, reject) => {
            const srv = net.createServer();
            srv.unref();
            srv.once("error", reject);
            srv.listen(0, "127.0.0.1", () => {
                const addr = srv.address() as net.AddressInfo;
                srv.close(() => resolve(addr.port));
            });
        });
        if (!handedOut.has(port)) {
            handedOut.add(port);
            return port;
        }
    }
    throw new Error("freePort: no free port found");
}

/** True when something accepts TCP connections on host:port. */
export function isListening(port: number, host = "127.0.0.1"): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect({ port, host });
        const done = (ok: boolean): void => {
            s.destroy();
            resolve(ok);
        };
        s.setTimeout(1000, () => done(false));
        s.once("connect", () => done(true));
        s.once("error", () => done(false));
    });
}

export interface WaitForHttpOptions {
    timeoutMs?: number;
    intervalMs?: number;
    /** Accept the response? Default: status 200. */
    accept?: (status: number, body: string) => boolean;
    /** Stop waiting early (e.g. the server process exited); return a reason to fail with. */
    abort?: () => string | undefined;
}

/** Polls `url` until `accept` says yes; throws with the last status/error on timeout. */
export async function waitForHttp(url: string, opts: WaitForHttpOptions = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const accept = opts.accept ?? ((status) => status === 200);
    let last = "no attempt";
    for (;;) {
        const reason = opts.abort?.();
        if (reason) throw new Error(`waiting for ${url}: ${reason}`);
        try {
            const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
            const body = await res.text();
            if (accept(res.status, body)) return;
            last = `HTTP ${res.status} ${body.slice(0, 200)}`;
        } catch (err) {
            last = String((err as { cause?: unknown }).cause ?? err);
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${opts.timeoutMs ?? 60_000} ms waiting for ${url} (last: ${last})`);
        }
        await sleep(opts.intervalMs ?? 250);
    }
}
