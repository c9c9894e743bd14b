/**
 * A setting with a value the library cannot use. The message always names
 * the component, the setting, the value and what would be valid, so a user
 * can fix their stack config without reading the library's source.
 */
export class ConfigError extends Error {
    constructor(
        readonly component: string,
        readonly setting: string,
        readonly value: unknown,
        readonly expected: string,
    ) {
        super(`${component}: ${setting} is ${describe(value)}; ${expected}`);
        this.name = "ConfigError";
    }
}

/**
 * Stands in for a value that must not be echoed (a secret) or is better
 * described in words ("empty"); shown as its text.
 */
export class Described {
    constructor(readonly text: string) {}
}

/** A secret's value in an error message. */
export const SECRET_VALUE = new Described("[secret, not shown]");

/** Renders a value for an error message; long values are shortened. */
export function describe(value: unknown): string {
    if (value === undefined) return "not set";
    if (value instanceof Described) return value.text;
    let text: string;
    try {
        text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
    } catch {
        text = String(value);
    }
    return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Collects several ConfigErrors so a user sees every problem at once. */
export class ConfigErrors extends Error {
    constructor(readonly errors: ConfigError[]) {
        super(errors.map((e) => e.message).join("\n"));
        this.name = "ConfigErrors";
    }
}

/** Throws the collected errors (one alone is thrown as it is). */
export function throwIfAny(errors: ConfigError[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new ConfigErrors(errors);
}

/**
 * How errors name a component: its kind and, for a constructed one, its
 * resource name (`SynapseHomeserver "dev-synapse"`), or the kind alone.
 */
export function componentLabel(kind: string, name?: string): string {
    return name === undefined ? kind : `${kind} ${JSON.stringify(name)}`;
}

/** The kind of a component named by `componentLabel` (`SynapseHomeserver "dev-synapse"` -> `SynapseHomeserver`). */
export function componentKind(label: string): string {
    const space = label.indexOf(" ");
    return space < 0 ? label : label.slice(0, space);
}
