// What the federation suite records when a receiving client's history lacks
// messages: the state of both servers' federation bookkeeping for the room,
// and every log line of either server that names one of the missing events or
// is about catching up, missing events or backfill. Written to a directory of
// its own under .e2e/ (kept after the run), so a failure in CI can be read
// afterwards.

import * as fs from "node:fs";
import * as path from "node:path";

import { type Homeserver } from "../support/federation/homeserver";

/** Where evidence goes: $FEDERATION_EVIDENCE_DIR or .e2e/federation-evidence. */
export const EVIDENCE_ROOT = process.env.FEDERATION_EVIDENCE_DIR ?? path.resolve(__dirname, "..", "..", ".e2e", "federation-evidence");

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function sql(hs: Homeserver, query: string): Promise<string> {
    const settings = hs.plan.postgres.kind === "local" ? hs.plan.postgres.settings : undefined;
    try {
        return await hs.pg.psql(query, { db: settings?.database });
    } catch (err) {
        return `(failed: ${(err as Error).message})`;
    }
}

/**
 * Records the state of `origin` (which sent the events) and `receiver`
 * (whose history lacks `missingIds`) for `roomId`; returns the directory.
 */
export async function recordGap(
    label: string,
    roomId: string,
    origin: Homeserver,
    receiver: Homeserver,
    batchIds: readonly string[],
    missingIds: readonly string[],
): Promise<string> {
    const dir = path.join(EVIDENCE_ROOT, `${new Date().toISOString().replace(/[:.]/g, "-")}-${label.replace(/[^a-z0-9]+/gi, "-")}`);
    fs.mkdirSync(dir, { recursive: true });
    const room = quote(roomId);
    const ids = `ARRAY[${batchIds.map(quote).join(",") || "''"}]`;
    const peer = quote(receiver.spec.serverName);
    const eventsOf = `SELECT event_id, stream_ordering, topological_ordering, outlier, instance_name, received_ts FROM events WHERE event_id = ANY(${ids}) ORDER BY stream_ordering;`;
    const parts: [string, Homeserver, string][] = [
        ["origin: the batch's events", origin, eventsOf],
        ["origin: destinations", origin, `SELECT * FROM destinations WHERE destination = ${peer};`],
        ["origin: destination_rooms", origin, `SELECT * FROM destination_rooms WHERE destination = ${peer} AND room_id = ${room};`],
        ["origin: federation_stream_position", origin, "SELECT * FROM federation_stream_position;"],
        ["origin: forward extremities", origin, `SELECT * FROM event_forward_extremities WHERE room_id = ${room};`],
        ["receiver: the batch's events", receiver, eventsOf],
        ["receiver: backward extremities", receiver, `SELECT * FROM event_backward_extremities WHERE room_id = ${room};`],
        ["receiver: forward extremities", receiver, `SELECT * FROM event_forward_extremities WHERE room_id = ${room};`],
        ["receiver: failed pull attempts", receiver, `SELECT * FROM event_failed_pull_attempts WHERE room_id = ${room};`],
        // Received but not yet handled: a PDU waits here until the room's inbound lock lets a reader process it.
        [
            "receiver: inbound staging",
            receiver,
            `SELECT origin, event_id, received_ts FROM federation_inbound_events_staging WHERE room_id = ${room} ORDER BY received_ts;`,
        ],
        ["receiver: locks", receiver, "SELECT * FROM worker_locks;"],
        ["receiver: destinations", receiver, `SELECT * FROM destinations WHERE destination = ${quote(origin.spec.serverName)};`],
        [
            "receiver: events edges of the batch",
            receiver,
            `SELECT event_id, prev_event_id FROM event_edges WHERE event_id = ANY(${ids}) OR prev_event_id = ANY(${ids});`,
        ],
    ];
    const out: string[] = [`room ${roomId}`, `batch (in order): ${batchIds.join(" ")}`, `missing from the receiver's history: ${missingIds.join(" ")}`];
    for (const [title, hs, query] of parts) out.push(`\n== ${title} (${hs.spec.serverName})\n${query}\n${await sql(hs, query)}`);
    fs.writeFileSync(path.join(dir, "databases.txt"), out.join("\n") + "\n");
    // Log lines: any naming a missing event, and the sender's catch-up, the receiver's missing-events and backfill.
    const about =
        /Catching up|catch.?up|missing events|prev_events|backfill|Backfill|get_missing_events|NotRetryingDestination|exited|restarted|Marking origin|as up|response to transaction|Failed to handle PDU|staged|lock|OperationalError|InterfaceError|retry/;
    for (const hs of [origin, receiver]) {
        for (const [name, proc] of [["main", hs.main] as const, ...hs.workers]) {
            const whole = proc.log();
            // The whole log too: what a stall looks like is not always in the lines the filter knows.
            fs.writeFileSync(path.join(dir, `${hs.spec.serverName}-${name}.full.log`), whole);
            const lines = whole.split("\n");
            const hits = lines.filter((l) => about.test(l) || missingIds.some((id) => l.includes(id)));
            if (hits.length) fs.writeFileSync(path.join(dir, `${hs.spec.serverName}-${name}.log`), hits.join("\n") + "\n");
        }
    }
    return dir;
}
