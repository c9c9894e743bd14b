import { ConfigError, describe } from "../model/errors";

/**
 * A stack config key with a value the library cannot use, or set together
 * with a key it contradicts. The message names the key as users write it:
 * `matrix:maxUploadSize is "huge"; expected ...`.
 */
export class StackConfigError extends ConfigError {
    constructor(
        /** The key, without the `matrix:` namespace. */
        readonly key: string,
        value: unknown,
        expected: string,
        /** The component's own error this one translates, if any. */
        readonly original?: ConfigError,
        /** Where inside a YAML key's value, e.g. `.typing` for `matrix:workers.typing`. Default: the whole value. */
        path = "",
    ) {
        super("stack config", `matrix:${key}${path}`, value, expected);
        this.message = `matrix:${key}${path} is ${describe(value)}; ${expected}`;
    }
}

/** The stack config as Pulumi hands it over: strings (numbers, booleans and lists in their text form). */
export interface RawConfig {
    get(key: string): string | undefined;
    /**
     * Whether the stack stores the key's value encrypted (`pulumi config set --secret`).
     * Given, a secret key set in plain text is an error. Pulumi.yaml cannot force
     * secrecy on an optional key (a secret declaration cannot have a default, so it
     * would be required), so the program checks it here.
     */
    isSecret?(key: string): boolean;
}
