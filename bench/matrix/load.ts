// The load of `npm run bench:matrix`: plain client-server API requests with
// Node's fetch (undici, through the harness's resolver and Pebble's trust, so
// through each homeserver's nginx as a client reaches it), not matrix-js-sdk:
// at 50 senders on 2 cores the SDK's own work would be measured instead of
// the server's. A /sync watcher long-polls as a client does and records when
// each message body first appears.

import { performance } from "node:perf_hooks";

import { type AnyHomeserver } from "../../test/support/federation/homeserver";
import { registerWithSharedSecret } from "../../test/support/integration/synapse";

/** A logged-in user of one homeserver. */
export class Api {
    constructor(
        readonly baseUrl: string,
        readonly userId: string,
        private readonly token: string,
    ) {}

    /** One request; throws on a non-2xx answer with the server's words. */
    async req<T = Record<string, unknown>>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
        const r = await fetch(`${this.baseUrl}${path}`, {
            method,
            headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            signal: signal ?? AbortSignal.timeout(120_000),
        });
        const text = await r.text();
        if (!r.ok) throw new Error(`${method} ${path} (${this.userId}): HTTP ${r.status} ${text.slice(0, 300)}`);
        return JSON.parse(text) as T;
    }

    async createRoom(preset: "private_chat" | "public_chat"): Promise<string> {
        return (await this.req<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset })).room_id;
    }

    /** Joins `roomId`, over federation through `via` when the room is on another server. */
    async join(roomId: string, via?: string): Promise<void> {
        const q = via ? `?server_name=${encodeURIComponent(via)}` : "";
        await this.req("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}${q}`, {});
    }

    /** Sends one text message; resolves with its latency in ms. */
    async send(roomId: string, body: string, txnId: string): Promise<number> {
        const t0 = performance.now();
        await this.req("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`, {
            msgtype: "m.text",
            body,
        });
        return performance.now() - t0;
    }
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    await Promise.all(
        Array.from({ length: Math.min(limit, items.length) }, async () => {
            while (next < items.length) {
                const i = next++;
                out[i] = await fn(items[i]!, i);
            }
        }),
    );
    return out;
}

/**
 * Registers `name` on `hs` with the shared secret (as an admin, so it may lift
 * its own rate limit: the bench measures the server, not Synapse's per-user
 * message limit) and lifts it.
 */
export async function registerUser(hs: AnyHomeserver, name: string): Promise<Api> {
    // On a loaded machine a registration (bcrypt) can outlast the harness's 30 s: asked again, as a client would.
    let reg: Awaited<ReturnType<typeof registerWithSharedSecret>> | undefined;
    for (let attempt = 1; !reg; attempt++) {
        try {
            reg = await registerWithSharedSecret(hs.baseUrl, hs.sharedSecret, name, `${name}-bench-password`, true);
        } catch (err) {
            if (attempt >= 4 || /M_USER_IN_USE/.test(String(err))) throw err;
        }
    }
    const api = new Api(hs.baseUrl, reg.user_id, reg.access_token);
    await api.req("POST", `/_synapse/admin/v1/users/${encodeURIComponent(reg.user_id)}/override_ratelimit`, { messages_per_second: 0, burst_count: 0 });
    return api;
}

/** What a send load measured: each completed send's latency, the wall time, the failures. */
export interface LoadResult {
    latencies: number[];
    wallMs: number;
    errors: number;
}

/**
 * Each sender sends to its room one message after another (the next when the
 * last was answered) until `durationMs` passed; all start together.
 */
export async function sendLoad(senders: readonly { api: Api; roomId: string }[], durationMs: number, tag: string): Promise<LoadResult> {
    const latencies: number[] = [];
    let errors = 0;
    const t0 = performance.now();
    const end = t0 + durationMs;
    let last = t0;
    await Promise.all(
        senders.map(async ({ api, roomId }, s) => {
            for (let i = 0; performance.now() < end; i++) {
                try {
                    latencies.push(await api.send(roomId, `${tag} ${s}.${i}`, `${tag}-${s}-${i}`));
                } catch {
                    errors++;
                }
                last = Math.max(last, performance.now());
            }
        }),
    );
    return { latencies, wallMs: last - t0, errors };
}

/** Sync's filter: only the room's message timeline (large, so a burst is not cut into a gap), nothing else. */
function syncFilter(roomId: string): string {
    return JSON.stringify({
        presence: { not_types: ["*"] },
        account_data: { not_types: ["*"] },
        room: {
            rooms: [roomId],
            timeline: { limit: 1000, types: ["m.room.message"] },
            state: { lazy_load_members: true, types: [] },
            ephemeral: { not_types: ["*"] },
            account_data: { not_types: ["*"] },
        },
    });
}

/** Long-polls /sync for one room and records when each message body was first returned (performance.now()). */
export class SyncWatcher {
    readonly seen = new Map<string, number>();
    private readonly abort = new AbortController();
    private loop?: Promise<void>;
    private failure?: unknown;

    constructor(
        private readonly api: Api,
        private readonly roomId: string,
    ) {}

    /** Takes the current position (so only what is sent from now on counts), then polls until `stop`. */
    async start(): Promise<void> {
        const filter = encodeURIComponent(syncFilter(this.roomId));
        const first = await this.api.req<{ next_batch: string }>("GET", `/_matrix/client/v3/sync?filter=${filter}&timeout=0`);
        let since = first.next_batch;
        this.loop = (async () => {
            while (!this.abort.signal.aborted) {
                try {
                    const r = await this.api.req<SyncResponse>(
                        "GET",
                        `/_matrix/client/v3/sync?filter=${filter}&timeout=30000&since=${encodeURIComponent(since)}`,
                        undefined,
                        this.abort.signal,
                    );
                    const at = performance.now();
                    since = r.next_batch;
                    for (const ev of r.rooms?.join?.[this.roomId]?.timeline?.events ?? []) {
                        const body = ev.content?.body;
                        if (typeof body === "string" && !this.seen.has(body)) this.seen.set(body, at);
                    }
                } catch (err) {
                    if (this.abort.signal.aborted) return;
                    this.failure = err;
                    await new Promise((r) => setTimeout(r, 500));
                }
            }
        })();
    }

    /** Waits until every body in `bodies` was seen (or `timeoutMs`); false on timeout. */
    async waitFor(bodies: readonly string[], timeoutMs: number): Promise<boolean> {
        const deadline = performance.now() + timeoutMs;
        while (performance.now() < deadline) {
            if (bodies.every((b) => this.seen.has(b))) return true;
            await new Promise((r) => setTimeout(r, 20));
        }
        if (this.failure) process.stderr.write(`  sync watcher's last failure: ${String(this.failure)}\n`);
        return false;
    }

    async stop(): Promise<void> {
        this.abort.abort();
        await this.loop;
    }
}

interface SyncResponse {
    next_batch: string;
    rooms?: { join?: Record<string, { timeline?: { events?: { content?: { body?: unknown } }[] } }> };
}

/**
 * Delivery latency: `count` messages sent one at a time, `gapMs` apart, each
 * timed from the start of its send until `watcher`'s /sync returned it
 * (a message not seen within `timeoutMs` is not counted).
 */
export async function deliveryLatencies(sender: Api, roomId: string, watcher: SyncWatcher, count: number, gapMs: number, tag: string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
        const body = `${tag} ${i}`;
        const t0 = performance.now();
        await sender.send(roomId, body, `${tag}-${i}`);
        if (await watcher.waitFor([body], 60_000)) out.push(watcher.seen.get(body)! - t0);
        await new Promise((r) => setTimeout(r, gapMs));
    }
    return out;
}
