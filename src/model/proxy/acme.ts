import { ConfigError, SECRET_VALUE } from "../errors";
import { Checker, isAbsolutePath, isEmail } from "../validate";

/**
 * Certificates from an ACME CA (Let's Encrypt by default) for the names
 * nginx serves. certbot from the distro obtains them through HTTP-01 on
 * nginx's port 80 (default), or through DNS-01 with TXT records it writes
 * in Cloudflare (for names this host cannot serve on port 80), and renews
 * them with its own timer, without Pulumi.
 */

/** How the CA checks that the names are ours. */
export const ACME_CHALLENGES = ["http-01", "dns-01-cloudflare"] as const;
export type AcmeChallenge = (typeof ACME_CHALLENGES)[number];

/** Let's Encrypt's production directory: trusted by every client. */
export const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt's staging directory: generous rate limits, certificates no client trusts. For trying a setup. */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** The certificate settings a user writes. */
export interface AcmeOptions {
    /** Contact address for the CA's expiry and policy mails. Required. */
    email: string;
    /**
     * The ACME directory URL: Let's Encrypt production by default,
     * `LETS_ENCRYPT_STAGING` to try a setup, or any RFC 8555 CA (a test CA
     * such as Pebble, a company CA). Changing it issues a new certificate on
     * the next `pulumi up`.
     */
    directoryUrl?: string;
    /**
     * PEM of the CA that signed the ACME server's own HTTPS certificate, when
     * the host does not trust it already (a test or company CA). certbot
     * trusts it for the first issuance and every renewal. Default: the system's CAs.
     */
    caBundle?: string;
    /** Key type of the certificate. Default `ecdsa` (P-256); `rsa` (2048 bits) for very old clients. */
    keyType?: "ecdsa" | "rsa";
    /**
     * How the CA validates the names. `http-01` (default): the CA fetches a
     * token from `http://<name>/.well-known/acme-challenge/` on nginx's port 80,
     * so every name's DNS must point to this host and port 80 be reachable.
     * `dns-01-cloudflare`: certbot's Cloudflare plugin (Debian's
     * `python3-certbot-dns-cloudflare`) writes a TXT record
     * `_acme-challenge.<name>` through the Cloudflare API and removes it
     * afterwards; for names this host cannot serve on port 80 (a firewall,
     * another server on the name). Every name must be in a Cloudflare zone
     * the API token may edit: give the component a `cloudflareApiToken`
     * (Zone:DNS:Edit), which is written to a root-only file, never into a
     * readable script. Changing it issues a new certificate on the next `pulumi up`.
     */
    challenge?: AcmeChallenge;
    /**
     * With `dns-01-cloudflare`: seconds certbot waits after writing the TXT
     * records before the CA checks them (Cloudflare's name servers pick them
     * up within seconds). Default 30; 0 to 3600.
     */
    propagationSeconds?: number;
}

/** The ACME settings with every default filled in. */
export interface AcmeSettings {
    email: string;
    directoryUrl: string;
    caBundle?: string;
    keyType: "ecdsa" | "rsa";
    /** Where certbot's HTTP-01 challenge files live; nginx serves them on port 80. */
    webroot: string;
    challenge: AcmeChallenge;
    /** Only with `dns-01-cloudflare`. */
    propagationSeconds?: number;
    /**
     * The homeserver is in standby here (a move to a new VM): its names
     * still point to the live server, so an HTTP-01 request waits for the
     * end of standby. Absent: not in standby.
     */
    standby?: true;
}

export const ACME_DEFAULTS = {
    directoryUrl: LETS_ENCRYPT,
    keyType: "ecdsa",
    webroot: "/var/www/pulumi-matrix-acme",
    challenge: "http-01",
    propagationSeconds: 30,
} as const;

/** Fills in the defaults and validates; `prefix` names where the settings sit in the user's arguments. */
export function resolveAcmeSettings(component: string, o: Partial<AcmeOptions> | undefined, prefix = "acme.", into?: Checker): AcmeSettings {
    // With `into`, the problems join the caller's, which reports them all at once.
    const c = into ?? new Checker(component);
    const email = o?.email;
    c.check(
        `${prefix}email`,
        email,
        typeof email === "string" && isEmail(email),
        "expected the contact address the CA writes to about expiring certificates, such as admin@example.com (required)",
    );
    const s: AcmeSettings = {
        email: email ?? "",
        directoryUrl: o?.directoryUrl ?? ACME_DEFAULTS.directoryUrl,
        ...(o?.caBundle !== undefined ? { caBundle: o.caBundle } : {}),
        keyType: o?.keyType ?? ACME_DEFAULTS.keyType,
        webroot: ACME_DEFAULTS.webroot,
        challenge: o?.challenge ?? ACME_DEFAULTS.challenge,
    };
    if (s.challenge === "dns-01-cloudflare") s.propagationSeconds = o?.propagationSeconds ?? ACME_DEFAULTS.propagationSeconds;
    let urlOk = false;
    try {
        const u = new URL(s.directoryUrl);
        urlOk = u.protocol === "https:" && u.username === "" && u.hash === "" && !/[\s'"\\]/.test(s.directoryUrl);
    } catch {
        urlOk = false;
    }
    c.check(
        `${prefix}directoryUrl`,
        s.directoryUrl,
        urlOk,
        `expected the https:// URL of an ACME directory, such as ${LETS_ENCRYPT} (Let's Encrypt) or ${LETS_ENCRYPT_STAGING} (staging)`,
    );
    if (s.caBundle !== undefined)
        c.check(
            `${prefix}caBundle`,
            s.caBundle.length > 60 ? `${s.caBundle.slice(0, 40)}...` : s.caBundle,
            /^-----BEGIN CERTIFICATE-----\r?\n[\s\S]+-----END CERTIFICATE-----\s*$/.test(s.caBundle.trim() + "\n"),
            "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        );
    c.oneOf(`${prefix}keyType`, s.keyType, ["ecdsa", "rsa"]);
    c.check(
        `${prefix}challenge`,
        s.challenge,
        (ACME_CHALLENGES as readonly unknown[]).includes(s.challenge),
        'expected "http-01" (the CA fetches a token from nginx on port 80; the default) or "dns-01-cloudflare" (certbot writes a TXT record through the Cloudflare API)',
    );
    if (o?.propagationSeconds !== undefined)
        c.check(
            `${prefix}propagationSeconds`,
            o.propagationSeconds,
            s.challenge === "dns-01-cloudflare",
            'it is only used with challenge "dns-01-cloudflare" (how long certbot waits for the TXT records); leave it out with HTTP-01',
        );
    if (s.propagationSeconds !== undefined) {
        const p = s.propagationSeconds;
        c.check(
            `${prefix}propagationSeconds`,
            p,
            typeof p === "number" && Number.isInteger(p) && p >= 0 && p <= 3600,
            "expected a whole number of seconds from 0 to 3600 (default 30)",
        );
    }
    c.check("webroot", s.webroot, isAbsolutePath(s.webroot), "expected an absolute path");
    if (!into) c.done();
    return s;
}

/**
 * Whether the challenge and the Cloudflare API token go together: DNS-01
 * through Cloudflare needs the token, HTTP-01 uses none (a token given then
 * would be kept for nothing). `tokenGiven`: the component got one (its
 * value is secret and never shown). `setting` names the token's argument.
 */
export function checkAcmeCredentials(
    component: string,
    acme: Pick<AcmeSettings, "challenge">,
    tokenGiven: boolean,
    setting = "cloudflareApiToken",
    prefix = "acme.",
): void {
    if (acme.challenge === "dns-01-cloudflare" && !tokenGiven)
        throw new ConfigError(
            component,
            setting,
            undefined,
            `${prefix}challenge "dns-01-cloudflare" writes the TXT records through the Cloudflare API: expected a Cloudflare API token with the Zone:DNS:Edit permission for the certificate's zones (a secret)`,
        );
    if (acme.challenge !== "dns-01-cloudflare" && tokenGiven)
        throw new ConfigError(
            component,
            setting,
            SECRET_VALUE,
            `it is only used with ${prefix}challenge "dns-01-cloudflare", and the challenge is ${JSON.stringify(acme.challenge)} (HTTP-01 needs no token): set the challenge to "dns-01-cloudflare", or leave the token out`,
        );
}

/** What a Cloudflare API token may contain here: no whitespace, quotes or `#` (certbot's credentials file is an INI file). */
export function isCloudflareApiToken(token: string): boolean {
    return /^[A-Za-z0-9._~+/=-]{20,400}$/.test(token);
}

/** Checks a Cloudflare API token's form (its value, secret, is never shown). */
export function validateCloudflareApiToken(component: string, setting: string, token: string): void {
    if (!isCloudflareApiToken(token))
        throw new ConfigError(
            component,
            setting,
            SECRET_VALUE,
            "expected a Cloudflare API token: the 40 characters (letters, digits, - and _) Cloudflare shows once when it creates the token, without spaces or line breaks",
        );
}

/** certbot's live directory of the lineage named `certName` (`/etc/letsencrypt/live/<certName>`). */
export function lineageLiveDir(certName: string): string {
    return `/etc/letsencrypt/live/${certName}`;
}

/**
 * One certbot lineage (one certificate, one private key): its name, the
 * names it covers and where the request it was issued for is kept. The
 * web names are one lineage; a service that must not hold the web key
 * (coturn) gets a lineage of its own.
 */
export interface CertificateLineage {
    /** certbot's `--cert-name`: the directory under /etc/letsencrypt/live. */
    certName: string;
    /** The names on the certificate. */
    names: string[];
    /** The file holding the request the certificate was issued for: a changed request asks the CA again. */
    requestFile: string;
}
