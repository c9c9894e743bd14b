import { Checker, isPlainUrl } from "../validate";

/**
 * How Synapse gets onto a host: the install method and, for `apt`, the
 * Debian repository it comes from. The defaults are matrix.org's; a test (or
 * a mirror) points the method at another repository laid out the same way.
 */

/**
 * `pip`: a virtualenv with Synapse from PyPI at exactly the pinned release, on
 * any architecture. `apt`: matrix.org's Debian package (amd64; the repository
 * serves only its newest build, so the pin must be that release).
 */
export type InstallMethod = "apt" | "pip";

export const INSTALL_METHODS = ["apt", "pip"] as const satisfies readonly InstallMethod[];

/** The default: it installs any pinned release on every supported host (see the README's install methods). */
export const DEFAULT_INSTALL_METHOD: InstallMethod = "pip";

/** A Debian repository that serves Synapse as matrix.org's does (package `matrix-synapse-py3`, `<version>+<codename>N`). */
export interface AptRepository {
    /** The repository's root, where `dists/` is: the URI of the `deb` line, ending in `/`. */
    url: string;
    /** Where the repository's keyring is downloaded when the host has none (or has an expired or different one). */
    keyringUrl: string;
    /** Fingerprint (40 hex digits) of the one key the keyring must hold; checked on every run. */
    fingerprint: string;
}

/** matrix.org's repository, the apt method's default. */
export const MATRIX_ORG_REPOSITORY: AptRepository = {
    url: "https://packages.matrix.org/debian/",
    keyringUrl: "https://packages.matrix.org/debian/matrix-org-archive-keyring.gpg",
    fingerprint: "AAF9AE843A7584B5A3E4CD2BCF45A512DE2DA058",
};

/** Names the package and its repository fix; the apt method uses them whatever the repository. */
export const APT_NAMES = {
    /** The Synapse package. */
    package: "matrix-synapse-py3",
    /** The package that ships (and renews) the repository's keyring at `keyring`. */
    keyringPackage: "matrix-org-archive-keyring",
    keyring: "/usr/share/keyrings/matrix-org-archive-keyring.gpg",
    sourcesList: "/etc/apt/sources.list.d/matrix-org.list",
    /** The unit the package ships, enables and starts (the library's own unit of the same name replaces it). */
    unit: "matrix-synapse.service",
    /** Directories the package ships whose owner and mode the library registers (dpkg-statoverride) before the package does. */
    configDir: "/etc/matrix-synapse",
    dataDir: "/var/lib/matrix-synapse",
} as const;

/** How the install method options are written by a user (part of `SynapseOptions`). */
export interface InstallOptions {
    /**
     * `pip` (default): a virtualenv from PyPI with exactly the pinned release, any architecture.
     * `apt`: matrix.org's Debian package (amd64, and only the release the repository serves).
     * See the README's install methods.
     */
    installMethod?: InstallMethod;
    /**
     * The Debian repository of the `apt` method: `url`, `keyringUrl` and `fingerprint`, each
     * defaulting to matrix.org's. Only with `installMethod: "apt"`.
     */
    aptRepository?: Partial<AptRepository>;
}

/** The resolved install settings: `aptRepository` is there with the apt method (matrix.org's unless set), or when a user set it. */
export interface InstallSettings {
    installMethod: InstallMethod;
    aptRepository?: AptRepository;
}

export function resolveInstall(o: InstallOptions): InstallSettings {
    const installMethod = o.installMethod ?? DEFAULT_INSTALL_METHOD;
    if (installMethod !== "apt" && o.aptRepository === undefined) return { installMethod };
    const r = o.aptRepository ?? {};
    return {
        installMethod,
        aptRepository: {
            url: r.url ?? MATRIX_ORG_REPOSITORY.url,
            keyringUrl: r.keyringUrl ?? MATRIX_ORG_REPOSITORY.keyringUrl,
            fingerprint: typeof r.fingerprint === "string" ? r.fingerprint.toUpperCase() : (r.fingerprint ?? MATRIX_ORG_REPOSITORY.fingerprint),
        },
    };
}

/**
 * Checks the install settings (a repository with `pip` is refused: it would
 * do nothing). `serverName` is checked against the apt package's postinst,
 * which rewrites the `server_name` line unquoted.
 */
export function validateInstall(c: Checker, s: InstallSettings, serverName: string): void {
    c.oneOf("installMethod", s.installMethod, INSTALL_METHODS);
    const r = s.aptRepository;
    if (!r) return;
    if (s.installMethod !== "apt") {
        c.check("aptRepository", r, false, 'it applies only to installMethod "apt"; remove it, or set installMethod "apt"');
        return;
    }
    c.check(
        "aptRepository.url",
        r.url,
        isPlainUrl(r.url) && !/[?#]/.test(r.url) && r.url.endsWith("/"),
        `expected the http(s) URL of the repository's root (where dists/ is), ending in /, such as ${MATRIX_ORG_REPOSITORY.url}`,
    );
    c.check(
        "aptRepository.keyringUrl",
        r.keyringUrl,
        isPlainUrl(r.keyringUrl),
        `expected the http(s) URL of the repository's keyring file, such as ${MATRIX_ORG_REPOSITORY.keyringUrl}`,
    );
    c.check(
        "aptRepository.fingerprint",
        r.fingerprint,
        typeof r.fingerprint === "string" && /^[0-9A-F]{40}$/.test(r.fingerprint),
        `expected the signing key's full fingerprint: 40 hexadecimal digits without spaces, such as ${MATRIX_ORG_REPOSITORY.fingerprint}`,
    );
    if (typeof serverName === "string") {
        // The package's postinst (manage_debconf.pl) writes `server_name: <value>` unquoted into homeserver.yaml:
        // a value YAML must quote would become a different value (an IPv6 literal turns into a list).
        c.check(
            "serverName",
            serverName,
            !serverName.startsWith("["),
            'with installMethod "apt" the package rewrites the server_name line unquoted, which turns an IPv6 literal into a YAML list; use a host name, or installMethod "pip"',
        );
    }
}

/**
 * What an upgrade does when the new release fails after it migrated the
 * database beyond what the old release reads: `stop` leaves Synapse stopped
 * and names the pre-upgrade backup; `restore` restores it and starts the old
 * release.
 */
export type UpgradeRollback = "stop" | "restore";

export const UPGRADE_ROLLBACKS = ["stop", "restore"] as const satisfies readonly UpgradeRollback[];

/** The resolved upgrade settings. */
export interface UpgradeSettings {
    rollback: UpgradeRollback;
    /** A backup tagged with the old release is taken before the switch. */
    backup: boolean;
}

/** `rollback: "restore"` needs the backup it restores. */
export function validateUpgrade(c: Checker, u: UpgradeSettings): void {
    c.oneOf("rollback", u.rollback, UPGRADE_ROLLBACKS);
    c.check("upgradeBackup", u.backup, typeof u.backup === "boolean", "expected true or false");
    if (u.rollback === "restore")
        c.check(
            "rollback",
            u.rollback,
            u.backup === true,
            'rollback "restore" restores the backup taken before the upgrade: it needs upgradeBackup (a SynapseBackup on the host; MatrixStack sets it with backup); add a backup, or use rollback "stop"',
        );
}
