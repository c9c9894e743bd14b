/**
 * Secrets written into Synapse's extraConfig. homeserver.yaml is readable
 * (a preview, a PR comment, the drift record show it), so a secret there
 * at any depth is refused, with the way that keeps it out.
 */
import { ConfigError, SECRET_VALUE } from "../errors";

/** A key's last word that names a secret (`client_secret`, `bind_password`, `smtp_pass`, `admin_token`). */
const SECRET_LAST_WORDS = new Set(["secret", "password", "passwd", "pass", "token", "pepper", "apikey"]);
/** The word before a last word `key` that makes the key a secret (`macaroon_secret_key`, `secret_access_key`, `api_key`). */
const SECRET_KEY_KINDS = new Set(["secret", "private", "api", "access", "signing", "encryption", "hmac", "master", "shared"]);

/** A key name's words: snake_case, kebab-case and camelCase, lower-cased. */
function words(key: string): string[] {
    return key
        .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
        .toLowerCase()
        .split(/[^a-z0-9]+/)
        .filter((w) => w !== "");
}

/**
 * Whether a key names a secret: its last word is secret, password, passwd,
 * pass, token, pepper or apikey, or its last two are `<kind> key` with kind
 * secret, private, api, access, signing, encryption, hmac, master or shared;
 * also `key` inside `client_secret_jwt_key` (an OIDC client's private key).
 * A name ending in another word (`client_secret_path`, `token_endpoint`,
 * `access_token_lifetime`, `password_reset`) is not one.
 */
export function isSecretKeyName(key: string, parent?: string): boolean {
    if (key === "key" && parent === "client_secret_jwt_key") return true;
    const w = words(key);
    const last = w[w.length - 1];
    if (last === undefined) return false;
    if (SECRET_LAST_WORDS.has(last)) return true;
    return last === "key" && w.length > 1 && SECRET_KEY_KINDS.has(w[w.length - 2]!);
}

/** A value that would put a secret in the file: text or a number (a flag such as `registration_requires_token: true` is none). */
function holdsValue(v: unknown): boolean {
    return (typeof v === "string" && v !== "") || typeof v === "number";
}

/** Where a secret found at a path should go instead, by the path with its list indexes left out. */
function instead(path: string, configDir: string): string {
    const at = path.replace(/\[\d+\]/g, "[]");
    const own = `put it in a file you manage on the host (mode 0640, group matrix-synapse)`;
    const managed: Record<string, string> = {
        macaroon_secret_key: "the library generates it and gives it to Synapse through macaroon_secret_key_path; leave it out",
        form_secret: "the library generates it and gives it to Synapse through form_secret_path; leave it out",
        registration_shared_secret:
            "the library generates it and gives it to Synapse through registration_shared_secret_path (SynapseHomeserver's registrationSharedSecret output); leave it out",
        worker_replication_secret: "a WorkerPool generates it and gives it to Synapse through worker_replication_secret_path; leave it out",
        turn_shared_secret: `a TurnServer (turn) generates it; for another TURN server, ${own} and set turn_shared_secret_path to it`,
        "redis.password": `the library's Redis sets it through redis.password_path; for your own server, ${own} and set redis.password_path to it`,
        "email.smtp_pass": "give it as smtpPassword (a secret): the library writes it to a root-only conf.d fragment",
        "database.args.password": "the library gives the database password to Synapse in a passfile (secrets/pgpass); leave it out",
        recaptcha_private_key: `${own} and set recaptcha_private_key_path to it`,
        "experimental_features.msc3861.client_secret": `${own} and set experimental_features.msc3861.client_secret_path to it`,
        "experimental_features.msc3861.admin_token": `${own} and set experimental_features.msc3861.admin_token_path to it`,
    };
    if (managed[at]) return managed[at];
    const top = path.split(/[.[]/)[0];
    return (
        `Synapse reads this option from no file: move the whole top-level ${top} out of extraConfig into a YAML file you manage in ${configDir}/conf.d/ ` +
        `(mode 0640, group matrix-synapse; Synapse reads it after homeserver.yaml), or for a module, give the secret the way its documentation says`
    );
}

/** Every secret in extraConfig, at any depth: `oidc_providers[0].client_secret`. */
export function extraConfigSecrets(extra: Record<string, unknown>): string[] {
    const found: string[] = [];
    const walk = (v: unknown, path: string, key: string | undefined, parent: string | undefined): void => {
        if (key !== undefined && isSecretKeyName(key, parent) && holdsValue(v)) found.push(path);
        if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${path}[${i}]`, undefined, key));
        else if (v !== null && typeof v === "object") {
            for (const [k, child] of Object.entries(v)) walk(child, path === "" ? k : `${path}.${k}`, k, key);
        }
    };
    walk(extra, "", undefined, undefined);
    return found;
}

/** One ConfigError per secret in extraConfig, named by its path; the value is never shown. */
export function extraConfigSecretErrors(component: string, extra: Record<string, unknown>, configDir: string): ConfigError[] {
    return extraConfigSecrets(extra).map(
        (path) =>
            new ConfigError(
                component,
                `extraConfig.${path}`,
                SECRET_VALUE,
                `secrets do not belong in extraConfig: homeserver.yaml is readable (previews, PR comments, the drift record show it); ${instead(path, configDir)}`,
            ),
    );
}
