import { SECRET_VALUE } from "../model/errors";
import { RawConfig, StackConfigError } from "./errors";
import { STACK_KEYS, StackConfigKey } from "./keys";

/**
 * Keys that were renamed or removed, so a stack that still sets one fails
 * with what to do instead of being ignored silently. A key once published
 * (src/config/published-keys.json, appended by `npm run config:update`)
 * leaves the table only with an entry here; a unit test checks it.
 *
 * A stack that sets an old key fails (it is not mapped with a warning):
 * reading both names would let the old one shadow the new one, and a key
 * whose meaning moved (a unit, a default) would deploy something else
 * silently. The error names the key, the value, and the exact commands.
 */
export type KeyMigration =
    /** `from` is now `to`, meaning the same. `why`: what changed, for the message. */
    | { readonly from: string; readonly to: StackConfigKey; readonly why: string }
    /** `from` is gone; `why` says why and what (if anything) does its job now. */
    | { readonly from: string; readonly removed: true; readonly why: string };

/** Every renamed or removed key, oldest first. None so far: no published key has been renamed or removed. */
export const KEY_MIGRATIONS: readonly KeyMigration[] = [];

/** A value in a shell command, single-quoted. */
const quoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** The commands that move a stack from `from` to `to`, with the value it has now (a secret's through `pulumi config get`, never shown). */
function renameCommands(from: string, to: StackConfigKey, text: string): string {
    const s = STACK_KEYS[to];
    if (s.type === "secret") return `pulumi config get ${from} | pulumi config set --secret ${to} && pulumi config rm ${from}`;
    if (s.type === "list") {
        let items: unknown;
        try {
            items = JSON.parse(text);
        } catch {
            items = undefined;
        }
        if (Array.isArray(items))
            return [...items.map((v, i) => `pulumi config set --path ${quoted(`${to}[${i}]`)} ${quoted(String(v))}`), `pulumi config rm ${from}`].join(" && ");
    }
    return `pulumi config set ${to} ${quoted(text)} && pulumi config rm ${from}`;
}

/** The errors for old keys a stack still sets (a key's presence counts, whatever its value: Pulumi fills no default in for an undeclared key). */
export function migrationErrors(raw: RawConfig, migrations: readonly KeyMigration[] = KEY_MIGRATIONS): StackConfigError[] {
    const errors: StackConfigError[] = [];
    for (const m of migrations) {
        const text = raw.get(m.from);
        if (text === undefined) continue;
        if ("to" in m) {
            const value = STACK_KEYS[m.to].type === "secret" ? SECRET_VALUE : text;
            errors.push(
                new StackConfigError(
                    m.from,
                    value,
                    `matrix:${m.from} was renamed to matrix:${m.to} (${m.why}); move the value with \`${renameCommands(m.from, m.to, text)}\``,
                ),
            );
        } else {
            errors.push(
                new StackConfigError(
                    m.from,
                    raw.isSecret?.(m.from) ? SECRET_VALUE : text,
                    `matrix:${m.from} was removed (${m.why}); remove it with \`pulumi config rm ${m.from}\``,
                ),
            );
        }
    }
    return errors;
}

/**
 * What is wrong between the published keys, the table and the migrations:
 * a published key neither in the table nor migrated, a migration from a key
 * the table still has, or to a key it lacks. Empty when all is well.
 */
export function migrationProblems(published: readonly string[], keys: readonly string[], migrations: readonly KeyMigration[] = KEY_MIGRATIONS): string[] {
    const problems: string[] = [];
    const migrated = new Set(migrations.map((m) => m.from));
    for (const k of published)
        if (!keys.includes(k) && !migrated.has(k))
            problems.push(
                `matrix:${k} was published and is no longer in the key table: add a migration for it to KEY_MIGRATIONS in src/config/migrations.ts (renamed: { from, to, why }; removed: { from, removed: true, why })`,
            );
    for (const m of migrations) {
        if (keys.includes(m.from)) problems.push(`the migration from matrix:${m.from} names a key the table still has`);
        if ("to" in m && !keys.includes(m.to)) problems.push(`the migration from matrix:${m.from} goes to matrix:${m.to}, which the table lacks`);
    }
    return problems;
}

/** The published list with the table's new keys appended (the list only grows: a key once published stays in it). */
export function withNewKeys(published: readonly string[], keys: readonly string[]): string[] {
    return [...published, ...keys.filter((k) => !published.includes(k))];
}
