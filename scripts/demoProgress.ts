/**
 * The demo's pure parts: how it prints progress (each step as it starts and
 * ends, with the time since the demo started and the step's own duration),
 * which engine events are steps, the estimate it prints first, and the
 * /etc/hosts block that makes the demo's name resolve.
 */

/** `m:ss` (`h:mm:ss` from one hour), minutes padded to two columns so the lines align. */
export function clock(ms: number): string {
    const total = Math.max(0, Math.floor(ms / 1000));
    const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
    const ss = String(s).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, " ")}:${ss}`;
}

/** `[ 3:12] deploying: SynapseHomeserver install ...` */
export function startLine(sinceStartMs: number, label: string): string {
    return `[${clock(sinceStartMs)}] ${label} ...`;
}

/** `[ 5:52] deploying: SynapseHomeserver install ... done (2:40)`; `failed` instead of `done` when it failed. */
export function endLine(sinceStartMs: number, label: string, tookMs: number, outcome: "done" | "failed" = "done"): string {
    return `[${clock(sinceStartMs)}] ${label} ... ${outcome} (${clock(tookMs).trim()})`;
}

/** `[12:00] still running: A (4:00), B (1:30)`: the steps that have not ended, so a long step is not silence. */
export function runningLine(sinceStartMs: number, running: { label: string; tookMs: number }[]): string {
    return `[${clock(sinceStartMs)}] still running: ${running.map((r) => `${r.label} (${clock(r.tookMs).trim()})`).join(", ")}`;
}

/**
 * Prints steps to `write` with a clock from `now()` at construction. A step
 * is `start`ed and `end`ed by its label; `tick()` prints the running steps.
 */
export class Progress {
    private readonly t0: number;
    private readonly running = new Map<string, number>();

    constructor(
        private readonly write: (line: string) => void,
        private readonly now: () => number = Date.now,
    ) {
        this.t0 = now();
    }

    start(label: string): void {
        this.running.set(label, this.now());
        this.write(startLine(this.now() - this.t0, label));
    }

    end(label: string, outcome: "done" | "failed" = "done"): void {
        const started = this.running.get(label);
        if (started === undefined) return;
        this.running.delete(label);
        this.write(endLine(this.now() - this.t0, label, this.now() - started, outcome));
    }

    /** A line that belongs to no step (details, warnings), on the same clock. */
    note(text: string): void {
        this.write(`[${clock(this.now() - this.t0)}] ${text}`);
    }

    tick(): void {
        if (this.running.size === 0) return;
        const now = this.now();
        this.write(
            runningLine(
                now - this.t0,
                [...this.running].map(([label, t]) => ({ label, tookMs: now - t })),
            ),
        );
    }

    /** Runs `fn` as one step: its start, and its end (done or failed) whatever happens. */
    async step<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
        this.start(label);
        try {
            const r = await fn();
            this.end(label);
            return r;
        } catch (e) {
            this.end(label, "failed");
            throw e;
        }
    }
}

/** The part of an engine event (the Automation API's `EngineEvent`) that tells a step's start and end. */
export interface StepEvent {
    resourcePreEvent?: { metadata: { op: string; urn: string; type: string } };
    resOutputsEvent?: { metadata: { op: string; urn: string; type: string } };
    resOpFailedEvent?: { metadata: { op: string; urn: string; type: string } };
}

/**
 * What the demo prints for a resource: the commands that run on the VM (the
 * steps that take time), as `deploying: <Component> <step>`: the component
 * that owns the command (the last component type in the URN) and the
 * command's name without the stack's prefix. Undefined for anything else
 * (components, keys, passwords: instant) and for steps with nothing to do.
 */
export function stepLabel(metadata: { op: string; urn: string; type: string }, stackPrefix: string): string | undefined {
    if (!metadata.type.startsWith("command:remote:") || metadata.op === "same" || metadata.op === "read") return undefined;
    const [typeChain, name] = metadata.urn.split("::").slice(-2);
    const owner = typeChain
        .split("$")
        .slice(0, -1)
        .map((t) => t.split(":").pop()!)
        .filter((t) => t !== "MatrixStack")
        .pop();
    const step = name.startsWith(stackPrefix) ? name.slice(stackPrefix.length) : name;
    const verb = metadata.op === "delete" ? "removing" : "deploying";
    return `${verb}: ${owner ? `${owner} ` : ""}${step}`;
}

/** Feeds engine events into `progress`: a command's step starts with its pre-event and ends with its outputs or its failure. */
export function engineEventsTo(progress: Progress, stackPrefix: string): (e: StepEvent) => void {
    return (e) => {
        const pre = e.resourcePreEvent?.metadata;
        const out = e.resOutputsEvent?.metadata;
        const failed = e.resOpFailedEvent?.metadata;
        const m = pre ?? out ?? failed;
        const label = m && stepLabel(m, stackPrefix);
        if (!label) return;
        if (pre) progress.start(label);
        else progress.end(label, failed ? "failed" : "done");
    };
}

/** What is already cached, and whether the VM runs with KVM or under software emulation (TCG). */
export interface EstimateInput {
    engineCached: boolean;
    imageCached: boolean;
    accel: "kvm" | "tcg" | "unknown";
}

/**
 * The time the demo will take, from what was measured on a 2-core machine
 * without usable KVM. A fresh clone took 54 minutes: 18 before the demo's
 * own steps (npm ci, the apt packages, and the engine's build, 7 of them),
 * the VM image 1, the boot 1, and the deployment 34 (Synapse's pip install
 * compiles psycopg2 inside the emulated VM while PostgreSQL installs beside
 * it). With KVM the VM runs at native speed; that was not measured here, so
 * it is given as a bound.
 */
export function estimateLines(e: EstimateInput): string[] {
    const parts: [string, number][] = [];
    if (!e.engineCached) parts.push(["building the Pulumi engine (first run only)", 7]);
    if (!e.imageCached) parts.push(["building the VM image (first run only)", 1]);
    parts.push(["booting the VM", 1]);
    if (e.accel === "kvm") {
        return [
            ...parts.map(([what, min]) => `  ${what}: about ${min} min`),
            "  deploying the stack: under 34 min (34 min measured without KVM; this machine has KVM, which runs the VM much faster)",
        ];
    }
    parts.push(["deploying the stack (software emulation: Synapse's pip install compiles in the VM)", 34]);
    const total = parts.reduce((t, [, m]) => t + m, 0);
    return [...parts.map(([what, min]) => `  ${what}: about ${min} min`), `  in all: about ${total} minutes on a 2-core machine`];
}

/** The lines that begin and end the demo's block in /etc/hosts. */
export const HOSTS_BEGIN = "# BEGIN pulumi-matrix demo (removed by npm run demo -- --down)";
export const HOSTS_END = "# END pulumi-matrix demo";

/** The hosts file without the demo's block (unchanged when it has none). */
export function withoutHostsEntry(text: string): string {
    const lines = text.split("\n");
    const begin = lines.indexOf(HOSTS_BEGIN);
    const end = lines.indexOf(HOSTS_END, begin);
    if (begin < 0 || end < 0) return text;
    return [...lines.slice(0, begin), ...lines.slice(end + 1)].join("\n");
}

/** The hosts file with the demo's block naming `names` at `address` (replacing an earlier block), at its end. */
export function withHostsEntry(text: string, address: string, names: string[]): string {
    const rest = withoutHostsEntry(text);
    const base = rest === "" || rest.endsWith("\n") ? rest : `${rest}\n`;
    return `${base}${HOSTS_BEGIN}\n${hostsLine(address, names)}\n${HOSTS_END}\n`;
}

/** One hosts line: the address, then the names. */
export function hostsLine(address: string, names: string[]): string {
    return `${address} ${names.join(" ")}`;
}
