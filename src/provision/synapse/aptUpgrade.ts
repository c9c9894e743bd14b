import { SynapseSettings } from "../../model/synapse";
import { APT_NAMES } from "../../model/synapse/install";
import { lines, raw, Sh, sh } from "../sh";
import { KEPT_DEBS_DIR, ReleaseSwitch, releaseUpgrade } from "./upgrade";

/**
 * A change of Synapse's release with installMethod "apt", undone as the pip
 * method's is (`releaseUpgrade`). A package replaces the running release's
 * files, so "beside the old one" is two things: the new build's .deb,
 * unpacked into a temp directory, is the new code that loads the config and
 * reads the schema while nothing has changed; and the running build's .deb,
 * kept since it was installed, is what a switch back reinstalls. The switch
 * is the install of the new .deb (Synapse's start refused), the switch back
 * the reinstall of the kept one.
 */

/** The kept .deb of one build of the package. */
export function keptDeb(build: string): string {
    return `${KEPT_DEBS_DIR}/${APT_NAMES.package}_${build}.deb`;
}

/**
 * Shell functions of the apt method (the script's `pm_apt_install_quietly`
 * and `pm_package_leftovers` must be defined):
 * - `pm_deb_keep BUILD`: sets `pm_deb` to the kept .deb of the build, keeping
 *   it first when it is not: from apt's cache (apt verified it when it
 *   downloaded it), else `apt-get download` from the index (verified by apt).
 *   Prints what it kept; non-zero (and `pm_deb` empty) when it cannot.
 * - `pm_deb_install FILE BUILD`: installs the .deb with Synapse's start
 *   refused (a downgrade allowed: a switch back), holds the package and
 *   checks that dpkg has exactly BUILD.
 */
export function debFunctions(): Sh {
    const p = APT_NAMES.package;
    const dir = KEPT_DEBS_DIR;
    return lines([
        sh`pm_deb_is() { [ -s "$1" ] && [ "$(dpkg-deb -f "$1" Package 2>/dev/null)" = ${p} ] && [ "$(dpkg-deb -f "$1" Version 2>/dev/null)" = "$2" ]; }`,
        sh`pm_deb_keep() {`,
        sh`    local want=${dir}/${p}_"$1".deb f`,
        sh`    pm_deb=""`,
        sh`    install -d -m 0700 ${dir}`,
        sh`    if pm_deb_is "$want" "$1"; then pm_deb=$want; return 0; fi`,
        sh`    for f in /var/cache/apt/archives/${p}_"${raw("${1//:/%3a}")}"_*.deb; do`,
        sh`        if pm_deb_is "$f" "$1"; then cp -f -- "$f" "$want.part" && mv -f -- "$want.part" "$want"; pm_deb=$want; echo "kept the package of Synapse $1 from apt's cache in $want"; return 0; fi`,
        sh`    done`,
        sh`    rm -rf -- ${`${dir}/download`}; install -d -m 0700 ${`${dir}/download`}`,
        // Root reads the root-only directory: apt's download sandbox user could not.
        sh`    if (cd ${`${dir}/download`} && pm_apt -q -o APT::Sandbox::User=root download ${p}"=$1" >/dev/null 2>&1); then`,
        sh`        for f in ${`${dir}/download`}/*.deb; do if pm_deb_is "$f" "$1"; then mv -f -- "$f" "$want"; pm_deb=$want; echo "kept the package of Synapse $1 in $want"; fi; done`,
        sh`    fi`,
        sh`    rm -rf -- ${`${dir}/download`}`,
        sh`    [ -n "$pm_deb" ]`,
        sh`}`,
        sh`pm_deb_install() {`,
        sh`    local got`,
        sh`    pm_apt_install_quietly -y -q --no-install-recommends --allow-change-held-packages --allow-downgrades -o APT::Sandbox::User=root -o Dpkg::Options::=--force-confold "$1" || return 1`,
        sh`    apt-mark hold ${p} >/dev/null || return 1`,
        sh`    got=$(dpkg-query -W -f='${raw("${db:Status-Status} ${Version}")}' ${p} 2>/dev/null || true)`,
        sh`    if [ "$got" != "installed $2" ]; then echo ${`${p}: dpkg reports`}" '$got' after the install, expected 'installed $2'" >&2; return 1; fi`,
        sh`    pm_package_leftovers`,
        sh`}`,
    ]);
}

/**
 * The apt method's switch; the script has set `$pm_new_deb` (the new build's
 * kept .deb), `$pm_exact` (its build) and `$pm_old_deb` (the running build's,
 * empty when it could not be kept), and unpacked the new .deb into
 * `$pm_unpack`.
 */
export function aptSwitch(s: SynapseSettings, repositoryUrl: string): ReleaseSwitch {
    return {
        newVenv: raw(`"$pm_unpack"${s.paths.venvDir}`),
        oldVenv: sh`${s.paths.venvDir}`,
        switchTo: sh`{ pm_deb_install "$pm_new_deb" "$pm_exact" && echo "Synapse $pm_exact installed from "${repositoryUrl}" (held: only pulumi-matrix changes its version)"; }`,
        switchBack: raw('{ pm_deb_install "$pm_old_deb" "$pm_old_build" && echo "Synapse $pm_old_build reinstalled from $pm_old_deb"; }'),
        canSwitchBack: raw('[ -n "$pm_old_deb" ]'),
        noSwitchBack: sh`echo "the package of the running build $pm_old_build is not at hand (it was not kept when it was installed, apt's cache does not have it and "${repositoryUrl}" does not serve it): there is no switch back to it" >&2`,
        // Kept: the build before (a switch back), and this one.
        prune: lines([
            sh`for pm_d in ${KEPT_DEBS_DIR}/*.deb; do`,
            sh`    if [ -e "$pm_d" ] && [ "$pm_d" != "$pm_new_deb" ] && [ "$pm_d" != "$pm_old_deb" ]; then rm -f -- "$pm_d"; echo "removed the package $pm_d"; fi`,
            sh`done`,
        ]),
    };
}

/**
 * The upgrade from the installed build `$pm_old_build` (`$installed` its
 * release) to `$pm_exact`, whose .deb is `$pm_new_deb`.
 */
export function aptUpgrade(s: SynapseSettings, mainUnit: string, repositoryUrl: string): Sh {
    return lines([
        sh`if pm_deb_keep "$pm_old_build"; then pm_old_deb=$pm_deb; else pm_old_deb=""; fi`,
        // The new code beside the running one: Synapse's user reads it there (the package's own modes, a directory of its group).
        sh`pm_unpack=$(mktemp -d /var/tmp/pulumi-matrix-synapse.XXXXXX)`,
        sh`if ! dpkg-deb -x "$pm_new_deb" "$pm_unpack"; then echo "the package $pm_new_deb cannot be unpacked (above): nothing was switched" >&2; exit 1; fi`,
        sh`chgrp ${s.paths.user} "$pm_unpack" && chmod 0750 "$pm_unpack"`,
        releaseUpgrade(s, mainUnit, aptSwitch(s, repositoryUrl)),
    ]);
}
