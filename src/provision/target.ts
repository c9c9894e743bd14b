import { createHash } from "node:crypto";

import { parseHostKey } from "../model/host";

/**
 * The lines that head a script's stdin to say where it runs. @pulumi/command
 * marks a command's whole `connection` secret, so a preview would show a new
 * address only as `[secret] => [secret]`; these lines make a changed address,
 * port, user or host key (and a re-apply) readable in the script's diff.
 */
export interface ScriptTargetInfo {
    /** Address SSH dials. */
    host: string;
    /** SSH port. */
    port: number;
    /** Login user. */
    user: string;
    /** The host's public key (`ssh-ed25519 AAAA...`), when verified. */
    hostKey?: string;
    /** The re-apply token, when set. */
    reapply?: string;
}

/** `<type> SHA256:...` as `ssh-keygen -l` prints it; a placeholder for text that is not a host key (never the text itself). */
export function hostKeyFingerprint(hostKey: string): string {
    const parsed = parseHostKey(hostKey);
    if ("error" in parsed) return "(not a valid host key)";
    const [type, blob] = parsed.key.split(" ");
    return `${type} SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** A value on one comment line: whatever a caller passed, no line break (or other control character) gets through. */
function oneLine(v: unknown): string {
    return String(v).replace(/\p{Cc}+/gu, " ");
}

/** Prepends the target lines to a script (comments: bash ignores them; no input can start a line of its own). */
export function withScriptTarget(script: string, t: ScriptTargetInfo): string {
    const head = [`# target: ${oneLine(`${t.user}@${t.host}:${t.port}`)}${t.hostKey ? `, host key ${oneLine(hostKeyFingerprint(t.hostKey))}` : ""}`];
    if (t.reapply !== undefined && t.reapply !== "") head.push(`# re-apply: ${oneLine(t.reapply).replace(/\s+/g, " ")}`);
    return `${head.join("\n")}\n${script}`;
}
