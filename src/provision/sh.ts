/**
 * Quoting by construction. Script text is built with the `sh` tagged
 * template: every interpolated value is single-quoted for bash, so a value
 * (a path, a URL, a CIDR list, a token) can never become code. Shell
 * expressions that must stay code (`$major`, a command substitution) are
 * made explicit with `raw()`; fragments built with `sh` nest unchanged.
 */

/** A piece of shell code that is inserted as it is. */
export class Sh {
    constructor(readonly text: string) {}
    toString(): string {
        return this.text;
    }
}

/** Marks a shell expression that must be inserted unquoted (the escape hatch). */
export function raw(text: string): Sh {
    return new Sh(text);
}

/** Single-quotes a value for bash. */
export function shQuote(value: string): string {
    return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A value a template may interpolate: quoted unless it is Sh; arrays become quoted words. */
export type ShValue = string | number | boolean | Sh | readonly (string | number | Sh)[];

function quoteValue(v: ShValue): string {
    if (v instanceof Sh) return v.text;
    if (Array.isArray(v)) return v.map((x) => quoteValue(x)).join(" ");
    if (typeof v === "number") {
        if (!Number.isFinite(v)) throw new Error(`sh: cannot interpolate the number ${v}`);
        return String(v);
    }
    if (typeof v === "boolean") return String(v);
    if (typeof v !== "string") throw new Error(`sh: cannot interpolate ${typeof v}`);
    return shQuote(v);
}

type QuoteState = "none" | "single" | "double";

/**
 * Where a template's literal text leaves the shell's quoting: an
 * interpolation inside "..." or '...' would be quoted twice, so it is refused
 * when the script is built rather than producing wrong text on a host. A
 * command substitution `$(...)` opens a fresh context, even inside "...".
 * The state is a stack: the innermost context is last.
 */
function quoteStateAfter(text: string, stack: QuoteState[]): QuoteState[] {
    const st = [...stack];
    const top = () => st[st.length - 1];
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        const state = top();
        if (state === "single") {
            if (c === "'") st[st.length - 1] = "none";
        } else if (c === "\\") {
            i++;
        } else if (c === "$" && text[i + 1] === "(") {
            st.push("none");
            i++;
        } else if (state === "double") {
            if (c === '"') st[st.length - 1] = "none";
        } else if (c === ")" && st.length > 1) {
            st.pop();
        } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
            // A comment: its apostrophes are not quotes.
            while (i + 1 < text.length && text[i + 1] !== "\n") i++;
        } else if (c === "'") {
            st[st.length - 1] = "single";
        } else if (c === '"') {
            st[st.length - 1] = "double";
        }
    }
    return st;
}

/**
 * Builds shell code; every `${value}` is quoted (see `raw` for the
 * exception). The literal text is taken raw, as bash should see it: `\n`
 * stays a backslash and an n.
 */
export function sh(template: TemplateStringsArray, ...values: ShValue[]): Sh {
    const strings = template.raw;
    let out = strings[0];
    let state = quoteStateAfter(strings[0], ["none"]);
    values.forEach((v, i) => {
        const inner = state[state.length - 1];
        if (inner !== "none" && !(v instanceof Sh)) {
            throw new Error(`sh: a value is interpolated inside ${inner} quotes after ${JSON.stringify(out.slice(-40))}; interpolate it outside the quotes`);
        }
        out += quoteValue(v) + strings[i + 1];
        state = quoteStateAfter(strings[i + 1], state);
    });
    return new Sh(out);
}

/** Joins lines of shell code. */
export function lines(parts: (Sh | string)[]): Sh {
    return new Sh(parts.map((p) => (p instanceof Sh ? p.text : p)).join("\n"));
}

/** Shell code indented by `by` (every non-empty line), to nest it in an `if` or a loop. */
export function indent(code: Sh, by = "    "): Sh {
    return new Sh(code.text.replace(/^(?=.)/gm, by));
}

/** The base heredoc delimiter; a suffix is added only when the content has this very line. */
export const HEREDOC_DELIMITER = "PM_EOF";

/**
 * The delimiter rule for every heredoc: `PM_EOF`, or `PM_EOF_<n>` with the
 * smallest n whose line does not occur in the content. It does not depend on
 * the content otherwise, so a changed file shows in a diff as changed lines
 * only.
 */
export function heredocDelimiter(content: string): string {
    const used = new Set(content.split("\n"));
    if (!used.has(HEREDOC_DELIMITER)) return HEREDOC_DELIMITER;
    for (let n = 1; ; n++) if (!used.has(`${HEREDOC_DELIMITER}_${n}`)) return `${HEREDOC_DELIMITER}_${n}`;
}

/**
 * `command <<'PM_EOF'` followed by the content, taken literally (no
 * expansion). The content gets a final newline if it lacks one.
 */
export function heredoc(command: Sh, content: string): Sh {
    const body = content.endsWith("\n") ? content : content + "\n";
    const d = heredocDelimiter(body);
    return new Sh(`${command.text} <<'${d}'\n${body}${d}`);
}

/** `name=$(cat <<'PM_EOF' ...)`: a shell variable holding the content, literally (trailing newlines dropped). */
export function heredocVar(name: string, content: string): Sh {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`heredocVar: ${name} is not a shell variable name`);
    return new Sh(`${heredoc(new Sh(`${name}=$(cat`), content).text}\n)`);
}
