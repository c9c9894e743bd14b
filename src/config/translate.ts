import { isDeepStrictEqual } from "node:util";

import { componentKind, ConfigError, ConfigErrors, describe, Described, SECRET_VALUE } from "../model/errors";
import { libraryDefaults } from "./defaults";
import { RawConfig, StackConfigError } from "./errors";
import { partOf, STACK_CONFIG_KEYS, STACK_KEYS, STACK_PARTS, StackConfigKey, StackKey } from "./keys";
import { readValues } from "./read";

/**
 * Every error a stack can get, in the terms the user wrote: the key
 * (`matrix:<key>`), its value, and what would be valid. Components name
 * their own settings, or MatrixStack's args (`redis.port`), or settings
 * they derived (the certificate's names from turnDomain, worker ports from
 * workerBasePort, publicBaseUrl from serverName); each comes back as the
 * key the user set, found through the key table.
 */

const spec = (key: StackConfigKey): StackKey => STACK_KEYS[key];

/** What the stack set: the values as read (the translation prefers keys set to something other than their default). */
export interface StackValues {
    readonly values: ReadonlyMap<StackConfigKey, unknown>;
}

export function stackValues(raw: RawConfig): StackValues {
    return { values: readValues(raw) };
}

/** The key whose setting a component's error names: `Host "dev-host"` or `Host` with `port`, or `MatrixStack "dev"` with an args path (`redis.port`). */
export function stackKeyFor(component: string, setting: string): StackConfigKey | undefined {
    const kind = componentKind(component);
    return STACK_CONFIG_KEYS.find((k) => {
        const path = spec(k).setting;
        return kind === "MatrixStack" ? path.toString() === setting : STACK_PARTS[partOf(k)] === kind && path.rest.toString() === setting;
    });
}

/** The part (`synapse`, `workers`, ...) a component label belongs to, or undefined for MatrixStack and unknown kinds. */
function partOfComponent(component: string): string | undefined {
    const kind = componentKind(component);
    return Object.entries(STACK_PARTS).find(([, k]) => k === kind)?.[0];
}

/**
 * The value at `path` inside a YAML key's value: `a.b[0].c`, list indexes
 * being steps too. A mapping's key may hold dots (a DNS name): at each step
 * the longest key the mapping has is taken.
 */
function valueAt(value: unknown, path: string): unknown {
    if (path === "") return value;
    if (value === null || typeof value !== "object") return undefined;
    const index = /^\[(\d+)\]\.?/.exec(path);
    if (index) return valueAt((value as unknown[])[Number(index[1])], path.slice(index[0].length));
    const keys = Object.keys(value)
        .filter((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`))
        .sort((a, b) => b.length - a.length);
    if (keys.length === 0) return undefined;
    const rest = path.slice(keys[0].length);
    return valueAt((value as Record<string, unknown>)[keys[0]], rest.startsWith(".") ? rest.slice(1) : rest);
}

class Translator {
    private readonly lib = libraryDefaults();
    constructor(private readonly values: ReadonlyMap<StackConfigKey, unknown> | undefined) {}

    /** Set by the user to something other than its default. */
    private inEffect(key: StackConfigKey): boolean {
        const v = this.values?.get(key);
        return v !== undefined && !isDeepStrictEqual(v, this.lib[key]);
    }

    /** A key's value as errors show it: a secret's never. */
    private shown(key: StackConfigKey, fallback: unknown): unknown {
        if (spec(key).type === "secret") return SECRET_VALUE;
        return this.values?.has(key) ? this.values.get(key) : fallback;
    }

    /** The error restated for `key`, the component's words kept after what the key is. */
    private via(key: StackConfigKey, e: ConfigError, lead = "", unset: unknown = e.value): StackConfigError {
        const own = this.shown(key, unset);
        const theirs = isDeepStrictEqual(own, e.value) || e.value instanceof Described ? "" : ` is ${describe(e.value)}`;
        return new StackConfigError(key, own, `${lead}in ${e.component} ${e.setting}${theirs}: ${e.expected}`, e);
    }

    /** A key's error, or the key it follows from when the user left it unset (publicBaseUrl from serverName). */
    private direct(key: StackConfigKey, e: ConfigError, indirect: boolean): StackConfigError {
        const from = spec(key).derivedFrom as StackConfigKey | undefined;
        if (this.values && !this.values.has(key) && from && this.values.has(from)) return this.via(from, e, `${key} follows from it (${describe(e.value)}); `);
        if (indirect) return this.via(key, e);
        if (spec(key).type === "secret") {
            // "not set" and words such as "empty" reveal nothing; any other value of a secret is not shown.
            const value = e.value === undefined || e.value instanceof Described ? e.value : SECRET_VALUE;
            return new StackConfigError(key, value, e.expected, e);
        }
        // Words standing for the value ("set") give way to the value the user wrote.
        const value = e.value instanceof Described && this.values?.has(key) ? this.values.get(key) : e.value;
        return new StackConfigError(key, value, e.expected, e);
    }

    translate(e: unknown): unknown {
        if (e instanceof ConfigErrors) return new ConfigErrors(e.errors.flatMap((x) => this.one(x)));
        if (!(e instanceof ConfigError) || e instanceof StackConfigError) return e;
        const all = this.one(e);
        return all.length === 1 ? all[0] : new ConfigErrors(all);
    }

    private one(e: ConfigError): ConfigError[] {
        if (e instanceof StackConfigError) return [e];
        // MatrixStack names several of its args at once ("redis.maxMemoryMb, redis.port"): one error per key.
        if (componentKind(e.component) === "MatrixStack" && e.setting.includes(", ")) {
            return e.setting.split(", ").map((setting) => this.single(new ConfigError(e.component, setting, e.value, e.expected)));
        }
        return [this.single(e)];
    }

    private single(e: ConfigError): ConfigError {
        // 1. The setting of a key (or MatrixStack's arg path of one).
        const key = stackKeyFor(e.component, e.setting);
        if (key) return this.direct(key, e, false);
        // 2. A setting inside a YAML key's value (`workers.typing`): the key and the path inside it, when the user wrote that value there.
        for (let cut = e.setting.lastIndexOf("."); cut > 0; cut = e.setting.lastIndexOf(".", cut - 1)) {
            const outer = stackKeyFor(e.component, e.setting.slice(0, cut));
            if (!outer || spec(outer).type !== "yaml") continue;
            const written = this.values?.get(outer);
            const at = valueAt(written, e.setting.slice(cut + 1));
            // A value shown in words (a secret's) cannot be compared: that the user wrote something there is enough.
            const standIn = e.value instanceof Described || typeof e.value === "string";
            if (this.values === undefined || isDeepStrictEqual(at, e.value) || (at !== undefined && standIn))
                return new StackConfigError(outer, e.value, e.expected, e, e.setting.slice(cut));
            break;
        }
        const part = componentKind(e.component) === "MatrixStack" ? e.setting.split(".")[0] : partOfComponent(e.component);
        const rest = componentKind(e.component) === "MatrixStack" ? e.setting.split(".").slice(1).join(".") : e.setting;
        // 3. A group of settings (`relayPorts` for relayPorts.min and .max, or MatrixStack's `turn.relayPorts`): the keys in it
        // the user set, else all of them (their defaults are what the user left).
        const inGroup = STACK_CONFIG_KEYS.filter((k) => {
            const path = spec(k).setting;
            return (partOf(k) === part && path.rest.toString().startsWith(`${rest}.`)) || path.toString().startsWith(`${e.setting}.`);
        });
        const setInGroup = inGroup.filter((k) => this.inEffect(k));
        const group = setInGroup.length ? setInGroup : inGroup;
        if (group.length) {
            const others = group.slice(1).map((k) => `matrix:${k} ${describe(this.shown(k, this.lib[k]))}`);
            return this.via(group[0], e, others.length ? `with ${others.join(", ")}; ` : "", this.lib[group[0]]);
        }
        // 4. Another component's setting, named as MatrixStack's args name it (WorkerPool's `synapse.extraConfig`).
        const named = e.setting.split(".")[0] in STACK_PARTS ? stackKeyFor("MatrixStack", e.setting) : undefined;
        if (named) return this.direct(named, e, true);
        // 5. A setting one component hands another under the same name (CloudflareDns's publicBaseUrl is Synapse's).
        const sameName = STACK_CONFIG_KEYS.filter((k) => spec(k).setting.rest.toString() === rest);
        if (sameName.length === 1) return this.direct(sameName[0], e, true);
        // 6. A setting derived from a key (a worker's port from workerBasePort).
        const deriving = STACK_CONFIG_KEYS.find((k) => part !== undefined && spec(k).derives?.(part, rest) && this.inEffect(k));
        // 7. The key the user set to exactly this value (a port another component clashes with, a name on the certificate).
        const byValue = STACK_CONFIG_KEYS.filter(
            (k) =>
                spec(k).type !== "secret" &&
                this.inEffect(k) &&
                (isDeepStrictEqual(this.values?.get(k), e.value) ||
                    (Array.isArray(this.values?.get(k)) && (this.values?.get(k) as unknown[]).includes(e.value))),
        );
        const sameValue = byValue.find((k) => partOf(k) === part) ?? (byValue.length === 1 ? byValue[0] : undefined);
        const found = sameValue ?? deriving;
        return found ? this.via(found, e) : e;
    }
}

/**
 * Restates errors in terms of the stack config: the key the user set
 * instead of the internal setting, the value, and the component's
 * `expected`. Without `stack` (the values read), only errors that name a
 * key's own setting are translated. Anything else is returned as it is.
 */
export function inStackConfigTerms(e: unknown, stack?: StackValues): unknown {
    return new Translator(stack?.values).translate(e);
}

/** Runs `build` (constructing components from stack config) and throws its errors in stack config terms. */
export function withStackConfigErrors<T>(build: () => T, raw?: RawConfig): T {
    try {
        return build();
    } catch (e) {
        throw inStackConfigTerms(e, raw ? stackValues(raw) : undefined);
    }
}
