/**
 * Pulumi's secret marker in serialized properties (as mocks receive them, and
 * in an exported state): used by the unit tests' recording mocks and the e2e
 * harness self-test.
 */

/** The key/value that marks a secret in serialized Pulumi properties. */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isSecretWrapped(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as any)[SECRET_SIG_KEY] === SECRET_SIG;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
    if (typeof v !== "object" || v === null) return false;
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
}

/** Removes secret wrappers recursively (plain objects and arrays; class instances such as assets are kept). */
export function unwrapSecrets<T = any>(v: unknown): T {
    if (isSecretWrapped(v)) return unwrapSecrets((v as any).value);
    if (Array.isArray(v)) return v.map((x) => unwrapSecrets(x)) as any;
    if (isPlainObject(v)) {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) o[k] = unwrapSecrets(x);
        return o as T;
    }
    return v as T;
}
