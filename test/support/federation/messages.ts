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
    body?: string;
    failed?: boolean;
}

/** What one client receives in one room from others, in order. */
export class Inbox {
    readonly received: Received[] = [];

    constructor(
        private readonly user: SuiteUser,
        readonly roomId: string,
    ) {
        user.client.on(sdk.RoomEvent.Timeline, (ev, room, toStart) => {
            if (toStart || room?.roomId !== roomId || ev.getSender() === user.userId) return;
            if (ev.getType() !== "m.room.message" && ev.getType() !== "m.room.encrypted") return;
            const slot: Received = { eventId: ev.getId()!, at: Date.now() };
            this.received.push(slot);
            void user.client.decryptEventIfNeeded(ev).then(
                () => {
                    if (ev.isDecryptionFailure()) slot.failed = true;
                    else slot.body = (ev.getContent() as { body?: string }).body;
                },
                () => (slot.failed = true),
            );
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

    failures(): number {
        return this.received.filter((r) => r.failed).length;
    }

    /** Waits until `count` messages of `tag` arrived (or `timeoutMs` passed), then checks: each once, in order. */
    async expect(tag: string, count: number, timeoutMs: number): Promise<BatchResult> {
        const deadline = Date.now() + timeoutMs;
        while (this.seqs(tag).length < count && Date.now() < deadline) await sleep(200);
        await sleep(1000); // a duplicate arriving late is caught too
        const seqs = this.seqs(tag);
        const expected = [...Array(count).keys()];
        const ok = seqs.length === count && seqs.every((s, i) => s === expected[i]);
        return { tag, sent: count, received: seqs.length, distinct: new Set(seqs).size, inOrder: ok, failures: this.failures() };
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
}

/** Sends `count` text messages `<tag> #<n>` one after another (each waits for the server's answer); resolves with when each was sent. */
export async function sendBatch(user: SuiteUser, roomId: string, tag: string, count: number, gapMs = 0): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
        times.push(Date.now());
        await user.client.sendTextMessage(roomId, `${tag} #${i}`);
        if (gapMs) await sleep(gapMs);
    }
    return times;
}

/** One line of the report: "a→b 100 sent, 100 received once, in order". */
export function describeBatch(r: BatchResult): string {
    return `${r.tag}: ${r.sent} sent, ${r.received} received (${r.distinct} distinct)${r.inOrder ? ", once each, in order" : ", NOT once each in order"}`;
}
