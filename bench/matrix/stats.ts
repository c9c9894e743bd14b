// The pure part of `npm run bench:matrix`: percentiles, rates, memory grouped
// by process, the printed table and the targets. No I/O here, so
// test/unit/bench.test.ts checks it without a homeserver.

/** The value at percentile `p` (0-100) of `values`, nearest-rank (an observed value, never interpolated); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
    if (values.length === 0) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Latencies of one run and its rate. */
export interface LatencySummary {
    count: number;
    /** Requests that failed (not counted in the latencies). */
    errors: number;
    p50: number;
    p95: number;
    p99: number;
    /** Completed requests per second of the run's wall time. */
    perSecond: number;
}

/** Summarizes `latenciesMs` of requests that completed within `wallMs`. */
export function summarize(latenciesMs: readonly number[], wallMs: number, errors = 0): LatencySummary {
    const round = (n: number) => Math.round(n * 10) / 10;
    return {
        count: latenciesMs.length,
        errors,
        p50: round(percentile(latenciesMs, 50)),
        p95: round(percentile(latenciesMs, 95)),
        p99: round(percentile(latenciesMs, 99)),
        perSecond: wallMs > 0 ? round((latenciesMs.length * 1000) / wallMs) : NaN,
    };
}

/** One process of a homeserver as /proc shows it. */
export interface ProcSample {
    pid: number;
    /** /proc/<pid>/comm */
    comm: string;
    /** /proc/<pid>/cmdline, NUL-separated arguments. */
    argv: string[];
    /** VmHWM: the process's peak resident set, in KiB. */
    peakKb: number;
}

/**
 * What a process is, for the memory table: Synapse's main process, a worker
 * by name (its own config file, the last `.yaml` argument), or the program
 * (postgres, redis-server, nginx).
 */
export function processLabel(s: Pick<ProcSample, "comm" | "argv">): string {
    const args = s.argv.join(" ");
    if (args.includes("synapse.app.homeserver")) return "synapse main";
    if (args.includes("synapse.app.generic_worker")) {
        const own = s.argv.filter((a) => /\.ya?ml$/.test(a) && !a.endsWith("homeserver.yaml")).pop();
        return own ? `synapse ${own.replace(/^.*\//, "").replace(/\.ya?ml$/, "")}` : "synapse worker";
    }
    return s.comm;
}

/** Peak RSS per kind of process: the largest single process, how many there were, and their peaks added up (shared pages counted in each). */
export interface MemoryRow {
    process: string;
    processes: number;
    peakRssMb: number;
    sumPeakRssMb: number;
}

/** Groups samples by `processLabel`, largest first. */
export function groupMemory(samples: readonly ProcSample[]): MemoryRow[] {
    const rows = new Map<string, MemoryRow>();
    for (const s of samples) {
        const label = processLabel(s);
        const mb = s.peakKb / 1024;
        const row = rows.get(label) ?? { process: label, processes: 0, peakRssMb: 0, sumPeakRssMb: 0 };
        row.processes++;
        row.peakRssMb = Math.max(row.peakRssMb, Math.round(mb));
        row.sumPeakRssMb = Math.round(row.sumPeakRssMb + mb);
        rows.set(label, row);
    }
    return [...rows.values()].sort((a, b) => b.sumPeakRssMb - a.sumPeakRssMb);
}

/** The three configurations side by side. */
export type ConfigId = "a" | "b" | "c";

/** The shapes of the event-send load. */
export type Shape = "many-rooms" | "one-room";

export interface SendResult extends LatencySummary {
    shape: Shape;
    senders: number;
}

/** Everything measured of one configuration. */
export interface ConfigResult {
    id: ConfigId;
    name: string;
    /** Synapse processes of one of its homeservers. */
    synapseProcesses: number;
    send: SendResult[];
    /** Send until another client's /sync on the same server returned it. */
    sync: LatencySummary;
    /** Send on hs1 until a client's /sync on hs2 returned it, one message at a time. */
    federation: LatencySummary;
    /** Messages from 10 senders on hs1 seen by hs2's client per second, first send to last seen. */
    federationPerSecond: number;
    /** Peak RSS of hs1's processes. */
    memory: MemoryRow[];
}

export const sendOf = (c: ConfigResult, shape: Shape, senders: number): SendResult | undefined =>
    c.send.find((s) => s.shape === shape && s.senders === senders);

/** `a / b` to two digits ("2.10x"), "-" when either is missing. */
export function ratio(a: number | undefined, b: number | undefined): string {
    if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "-";
    return `${(a / b).toFixed(2)}x`;
}

/** A fixed-width table: the first column left-aligned, the others right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const num = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

/** The comparison table: one row per metric, a column per configuration, and the ratios a/b and a/c. */
export function comparisonRows(configs: readonly ConfigResult[]): string[][] {
    const by = (id: ConfigId) => configs.find((c) => c.id === id);
    const rows: string[][] = [];
    const metric = (name: string, get: (c: ConfigResult) => number | undefined, digits = 0) => {
        const [a, b, c] = (["a", "b", "c"] as const).map((id) => {
            const cfg = by(id);
            return cfg ? get(cfg) : undefined;
        });
        rows.push([name, num(a, digits), num(b, digits), num(c, digits), ratio(a, b), ratio(a, c)]);
    };
    const shapes = [...new Set(configs.flatMap((c) => c.send.map((s) => `${s.shape}:${s.senders}`)))];
    for (const key of shapes) {
        const [shape, senders] = [key.split(":")[0] as Shape, Number(key.split(":")[1])];
        const label = `send ${shape} x${senders}`;
        metric(`${label} p50 ms`, (c) => sendOf(c, shape, senders)?.p50);
        metric(`${label} p95 ms`, (c) => sendOf(c, shape, senders)?.p95);
        metric(`${label} p99 ms`, (c) => sendOf(c, shape, senders)?.p99);
        metric(`${label} msgs/s`, (c) => sendOf(c, shape, senders)?.perSecond, 1);
    }
    metric("same-server /sync p50 ms", (c) => c.sync.p50);
    metric("same-server /sync p95 ms", (c) => c.sync.p95);
    metric("federation delivery p50 ms", (c) => c.federation.p50);
    metric("federation delivery p95 ms", (c) => c.federation.p95);
    metric("federation sustained msgs/s", (c) => c.federationPerSecond, 1);
    metric("Synapse processes", (c) => c.synapseProcesses);
    // Each Synapse process is its own memory; PostgreSQL's and nginx's processes share most of theirs, so their largest counts once.
    metric("peak RSS MiB (each Synapse + largest of others)", (c) =>
        c.memory.reduce((n, m) => n + (m.process.startsWith("synapse") ? m.sumPeakRssMb : m.peakRssMb), 0),
    );
    metric("peak RSS, Synapse MiB", (c) => c.memory.filter((m) => m.process.startsWith("synapse")).reduce((n, m) => n + m.sumPeakRssMb, 0));
    return rows;
}

export const COMPARISON_HEADER = ["metric", "(a) default", "(b) SQLite", "(c) PostgreSQL", "a/b", "a/c"] as const;

/** One of the targets, with what was measured. */
export interface TargetResult {
    target: string;
    measured: string;
    met: boolean | undefined;
}

/**
 * The targets: (a) event-send p50 <= 100 ms at 50 senders (in both shapes);
 * (a) at least 2x the msgs/s of (b) at equal or better p95 (at 50 senders,
 * both shapes); federation delivery p50 <= 500 ms (a). `met` is undefined
 * when a configuration was not measured.
 */
export function evaluateTargets(configs: readonly ConfigResult[]): TargetResult[] {
    const a = configs.find((c) => c.id === "a");
    const b = configs.find((c) => c.id === "b");
    const out: TargetResult[] = [];
    for (const shape of ["many-rooms", "one-room"] as const) {
        const sa = a && sendOf(a, shape, 50);
        const sb = b && sendOf(b, shape, 50);
        out.push({
            target: `(a) event-send p50 <= 100 ms at 50 senders, ${shape}`,
            measured: sa ? `${sa.p50} ms` : "-",
            met: sa ? sa.p50 <= 100 : undefined,
        });
        out.push({
            target: `(a) >= 2x msgs/s of (b) at equal or better p95, 50 senders, ${shape}`,
            measured: sa && sb ? `${ratio(sa.perSecond, sb.perSecond)} (${sa.perSecond} vs ${sb.perSecond} msgs/s); p95 ${sa.p95} vs ${sb.p95} ms` : "-",
            met: sa && sb ? sa.perSecond >= 2 * sb.perSecond && sa.p95 <= sb.p95 : undefined,
        });
    }
    out.push({
        target: "(a) federation delivery p50 <= 500 ms",
        measured: a ? `${a.federation.p50} ms` : "-",
        met: a ? a.federation.p50 <= 500 : undefined,
    });
    return out;
}

/** The README's table: the measured values of each configuration and the ratios (Markdown). */
export function markdownTable(configs: readonly ConfigResult[]): string {
    const rows = comparisonRows(configs);
    const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
    return [line(COMPARISON_HEADER), line(COMPARISON_HEADER.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

/** The README's targets: each next to what was measured (Markdown). */
export function markdownTargets(targets: readonly TargetResult[]): string {
    const verdict = (t: TargetResult) => (t.met === undefined ? "not measured" : t.met ? "met" : "**missed**");
    return ["| target | measured | |", "| --- | --- | --- |", ...targets.map((t) => `| ${t.target} | ${t.measured} | ${verdict(t)} |`)].join("\n");
}
