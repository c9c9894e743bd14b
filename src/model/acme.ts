import { Checker, isAbsolutePath, isEmail } from "./validate";

/**
 * Certificates from an ACME CA (Let's Encrypt by default) for the names
 * nginx serves. certbot from the distro obtains them through HTTP-01 on
 * nginx's port 80 and renews them with its own timer, without Pulumi.
 */

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
}

/** The ACME settings with every default filled in. */
export interface AcmeSettings {
    email: string;
    directoryUrl: string;
    caBundle?: string;
    keyType: "ecdsa" | "rsa";
    /** Where certbot's HTTP-01 challenge files live; nginx serves them on port 80. */
    webroot: string;
}

export const ACME_DEFAULTS = { directoryUrl: LETS_ENCRYPT, keyType: "ecdsa", webroot: "/var/www/pulumi-matrix-acme" } as const;

/** Fills in the defaults and validates; `prefix` names where the settings sit in the user's arguments. */
export function resolveAcmeSettings(component: string, o: Partial<AcmeOptions> | undefined, prefix = "acme."): AcmeSettings {
    const c = new Checker(component);
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
    };
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
    c.check("webroot", s.webroot, isAbsolutePath(s.webroot), "expected an absolute path");
    c.done();
    return s;
}
