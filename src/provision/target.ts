import { createHash } from "node:crypto";

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

/** `SHA256:...` as `ssh-keygen -l` prints it; the key text itself when it is not `type base64`. */
export function hostKeyFingerprint(hostKey: string): string {
    const [type, blob] = hostKey.trim().split(/\s+/);
    if (!type || !blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) return hostKey.trim();
    return `${type} SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** Prepends the target lines to a script (comments: bash ignores them). */
export function withScriptTarget(script: string, t: ScriptTargetInfo): string {
    const head = [`# target: ${t.user}@${t.host}:${t.port}${t.hostKey ? `, host key ${hostKeyFingerprint(t.hostKey)}` : ""}`];
    if (t.reapply !== undefined && t.reapply !== "") head.push(`# re-apply: ${t.reapply.replace(/\s+/g, " ")}`);
    return `${head.join("\n")}\n${script}`;
}
