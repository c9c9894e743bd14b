// Counting messages across federation: every message a sender sends carries
// its batch's tag and a sequence number; the receiving client records, in the
// order its sync delivers them, what it decrypted. A batch passes when the
// receiver saw sequence numbers 0..N-1 each exactly once, in order.

import * as sdk from "matrix-js-sdk";

import { sleep } from "../integration/processes";
import { type SuiteUser } from "./client";

interface Received {
    readonly eventId: string;
    readonly at: number;
    /** It came as m.room.encrypted. */
    readonly encrypted: boolean;
    body?: string;
    /** It did not decrypt (yet). */
    failed?: boolean;
    /** It did not decrypt at first, but did once its key arrived. */
    late?: boolean;
}

/** What one client receives in one room from others, in order. */
export class Inbox {
    readonly received: Received[] = [];
    /** When sync answered with a limited timeline for the room (more new events than the filter's limit: a gap the client pages back to fill). */
    readonly limitedSyncs: number[] = [];

    constructor(
        private readonly user: SuiteUser,
        readonly roomId: string,
    ) {
        // The SDK resets the room's live timeline when sync says `limited` and the events do not join what it has.
        user.client.on(sdk.RoomEvent.TimelineReset, (room) => {
            if (room?.roomId === roomId) this.limitedSyncs.push(Date.now());
        });
        user.client.on(sdk.RoomEvent.Timeline, (ev, room, toStart) => {
            if (toStart || room?.roomId !== roomId || ev.getSender() === user.userId) return;
            if (ev.getType() !== "m.room.message" && ev.getType() !== "m.room.encrypted") return;
            const slot: Received = { eventId: ev.getId()!, at: Date.now(), encrypted: ev.isEncrypted() };
            this.received.push(slot);
            // A room key may come after the message it opens (both cross over federation, by different routes): the
            // SDK decrypts again when it does, as Element shows the message once its key arrived. Until then it counts as failed.
            const settle = () => {
                if (ev.isBeingDecrypted()) return;
                if (ev.isDecryptionFailure()) slot.failed = true;
                else {
                    if (slot.failed) slot.late = true;
                    slot.failed = false;
                    slot.body = (ev.getContent() as { body?: string }).body;
                }
            };
            ev.on(sdk.MatrixEventEvent.Decrypted, settle);
            void user.client.decryptEventIfNeeded(ev).then(settle, () => (slot.failed = true));
        });
    }

    /** Sequence numbers of `tag` received so far, in order of arrival (undecrypted ones are not counted). */
    seqs(tag: string): number[] {
        const prefix = `${tag} #`;
        return this.received.filter((r) => r.body?.startsWith(prefix)).map((r) => Number(r.body!.slice(prefix.length)));
    }

    /** When sequence number `seq` of `tag` arrived. */
    arrival(tag: string, seq: number): number | undefined {
        return this.received.find((r) => r.body === `${tag} #${seq}`)?.at;
    }

    /** Events that do not decrypt (so far). */
    failures(): number {
        return this.received.filter((r) => r.failed).length;
    }

    /** Events that decrypted only once their room key arrived later. */
    lateKeys(): number {
        return this.received.filter((r) => r.late).length;
    }

    /**
     * Waits until `count` messages of `tag` arrived by sync (or `timeoutMs`
     * passed), then checks: each once, in order. When sync left a gap (it
     * delivers what its server persisted live, not what the server pulls in
     * later by backfill), the room's history as the receiving server serves it
     * (`/messages`, which backfills from the other server, as a client
     * scrolling up makes it do) must hold every message once, in order: read
     * again every few seconds until it does or `historyTimeoutMs` passed (the
     * server backfills in the background, and retries a failed pull only after
     * a backoff). The result says how many the history held and when
     * (`viaHistory`, `historyMs`). `onGap` runs once when sync left a gap, before the history is read
     * (to record the state of both servers).
     */
    async expect(
        tag: string,
        count: number,
        timeoutMs: number,
        opts: { historyTimeoutMs?: number; onGap?: (missing: number[]) => Promise<void> } = {},
    ): Promise<BatchResult> {
        const deadline = Date.now() + timeoutMs;
        // Sync delivers in order: once the last message came by sync, an earlier one still missing 10 s later comes by backfill only.
        const settled = () => {
            const last = this.arrival(tag, count - 1);
            return last !== undefined && Date.now() - last > 10_000;
        };
        while (this.seqs(tag).length < count && Date.now() < deadline && !settled()) await sleep(200);
        await sleep(1000); // a duplicate arriving late is caught too
        const seqs = this.seqs(tag);
        const expected = [...Array(count).keys()];
        const inOrder = (l: number[]) => l.length === count && l.every((s, i) => s === expected[i]);
        const base = { tag, sent: count, received: seqs.length, distinct: new Set(seqs).size, failures: this.failures() };
        if (inOrder(seqs)) return { ...base, inOrder: true, missing: [] };
        const missing = expected.filter((n) => !seqs.includes(n));
        // Sync never delivers one twice nor out of order; the history gets no second chance at that.
        if (seqs.length !== new Set(seqs).size || !seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)) return { ...base, inOrder: false, missing };
        // Record both servers' state now, before a read of the history makes the receiver backfill what push did not bring.
        await opts.onGap?.(missing);
        const started = Date.now();
        // A read that fails (the server answers 500 while its database restarts) is tried again, as a client pages again.
        let failed: unknown;
        const read = async () => {
            try {
                failed = undefined;
                return await this.history(tag);
            } catch (err) {
                failed = err;
                return [];
            }
        };
        let history = await read();
        while (!inOrder(history) && Date.now() - started < (opts.historyTimeoutMs ?? 0)) {
            await sleep(5000);
            history = await read();
        }
        if (failed !== undefined) throw failed;
        const ok = inOrder(history);
        return { ...base, inOrder: ok, missing, viaHistory: history.length, historyMs: ok ? Date.now() - started : undefined };
    }

    /** The sequence numbers of `tag` in the room's history on the receiving server, oldest first (decrypted). */
    private async history(tag: string): Promise<number[]> {
        const client = this.user.client;
        const mapper = client.getEventMapper();
        const prefix = `${tag} #`;
        const found: number[] = [];
        let from: string | null = null;
        for (let page = 0; page < 30; page++) {
            const r = await client.createMessagesRequest(this.roomId, from, 100, sdk.Direction.Backward);
            for (const raw of r.chunk) {
                if (raw.sender === this.user.userId) continue;
                const ev = mapper(raw);
                await client.decryptEventIfNeeded(ev);
                const body = (ev.getContent() as { body?: string }).body;
                if (body?.startsWith(prefix)) found.unshift(Number(body.slice(prefix.length)));
            }
            if (found.includes(0) || !r.end || r.chunk.length === 0) break;
            from = r.end;
        }
        return found;
    }
}

export interface BatchResult {
    tag: string;
    sent: number;
    received: number;
    distinct: number;
    inOrder: boolean;
    /** Events of the room that did not decrypt (all batches). */
    failures: number;
    /** Sequence numbers never received (decrypted) by sync. */
    missing: number[];
    /** Sync left a gap: how many of the batch the room's history on the receiving server holds (it passed only if all, in order). */
    viaHistory?: number;
    /** Sync left a gap: how long until the room's history held all of the batch, in order. */
    historyMs?: number;
}

/** A batch of at least `min` messages that goes on while `done()` is false, and `after` more once it is true. */
export interface Until {
    min: number;
    done: () => boolean;
    after: number;
}

/** What a batch's sender saw: when each message went out, and how many attempts failed (the server was down). */
export interface SentBatch {
    readonly times: number[];
    /** The event ID the sender's server gave each message (the same index as `times`). */
    readonly eventIds: string[];
    retries: number;
}

/**
 * Sends `count` text messages `<tag> #<n>` one after another (each waits for
 * the server's answer). A failed send is retried with the same transaction ID,
 * as a client does while its server restarts: the server answers a repeated
 * transaction with the event it already made, so a retry never duplicates.
 */
export async function sendBatch(user: SuiteUser, roomId: string, tag: string, count: number | Until, gapMs = 0): Promise<SentBatch> {
    const sent: SentBatch = { times: [], eventIds: [], retries: 0 };
    const until: Until = typeof count === "number" ? { min: count, done: () => true, after: 0 } : count;
    let doneAt: number | undefined;
    for (let i = 0; ; i++) {
        if (doneAt === undefined && until.done()) doneAt = i;
        if (i >= until.min && doneAt !== undefined && i >= doneAt + until.after) break;
        sent.times.push(Date.now());
        const txnId = `${tag}-${i}-${Date.now()}`;
        let sending = user.client.sendEvent(roomId, "m.room.message" as never, { msgtype: "m.text", body: `${tag} #${i}` } as never, txnId);
        for (let attempt = 0; ; attempt++) {
            try {
                sent.eventIds[i] = (await sending).event_id;
                break;
            } catch (err) {
                // The SDK gave up (its own retries with backoff are spent): resend the same event, as Element's "Resend" does.
                const room = user.client.getRoom(roomId);
                const echo = room
                    ?.getLiveTimeline()
                    .getEvents()
                    .find((e) => e.getTxnId() === txnId);
                // The server made the event though its answer was lost (it restarted): sync brought it back, it is sent.
                if (echo && echo.status === null) {
                    sent.eventIds[i] = echo.getId()!;
                    break;
                }
                const local = echo?.status === sdk.EventStatus.NOT_SENT ? echo : undefined;
                if (attempt >= 60 || !room || !local) throw err;
                sent.retries++;
                await sleep(1000);
                sending = user.client.resendEvent(local, room);
            }
        }
        if (gapMs) await sleep(gapMs);
    }
    return sent;
}

/** The time from `since` until sync first delivered a message of `tag` sent at or after `since` (delivery resumed). */
export function resumeMs(inbox: Inbox, tag: string, sent: SentBatch, since: number): number | undefined {
    const arrivals = sent.times.flatMap((t, i) => (t >= since ? [inbox.arrival(tag, i)].filter((a) => a !== undefined) : []));
    return arrivals.length ? Math.min(...arrivals) - since : undefined;
}

/** One line of the report: "a→b 100 sent, 100 received once, in order". */
export function describeBatch(r: BatchResult): string {
    const problems = r.inOrder ? "" : ` (missing ${JSON.stringify(r.missing)}, ${r.failures} undecryptable in the room)`;
    const after = r.historyMs === undefined ? "" : ` (complete after ${(r.historyMs / 1000).toFixed(1)} s)`;
    const history = r.viaHistory === undefined ? "" : `; sync left a gap: ${r.viaHistory} in the room's history after backfill${after}`;
    return (
        `${r.tag}: ${r.sent} sent, ${r.received} received by sync (${r.distinct} distinct)${history}` +
        (r.inOrder ? ", once each, in order" : `, NOT once each in order${problems}`)
    );
}
