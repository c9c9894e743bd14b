import { isDeepStrictEqual } from "node:util";

import { parse } from "yaml";

import { AdoptOptions } from "../model/adopt";
import { ElementWebOptions } from "../model/element";
import { ConfigError, describe, Described, SECRET_VALUE, throwIfAny } from "../model/errors";
import { MaintenanceOptions } from "../model/maintenance";
import { MonitoringOptions } from "../model/monitoring";
import { TurnOptions } from "../model/turn";
import { declaredDefault, libraryDefaults } from "./defaults";
import { RawConfig, StackConfigError } from "./errors";
import { STACK_CONFIG_KEYS, STACK_KEYS, StackConfigKey, StackKey, StackOptions, StackPart } from "./keys";
import { migrationErrors } from "./migrations";

/**
 * Reading a stack's config into MatrixStack's args: each key's text as its
 * type, the table's own checks, required keys, keys that contradict each
 * other, and old keys (migrations.ts), all reported at once, each naming
 * `matrix:<key>`, the value (a secret's never) and what would be valid.
 * The components' errors are restated in these terms by translate.ts.
 */

const spec = (key: StackConfigKey): StackKey => STACK_KEYS[key];

/** The error for a secret key whose value the stack keeps in plain text. */
function plainTextSecret(key: StackConfigKey): StackConfigError {
    const s: StackKey = spec(key);
    const hint = s.hint ?? (s.required || "...");
    return new StackConfigError(
        key,
        new Described("set in plain text"),
        `it is a secret and must be stored encrypted: set it again with \`pulumi config set --secret ${key} ${hint}\``,
    );
}

/**
 * Reads one key's text as its type. What Pulumi fills in for a key without a
 * default of its own is unset: "" (optional strings), and [] for a list
 * declared with [] (a list whose default has items keeps [] as "none").
 */
function readValue(key: StackConfigKey, text: string | undefined): unknown {
    if (text === undefined || text === "") return undefined;
    const fail = (expected: string): never => {
        throw new StackConfigError(key, text, expected);
    };
    switch (spec(key).type) {
        case "string":
        case "secret":
            return text;
        case "integer":
        case "number": {
            const n = Number(text);
            const whole = spec(key).type === "integer";
            const example = libraryDefaults()[key];
            const such = typeof example === "number" ? `, such as ${example}` : "";
            return Number.isFinite(n) && text.trim() !== "" ? n : fail(`expected ${whole ? "a whole number" : "a number"}${such}`);
        }
        case "boolean":
        case "switch":
            return text === "true" ? true : text === "false" ? false : fail("expected true or false");
        case "list": {
            let v: unknown;
            try {
                v = JSON.parse(text);
            } catch {
                return fail(`expected a list, set item by item: \`pulumi config set --path '${key}[0]' <first>\``);
            }
            if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
                throw new StackConfigError(key, v, `expected a list of strings, set item by item: \`pulumi config set --path '${key}[0]' <first>\``);
            return v.length === 0 && isDeepStrictEqual(declaredDefault(key), []) ? undefined : v;
        }
        case "yaml": {
            if (text.trim() === "") return undefined;
            let v: unknown;
            try {
                v = parse(text);
            } catch (e) {
                return fail(`expected a YAML mapping of ${spec(key).yaml?.holds ?? "homeserver.yaml options"} (${(e as Error).message.split("\n")[0]})`);
            }
            if (v === null || typeof v !== "object" || Array.isArray(v))
                fail(
                    `expected a YAML mapping of ${spec(key).yaml?.holds ?? "homeserver.yaml options"}, such as ${spec(key).yaml?.example ?? '"enable_media_repo: true"'}`,
                );
            return v;
        }
    }
}

/**
 * Reads the stack config into component options. `secret` turns a secret
 * key into the value the options carry (the program passes
 * `cfg.requireSecret`); without it, secret keys are left out. Values that
 * cannot be read, missing required keys and contradictory keys are all
 * reported at once, before anything is built.
 */
export function readStackConfig(raw: RawConfig): StackOptions<undefined>;
export function readStackConfig<S>(raw: RawConfig, secret: (key: StackConfigKey) => S): StackOptions<S>;
export function readStackConfig<S>(raw: RawConfig, secret?: (key: StackConfigKey) => S): StackOptions<S | undefined> {
    // Old keys first: a renamed key's value is not read under its new name.
    const errors: ConfigError[] = [...migrationErrors(raw)];
    const values = new Map<StackConfigKey, unknown>();
    for (const key of STACK_CONFIG_KEYS) {
        try {
            const text = raw.get(key);
            if (spec(key).type === "secret" && text !== undefined && text !== "" && raw.isSecret && !raw.isSecret(key)) {
                errors.push(plainTextSecret(key));
            }
            const value = readValue(key, text);
            const invalid = value === undefined ? undefined : spec(key).check?.(value);
            if (invalid !== undefined) errors.push(new StackConfigError(key, spec(key).type === "secret" ? SECRET_VALUE : value, invalid));
            values.set(key, value);
        } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            errors.push(e);
        }
    }
    const lib = libraryDefaults();
    const inEffect = (key: string): boolean => {
        const v = values.get(key as StackConfigKey);
        return v !== undefined && !isDeepStrictEqual(v, lib[key as StackConfigKey]);
    };
    /** A key applies unless a key it needs is not in effect or a key it contradicts is: one that does not apply is not passed on (its default neither). */
    const applies = (key: StackConfigKey): boolean =>
        (spec(key).onlyWith === undefined || inEffect(spec(key).onlyWith!)) && !(spec(key).notWith ?? []).some(inEffect);
    const remove = (key: string) => `\`pulumi config rm ${key}\``;
    /** A value as an error shows it: a secret's never. */
    const shown = (key: string): unknown => (spec(key as StackConfigKey).type === "secret" ? SECRET_VALUE : values.get(key as StackConfigKey));

    const options: Record<string, unknown> = {};
    for (const key of STACK_CONFIG_KEYS) {
        const s = spec(key);
        const value = values.get(key);
        if (s.onlyWith !== undefined && inEffect(key) && !inEffect(s.onlyWith)) {
            const other = spec(s.onlyWith as StackConfigKey);
            errors.push(
                new StackConfigError(
                    key,
                    shown(key),
                    `it does nothing without matrix:${s.onlyWith}, which is not set (${other.whenUnset}); set ${s.onlyWith} too, or remove ${key} with ${remove(key)}`,
                ),
            );
        }
        for (const o of s.notWith ?? []) {
            if (inEffect(key) && inEffect(o)) {
                errors.push(
                    new StackConfigError(
                        key,
                        shown(key),
                        `it contradicts matrix:${o}, which is ${describe(shown(o))} (${spec(o as StackConfigKey).whenSet}); remove one of them, e.g. ${remove(key)}`,
                    ),
                );
            }
        }
        if (!applies(key)) continue;
        if (s.type === "secret") {
            if (!secret) continue;
            if (value === undefined && s.required === undefined) continue;
        }
        if (value === undefined) {
            if (s.required !== undefined) {
                const needs = s.onlyWith ? ` with matrix:${s.onlyWith}` : "";
                const command = `pulumi config set${s.type === "secret" ? " --secret" : ""} ${key}${s.required ? ` ${s.required}` : ""}`;
                errors.push(new StackConfigError(key, undefined, `it is required${needs}; set it with \`${command}\``));
            }
            continue;
        }
        const option = s.type === "secret" ? secret!(key) : s.type === "switch" ? (value ? {} : undefined) : value;
        if (option !== undefined) s.setting.set(options, option);
    }
    throwIfAny(errors);

    const part = <P extends StackPart>(p: P) => (options[p] ?? {}) as StackOptions<S>[P];
    const postgres = part("postgres");
    // An external server has no database or role of its own choosing: the declared defaults, also when Pulumi did not fill them in.
    if (postgres.external) {
        postgres.external.database ??= lib.postgresExternalDatabase as string;
        postgres.external.user ??= lib.postgresExternalUser as string;
    }
    return {
        host: part("host"),
        synapse: part("synapse"),
        postgres,
        workers: part("workers"),
        redis: part("redis"),
        proxy: part("proxy"),
        rtc: part("rtc"),
        ...(options.element ? { element: options.element as ElementWebOptions } : {}),
        ...(options.turn ? { turn: options.turn as TurnOptions } : {}),
        ...(options.dns ? { dns: options.dns as StackOptions<S>["dns"] } : {}),
        ...(options.monitoring ? { monitoring: options.monitoring as MonitoringOptions } : {}),
        ...(options.backup ? { backup: options.backup as StackOptions<S>["backup"] } : {}),
        ...(options.maintenance ? { maintenance: options.maintenance as MaintenanceOptions } : {}),
        ...(options.adopt ? { adopt: options.adopt as AdoptOptions } : {}),
    };
}

/** The values a stack sets, as read (a value that cannot be read is left out): what an error's translation compares with. */
export function readValues(raw: RawConfig): Map<StackConfigKey, unknown> {
    const values = new Map<StackConfigKey, unknown>();
    for (const key of STACK_CONFIG_KEYS) {
        try {
            const v = readValue(key, raw.get(key));
            if (v !== undefined) values.set(key, v);
        } catch {
            // Reported by readStackConfig.
        }
    }
    return values;
}
