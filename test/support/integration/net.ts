// Loopback-only networking helpers for the integration suite.

import * as net from "node:net";

import { METRICS_PORT_OFFSET, REPLICATION_PORT_OFFSET } from "../../../src/model/workers";
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

/** Can a listener bind 127.0.0.1:port right now? (A connected socket on that port refuses a bind too.) */
function bindable(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.unref();
        srv.once("error", () => resolve(false));
        srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
}

/**
 * The first HTTP port of `count` consecutive workers whose listeners are all
 * free: each worker's HTTP port, and the replication (+1000) and metrics
 * (+2000) listeners the library derives from it. The block lies below the
 * kernel's ephemeral range (32768 and up), so no outgoing connection of a
 * process running beside the test takes one of its ports before the worker
 * binds it; a kernel-picked port plus 2000 gave no such promise.
 */
export async function freeWorkerPorts(count = 1): Promise<number> {
    const offsets = [0, REPLICATION_PORT_OFFSET, METRICS_PORT_OFFSET];
    for (let i = 0; i < 200; i++) {
        const base = 20000 + Math.floor(Math.random() * (32768 - 20000 - METRICS_PORT_OFFSET - count));
        const ports = [...Array(count).keys()].flatMap((k) => offsets.map((o) => base + k + o));
        if (ports.some((p) => handedOut.has(p))) continue;
        if ((await Promise.all(ports.map(bindable))).every(Boolean)) {
            for (const p of ports) handedOut.add(p);
            return base;
        }
    }
    throw new Error(`freeWorkerPorts: no ${count} free worker ports (with +${REPLICATION_PORT_OFFSET} and +${METRICS_PORT_OFFSET}) below 32768`);
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
