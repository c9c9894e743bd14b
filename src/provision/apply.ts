import { STATE_DIR } from "../render/drift";
import { heredoc, indent, lines, raw, Sh, sh, shQuote } from "./sh";

/**
 * Declarative apply: a service's step is a set of files, a prune rule, a
 * check and handlers. The script writes each file only when it differs,
 * removes the files the set wrote before and no longer renders, checks the
 * result, and runs the handlers only when something in the set changed.
 * Change tracking is per set, and survives a run that dies: a set is
 * pending on the host (STATE_DIR/pending/<set>) from before its first file
 * is replaced until its handlers all succeeded, and a run that finds it
 * pending runs its check and handlers again.
 */

/** One file a step manages. */
export interface ManagedFile {
    /** Absolute path; `raw()` for a path only the host knows (e.g. `"/etc/postgresql/$major/..."`). */
    path: string | Sh;
    /** The content, taken literally; or `generate`, a command whose stdout is the content (built on the host). */
    content?: string;
    generate?: Sh;
    /** Octal mode. Default 0644. */
    mode?: string;
    /** Default root. */
    owner?: string;
    /** Default root. */
    group?: string;
    /**
     * The content is secret: the drift record keeps only its SHA-256, never a
     * copy, and the drift check never shows it. Default: the set's `secret`.
     */
    secret?: boolean;
}

/** How to tell that a unit is up after a (re)start. */
export type HealthCheck =
    /** An HTTP endpoint on the host that answers 2xx when the service is healthy. */
    | { url: string }
    /** A command that succeeds once the service is ready (e.g. pg_isready). */
    | { command: Sh };

/** A systemd unit a handler acts on. */
export interface ServiceUnit {
    /** Unit name, e.g. matrix-synapse.service. */
    name: string;
    /** Checked after every (re)start; failing it prints the unit's last log lines and stops the script. */
    health?: HealthCheck;
    /** How long the health check may take, in seconds. Default 300 (DEFAULT_HEALTH_TIMEOUT). */
    healthTimeout?: number;
}

/** What runs when a file set changed. */
export type Handler =
    | { kind: "daemon-reload" }
    /** Restart the unit now if it runs (then wait for health); if it does not run, owe the restart to the step that starts it. */
    | { kind: "restart"; unit: ServiceUnit }
    /** Hand a restart to a later script (e.g. secrets written before the config that starts the service). */
    | { kind: "owe-restart"; unit: ServiceUnit }
    /** Run `check` first (e.g. `nginx -t`); reload only when it passes, fail the step otherwise. Skipped when the unit is not running. */
    | { kind: "reload"; unit: ServiceUnit; check?: Sh }
    /** Restart units one after another, each healthy before the next: no moment without a running process of the group. */
    | { kind: "rolling-restart"; units: ServiceUnit[] }
    /** Stop every unit, then start them all (Synapse requires it when the federation sender list changes). */
    | { kind: "stop-start"; units: ServiceUnit[] }
    /** Stop the running units now; the step's `ensureRunning` starts them again, so every one is stopped before any starts. */
    | { kind: "stop"; units: ServiceUnit[] }
    /**
     * Restart, one after another, the running units a file on the host lists
     * (`<unit> <health URL>` per line, in order), each healthy before the next.
     * For processes another component adds later (Synapse's workers).
     */
    | { kind: "rolling-restart-listed"; list: string }
    /** A command of the service's own. */
    | { kind: "run"; command: Sh };

/** A service's files, pruned and handled together. */
export interface FileSet {
    /** Names the set in change tracking and in its manifest (letters, digits, -). */
    name: string;
    files: ManagedFile[];
    /** Remove files this set wrote on an earlier run and no longer renders. Default true. */
    prune?: boolean;
    /**
     * Checks the files in place once they are written, before any handler
     * runs (`nginx -t`, `nft -c -f <ruleset>`). When it fails, every file the
     * set replaced or removed in this run is put back as it was (content,
     * mode, owner), a new one is removed, no handler runs, and the step fails
     * with the check's output: an invalid file is never left for the next
     * restart or boot. Runs when the set changed (or is pending). Default: none.
     */
    check?: Sh;
    /** Run in order when a file of the set changed (or was removed); an earlier run that died before they all succeeded counts as a change. */
    onChange?: Handler[];
    /**
     * Every file of the set is secret (see `ManagedFile.secret`). Default: true
     * for a set named `*-secrets`, so a new secret step cannot leak a copy into
     * the drift records by forgetting the flag; false otherwise.
     */
    secret?: boolean;
}

const SET_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Writes one file of a set; the last word tells the drift record whether it may keep a copy. */
function writeStep(set: string, f: ManagedFile, setSecret: boolean): Sh {
    const kind = (f.secret ?? setSecret) ? "secret" : "readable";
    const args = sh`pm_write ${set} ${pathOf(f.path)} ${f.mode ?? "0644"} ${f.owner ?? "root"} ${f.group ?? "root"} ${kind}`;
    if (f.generate) return sh`${f.generate} | ${args}`;
    if (f.content === undefined) throw new Error(`file ${String(f.path)}: content or generate is required`);
    return heredoc(args, f.content);
}

function pathOf(p: string | Sh): string | Sh {
    if (typeof p === "string" && !p.startsWith("/")) throw new Error(`managed file path ${p} is not absolute`);
    return p;
}

/** How long a unit's health check may take after a (re)start, in seconds, unless it says (`ServiceUnit.healthTimeout`). */
export const DEFAULT_HEALTH_TIMEOUT = 300;

/**
 * A step's timeout (`hostScript`'s `timeout`) that fits restarting `units`
 * processes one after another, each waiting up to `healthSeconds` for its
 * health check, plus `baseMinutes` for the rest of the step. A step stopped
 * by its timeout is finished by the next run (its sets stay pending), but
 * `pulumi up` fails; so a rolling restart of N workers gets N health waits.
 */
export function restartTimeout(units: number, baseMinutes = 10, healthSeconds = DEFAULT_HEALTH_TIMEOUT): string {
    return `${baseMinutes + Math.ceil((units * healthSeconds) / 60)}m`;
}

/** A unit whose name and health URL may be shell expressions (`raw('"$unit"')`), known only on the host. */
interface UnitRef {
    name: string | Sh;
    health?: { url: string | Sh } | { command: Sh };
    healthTimeout?: number;
}

/** One shell word of text and shell expressions: quoted text as one piece when it is all text (as before), else pieces joined. */
function word(...parts: (string | Sh)[]): Sh {
    const merged: (string | Sh)[] = [];
    for (const p of parts) {
        const last = merged[merged.length - 1];
        if (typeof p === "string" && typeof last === "string") merged[merged.length - 1] = last + p;
        else if (p !== "") merged.push(p);
    }
    return raw(merged.map((p) => (p instanceof Sh ? p.text : shQuote(p))).join(""));
}

/** A condition: a restart of `unit` was owed (`owe-restart`, `pm_owe`) and is not taken yet. */
export function isOwed(unit: ServiceUnit): Sh {
    return sh`[ -e ${`${STATE_DIR}/owed-restart/${unit.name}`} ]`;
}

/** Waits for a unit's health check; on failure prints its last log lines and stops the script. */
export function healthWait(unit: UnitRef): Sh {
    if (!unit.health) {
        return sh`systemctl is-active -q ${unit.name} || { echo ${word(unit.name, " is not running. Last log lines:")} >&2; journalctl -u ${unit.name} -n 40 --no-pager -o cat >&2 || true; exit 1; }`;
    }
    const seconds = unit.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT;
    const probe = "url" in unit.health ? sh`curl -fsS -m 2 -o /dev/null ${unit.health.url}` : unit.health.command;
    const what = "url" in unit.health ? ["answer ", unit.health.url] : ["become ready"];
    return lines([
        sh`pm_ok=0`,
        sh`for i in $(seq 1 ${seconds}); do`,
        sh`    if ${probe}; then pm_ok=1; break; fi`,
        sh`    if [ "$(systemctl show -p ActiveState --value ${unit.name})" = failed ]; then break; fi`,
        sh`    sleep 1`,
        sh`done`,
        sh`if [ "$pm_ok" != 1 ]; then`,
        sh`    echo ${word(unit.name, " did not ", ...what, ` within ${seconds} s. Last log lines:`)} >&2`,
        sh`    journalctl -u ${unit.name} -n 40 --no-pager -o cat >&2 || true`,
        sh`    exit 1`,
        sh`fi`,
    ]);
}

function restartNow(unit: UnitRef): Sh {
    return lines([sh`echo ${word("restarting ", unit.name)}`, sh`systemctl restart ${unit.name}`, healthWait(unit)]);
}

/** Runs handlers only while `condition` (a shell test) holds; `otherwise`, if given, when it does not. */
export function when(condition: Sh, handlers: Handler[], otherwise: Handler[] = []): Handler {
    const steps = (hs: Handler[]) => indent(lines(hs.map(handlerStep)));
    return {
        kind: "run",
        command: lines([sh`if ${condition}; then`, steps(handlers), ...(otherwise.length ? [sh`else`, steps(otherwise)] : []), sh`fi`]),
    };
}

/** The shell code of one handler. */
export function handlerStep(h: Handler): Sh {
    switch (h.kind) {
        case "daemon-reload":
            return sh`systemctl daemon-reload`;
        case "restart":
            return lines([sh`if systemctl is-active -q ${h.unit.name}; then`, indent(restartNow(h.unit)), sh`else`, sh`    pm_owe ${h.unit.name}`, sh`fi`]);
        case "owe-restart":
            return sh`pm_owe ${h.unit.name}`;
        case "reload":
            return lines([
                sh`if systemctl is-active -q ${h.unit.name}; then`,
                ...(h.check
                    ? [sh`    if ! ${h.check}; then echo ${`${h.unit.name}: the new configuration fails its check; not reloading`} >&2; exit 1; fi`]
                    : []),
                sh`    systemctl reload ${h.unit.name}; echo ${`reloaded ${h.unit.name}`}`,
                sh`fi`,
            ]);
        case "rolling-restart":
            return lines(h.units.map((u) => lines([sh`if systemctl is-active -q ${u.name}; then`, indent(restartNow(u)), sh`fi`])));
        case "stop-start":
            return lines([
                sh`echo ${`stopping ${h.units.map((u) => u.name).join(" ")}, then starting them together`}`,
                sh`systemctl stop ${h.units.map((u) => u.name)}`,
                sh`systemctl start ${h.units.map((u) => u.name)}`,
                ...h.units.map(healthWait),
            ]);
        case "stop":
            return lines(h.units.map((u) => sh`if systemctl is-active -q ${u.name}; then echo ${`stopping ${u.name}`}; systemctl stop ${u.name}; fi`));
        case "rolling-restart-listed":
            return lines([
                sh`if [ -f ${h.list} ]; then`,
                // On descriptor 3, so nothing in the loop can read the list.
                sh`    while read -r pm_unit pm_url <&3; do`,
                sh`        if [ -z "$pm_unit" ] || ! systemctl is-active -q "$pm_unit"; then continue; fi`,
                indent(restartNow({ name: raw('"$pm_unit"'), health: { url: raw('"$pm_url"') } }), "        "),
                sh`    done 3<${h.list}`,
                sh`fi`,
            ]);
        case "run":
            return h.command;
    }
}

/**
 * The shell code of a file set: write, prune, then, if anything changed (in
 * this run or a run that died), the check and the handlers; the set stops
 * being pending once they all succeeded.
 */
export function applyFileSet(set: FileSet): Sh {
    if (!SET_NAME.test(set.name)) throw new Error(`file set name ${JSON.stringify(set.name)}: expected letters, digits and -`);
    const secret = set.secret ?? set.name.endsWith("-secrets");
    const body: Sh[] = set.files.map((f) => writeStep(set.name, f, secret));
    if (set.prune ?? true) body.push(sh`pm_prune ${set.name}`);
    // A handler with nothing to do (a stop of no units) adds no code.
    const steps = (set.onChange ?? []).map(handlerStep).filter((step) => step.text.trim() !== "");
    if (set.check) steps.unshift(sh`if ! { ${set.check}; } >&2; then pm_refuse ${set.name}; fi`);
    if (steps.length) {
        body.push(lines([sh`if pm_changed ${set.name}; then`, indent(lines(steps)), sh`fi`]));
    }
    body.push(sh`pm_done ${set.name}`);
    return lines(body);
}

/**
 * Makes sure units are stopped and disabled (a boot does not start them
 * either), saying why for each one that was not. A restart they were owed
 * stays owed: ensureRunning takes it when they run again.
 */
export function ensureStopped(units: string[], why: string): Sh {
    return lines(
        units.map(
            (u) =>
                sh`if systemctl is-active -q ${u} || systemctl is-enabled -q ${u} 2>/dev/null; then systemctl disable -q --now ${u}; echo ${`stopped ${u}: ${why}`}; fi`,
        ),
    );
}

/**
 * Makes sure units are enabled and running: a restart owed by an earlier
 * step (or script) is done now, a stopped unit is started, and each unit's
 * health is waited for.
 */
export function ensureRunning(units: ServiceUnit[], opts: { enable?: string[] } = {}): Sh {
    const enable = opts.enable ?? units.map((u) => u.name);
    return lines([
        ...(enable.length ? [sh`systemctl enable -q ${enable}`] : []),
        ...units.map((u) =>
            lines([
                sh`if pm_take ${u.name} && systemctl is-active -q ${u.name}; then`,
                sh`    echo ${`restarting ${u.name}`}; systemctl restart ${u.name}`,
                sh`elif ! systemctl is-active -q ${u.name}; then`,
                sh`    echo ${`starting ${u.name}`}; systemctl start ${u.name} || true`,
                sh`fi`,
                healthWait(u),
            ]),
        ),
    ]);
}
