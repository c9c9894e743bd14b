import { ConfigError } from "./errors";
import { serverNameHost } from "./proxy";
import { Checker, isAbsolutePath, isHostname, isPlainUrl, isServerName } from "./validate";

/**
 * Element Web: a pinned release of the web client, downloaded on the host,
 * checked against a SHA-256 the user pinned, unpacked into a directory of
 * its own per version and switched to by a symlink; and its config.json,
 * which points it at the homeserver. It is served from a domain of its own
 * (see `resolveElementWebSettings`).
 */

/** Where Element's files live on the host. */
export interface ElementPaths {
    /** The directory holding every version, the `current` link and config.json. Default `/var/www/pulumi-matrix-element`. */
    root: string;
}

/**
 * Element's host layout by default. Not a fixed ELEMENT_FILES like the other
 * services' `<SERVICE>_FILES`: it is the default of the user's `paths`
 * option, and the paths in effect are `settings.paths`.
 */
export const DEFAULT_ELEMENT_PATHS: ElementPaths = { root: "/var/www/pulumi-matrix-element" };

/** The release tarballs Element publishes on GitHub; `{version}` is replaced by the version. */
export const DEFAULT_ELEMENT_DOWNLOAD_URL = "https://github.com/element-hq/element-web/releases/download/v{version}/element-v{version}.tar.gz";

/** The settings a user writes for Element Web. */
export interface ElementWebOptions {
    /**
     * The DNS name Element is served on, e.g. `element.example.com`. It must
     * not be the homeserver's own host (the host of Synapse's publicBaseUrl):
     * media the homeserver serves must never run script in Element's origin.
     * Required.
     */
    domain: string;
    /** The Element release to install, e.g. `1.11.100`. Changing it downloads that release and switches to it. Required. */
    version: string;
    /**
     * SHA-256 (64 hex digits) of that release's tarball; the download is
     * refused unless it matches. Required: take it from a tarball you
     * verified (see `SHA256_HOWTO`).
     */
    sha256: string;
    /**
     * Where the tarball is downloaded from on the host, `{version}` replaced
     * by the version (http or https; the checksum protects the content).
     * Default Element's GitHub release:
     * `https://github.com/element-hq/element-web/releases/download/v{version}/element-v{version}.tar.gz`.
     * Set it to use a mirror.
     */
    downloadUrl?: string;
    /** The app's name, shown throughout Element (config.json `brand`). Default `"Element"`. */
    brand?: string;
    /** The colour theme new users start with (config.json `default_theme`). Default `"light"`. */
    defaultTheme?: "light" | "dark";
    /** Hide what guests (unregistered users) could do, such as previewing rooms (config.json `disable_guests`). Default true. */
    disableGuests?: boolean;
    /** Keep users from choosing another homeserver at login and registration (config.json `disable_custom_urls`). Default false. */
    disableCustomUrls?: boolean;
    /** Servers whose public room directories Element offers (config.json `room_directory.servers`). Default: the homeserver's server name. */
    roomDirectoryServers?: string[];
    /** How many versions besides the current one stay on the host (to switch back without a download). Default 2; at least 1. */
    keepVersions?: number;
    /**
     * More config.json keys (a plain JSON object), merged last at the top
     * level: a key here replaces the library's (e.g. the `integrations_*`
     * keys to turn an integration manager on). It cannot set the homeserver
     * (`default_server_config` and the like): that comes from Synapse's
     * settings. Default none.
     */
    extraConfig?: Record<string, unknown>;
    /** Where the files go on the host. Default see `ElementPaths`. */
    paths?: Partial<ElementPaths>;
}

/** Element Web with every default filled in. */
export interface ElementWebSettings {
    /** The DNS name Element is served on. */
    domain: string;
    /** The release, e.g. `1.11.100`. */
    version: string;
    /** The tarball's SHA-256, lower-case hex. */
    sha256: string;
    /** The URL the tarball is downloaded from, `{version}` filled in. */
    downloadUrl: string;
    /** config.json `brand` (default "Element"). */
    brand: string;
    /** config.json `default_theme` (default light). */
    defaultTheme: "light" | "dark";
    /** config.json `disable_guests` (default true). */
    disableGuests: boolean;
    /** config.json `disable_custom_urls` (default false). */
    disableCustomUrls: boolean;
    /** config.json `room_directory.servers` (default the homeserver's server name). */
    roomDirectoryServers: string[];
    /** Versions kept besides the current one (default 2). */
    keepVersions: number;
    /** Top-level config.json keys merged last (may be empty). */
    extraConfig: Record<string, unknown>;
    paths: ElementPaths;
    /** The homeserver's server name (config.json `m.homeserver.server_name`). */
    serverName: string;
    /** The homeserver's client API base URL without a trailing slash (config.json `m.homeserver.base_url`). */
    homeserverUrl: string;
}

/** The paths derived from the root. */
export interface ElementFiles {
    /** Everything below is here; `.incoming/` stages downloads, `.lock` keeps runs apart. */
    root: string;
    /** One directory per installed version, `versions/<version>`, beside it `<version>.sha256` naming the tarball it came from. */
    versions: string;
    /** The symlink to the version in use: the directory a web server serves. */
    current: string;
    /** The rendered config.json, outside every version so it survives a switch; each version has a `config.json` symlink to it. */
    config: string;
}

/** Where each part of an installation lives under the root. */
export function elementFiles(paths: ElementPaths): ElementFiles {
    return { root: paths.root, versions: `${paths.root}/versions`, current: `${paths.root}/current`, config: `${paths.root}/config.json` };
}

export const ELEMENT_DEFAULTS = {
    brand: "Element",
    defaultTheme: "light",
    disableGuests: true,
    disableCustomUrls: false,
    keepVersions: 2,
} as const;

/** How a user finds the checksum to pin; every error about version or sha256 says it. */
export const SHA256_HOWTO =
    "download element-v<version>.tar.gz and its .asc from https://github.com/element-hq/element-web/releases, " +
    "check the signature with Element's release key (gpg --verify element-v<version>.tar.gz.asc), then take sha256sum element-v<version>.tar.gz";

/** config.json keys that say which homeserver to use: only the homeserver settings set them. */
export const HOMESERVER_CONFIG_KEYS = ["default_server_config", "default_server_name", "default_hs_url", "default_is_url"] as const;

/** Element Web's release form: MAJOR.MINOR.PATCH (no leading zeros), release candidates with -rc.N (1.11.100, 1.11.101-rc.0). */
const ELEMENT_VERSION = /^(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})(-rc\.(0|[1-9]\d{0,2}))?$/;

/** An Element release number: 1.11.100, or a release candidate such as 1.11.100-rc.0. */
export function isElementVersion(value: unknown): value is string {
    return typeof value === "string" && ELEMENT_VERSION.test(value);
}

/** A value JSON carries unchanged: null, booleans, finite numbers, strings, arrays and plain objects of these. */
function isJsonValue(v: unknown, depth = 0): boolean {
    if (depth > 32) return false;
    if (v === null || typeof v === "boolean" || typeof v === "string") return true;
    if (typeof v === "number") return Number.isFinite(v);
    if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1));
    return isPlainObject(v) && Object.values(v).every((x) => isJsonValue(x, depth + 1));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
}

/** The download URL with the version filled in, or undefined when it is not an http(s) URL. */
function downloadUrlFor(template: string, version: string): string | undefined {
    if (typeof template !== "string") return undefined;
    const url = template.split("{version}").join(version);
    return isPlainUrl(url) ? url : undefined;
}

/** The host part of a URL, lower case, or undefined. */
function urlHost(url: string): string | undefined {
    try {
        return new URL(url).hostname.toLowerCase();
    } catch {
        return undefined;
    }
}

/**
 * Fills in the defaults and validates them. `homeserver` is the Synapse
 * Element talks to: its server name and its public base URL (the
 * `SynapseHomeserver`'s settings). Every problem is reported at once.
 */
export function resolveElementWebSettings(
    component: string,
    o: ElementWebOptions,
    homeserver: { serverName: string; publicBaseUrl: string },
): ElementWebSettings {
    const c = new Checker(component);
    const hsHost = urlHost(homeserver.publicBaseUrl);
    if (hsHost === undefined || !/^https?:/.test(homeserver.publicBaseUrl)) {
        throw new ConfigError(
            component,
            "synapse.publicBaseUrl",
            homeserver.publicBaseUrl,
            "expected the homeserver's http(s) URL, such as https://matrix.example.com/",
        );
    }
    if (typeof homeserver.serverName !== "string" || !isServerName(homeserver.serverName)) {
        throw new ConfigError(component, "synapse.serverName", homeserver.serverName, "expected the homeserver's server name, such as example.com");
    }

    const domain = typeof o.domain === "string" ? o.domain.toLowerCase().replace(/\.$/, "") : o.domain;
    c.check("domain", o.domain, typeof domain === "string" && isHostname(domain), "expected the DNS name Element is served on, such as element.example.com");
    if (typeof domain === "string" && domain === hsHost) {
        c.errors.push(
            new ConfigError(
                component,
                "domain",
                o.domain,
                `it is the homeserver's own host (of publicBaseUrl ${homeserver.publicBaseUrl}); serve Element from a domain of its own, such as element.${serverNameHost(homeserver.serverName)}, so media the homeserver serves cannot run script in Element's origin`,
            ),
        );
    }

    c.check(
        "version",
        o.version,
        isElementVersion(o.version),
        `expected an Element release such as 1.11.100 or 1.11.101-rc.0: MAJOR.MINOR.PATCH with an optional -rc.N, as Element tags its releases (no leading v; pin the release and its sha256: ${SHA256_HOWTO})`,
    );
    c.check(
        "sha256",
        o.sha256,
        typeof o.sha256 === "string" && /^[0-9a-fA-F]{64}$/.test(o.sha256),
        `expected the SHA-256 of the release tarball (64 hex digits); there is no default: ${SHA256_HOWTO}`,
    );

    const template = o.downloadUrl ?? DEFAULT_ELEMENT_DOWNLOAD_URL;
    const version = isElementVersion(o.version) ? o.version : "0.0.0";
    const downloadUrl = downloadUrlFor(template, version);
    c.check(
        "downloadUrl",
        o.downloadUrl,
        downloadUrl !== undefined,
        "expected an https:// or http:// URL of the tarball, {version} standing for the version, such as https://mirror.example.com/element-v{version}.tar.gz (no spaces, quotes or credentials)",
    );

    const brand = o.brand ?? ELEMENT_DEFAULTS.brand;
    c.check("brand", o.brand, typeof brand === "string" && /^[^\p{Cc}]{1,100}$/u.test(brand) && brand.trim() !== "", "expected a name of 1 to 100 characters");
    const defaultTheme = o.defaultTheme ?? ELEMENT_DEFAULTS.defaultTheme;
    c.oneOf("defaultTheme", defaultTheme, ["light", "dark"]);
    const disableGuests = o.disableGuests ?? ELEMENT_DEFAULTS.disableGuests;
    c.check("disableGuests", o.disableGuests, typeof disableGuests === "boolean", "expected true or false");
    const disableCustomUrls = o.disableCustomUrls ?? ELEMENT_DEFAULTS.disableCustomUrls;
    c.check("disableCustomUrls", o.disableCustomUrls, typeof disableCustomUrls === "boolean", "expected true or false");

    const roomDirectoryServers = o.roomDirectoryServers ?? [homeserver.serverName];
    if (!Array.isArray(roomDirectoryServers)) {
        c.check("roomDirectoryServers", roomDirectoryServers, false, 'expected a list of server names, such as ["example.com", "matrix.org"]');
    } else {
        for (const server of roomDirectoryServers)
            c.check(
                "roomDirectoryServers",
                server,
                typeof server === "string" && isServerName(server),
                "expected server names such as example.com or matrix.org",
            );
    }

    const keepVersions = o.keepVersions ?? ELEMENT_DEFAULTS.keepVersions;
    c.check(
        "keepVersions",
        o.keepVersions,
        Number.isInteger(keepVersions) && keepVersions >= 1 && keepVersions <= 20,
        "expected a whole number from 1 to 20: how many versions besides the current one stay on the host",
    );

    const extraConfig = o.extraConfig ?? {};
    if (!isPlainObject(extraConfig) || !isJsonValue(extraConfig)) {
        c.check(
            "extraConfig",
            extraConfig,
            false,
            "expected a plain JSON object of config.json keys (strings, finite numbers, booleans, null, lists and objects of these)",
        );
    } else {
        const clashes = HOMESERVER_CONFIG_KEYS.filter((k) => k in extraConfig);
        c.check(
            "extraConfig",
            Object.fromEntries(clashes.map((k) => [k, extraConfig[k]])),
            clashes.length === 0,
            `${clashes.join(", ")} cannot be set here: the homeserver Element uses comes from the Synapse settings (serverName, publicBaseUrl); expected other config.json keys, such as {"show_labs_settings": true} (valid: any key but ${HOMESERVER_CONFIG_KEYS.join(", ")})`,
        );
    }

    const root = (o.paths?.root ?? DEFAULT_ELEMENT_PATHS.root).replace(/(?<=.)\/+$/, "");
    c.check(
        "paths.root",
        o.paths?.root,
        isAbsolutePath(root) && root !== "/",
        "expected an absolute directory such as /var/www/pulumi-matrix-element (letters, digits, ._-/+@; not /)",
    );
    c.done();

    return {
        domain: domain as string,
        version: o.version,
        sha256: o.sha256.toLowerCase(),
        downloadUrl: downloadUrl as string,
        brand,
        defaultTheme,
        disableGuests,
        disableCustomUrls,
        roomDirectoryServers: [...roomDirectoryServers],
        keepVersions,
        extraConfig: { ...extraConfig },
        paths: { root },
        serverName: homeserver.serverName,
        homeserverUrl: homeserver.publicBaseUrl.replace(/\/+$/, ""),
    };
}
