/**
 * A setting named by a typed accessor instead of a string: `at<T>((o) =>
 * o.synapse.email.smtpHost)` records the properties the function reads
 * (with a Proxy, once, when the table is built) and keeps them as a path.
 * Renaming an option then breaks the build, and an editor follows the key
 * to the option's declaration ("go to definition" on `smtpHost`).
 */

/** Every property present, all the way down, so an accessor needs no `?.` or `!` (it never runs on real options). */
export type DeepRequired<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]-?: DeepRequired<NonNullable<T[K]>> } : T;

/** A setting's place in an options object: the property names from the outside in. */
export class SettingPath {
    constructor(readonly segments: readonly string[]) {}

    /** Dotted, as errors name settings: `email.smtpHost`. */
    toString(): string {
        return this.segments.join(".");
    }

    /** The path below its first segment: a MatrixStack arg path (`synapse.email.smtpHost`) inside the child's options (`email.smtpHost`). */
    get rest(): SettingPath {
        return new SettingPath(this.segments.slice(1));
    }

    get(o: unknown): unknown {
        return this.segments.reduce<unknown>((v, p) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined), o);
    }

    set(o: Record<string, unknown>, value: unknown): void {
        let at = o;
        for (const p of this.segments.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
        at[this.segments[this.segments.length - 1]] = value;
    }
}

/** Records the property names `read` takes from its argument. */
export function at<T>(read: (o: DeepRequired<T>) => unknown): SettingPath {
    const segments: string[] = [];
    const recorder: object = new Proxy(
        {},
        {
            get(_target, p) {
                segments.push(String(p));
                return recorder;
            },
        },
    );
    read(recorder as DeepRequired<T>);
    if (segments.length === 0) throw new Error("at(): the accessor reads no property");
    return new SettingPath(segments);
}
