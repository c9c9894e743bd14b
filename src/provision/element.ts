import { elementFiles, ElementWebSettings } from "../model/element";
import { renderElementConfig } from "../render/element";
import { applyFileSet } from "./apply";
import { indent, lines, Sh, sh } from "./sh";
import { script } from "./shell";

/**
 * Installs a pinned Element Web release on a host:
 *
 *   <root>/versions/<version>/          the release, unpacked (its top directory element-v<version>)
 *   <root>/versions/<version>.sha256    the SHA-256 of the tarball it came from: present means verified and complete
 *   <root>/current -> versions/<version>   what the web server serves, switched atomically (rename of a new link)
 *   <root>/config.json                  rendered; each version has a config.json symlink to it, so it survives a switch
 *   <root>/.incoming/                   downloads and unpacking, emptied after each run
 *
 * The tarball is downloaded only when the version is not installed from a
 * tarball with the pinned checksum, and is used only when its SHA-256
 * matches (fail closed: a mismatch stops the script before anything
 * changed). A second run with the same settings changes nothing.
 */

/** The name of the file set that writes config.json; per root, so two Elements on one host never prune each other's config. */
export function elementFileSetName(root: string): string {
    return `element-web${root.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`.replace(/-+$/, "");
}

/** A version name as the script accepts it when pruning: only directories it could have made are removed. */
const VERSION_DIR_PATTERN = "^[0-9]+\\.[0-9]+\\.[0-9]+(-rc\\.[0-9]+)?$";

/** Downloads, verifies and unpacks the release into versions/<version>; stops the script (nothing changed) when any step fails. */
function downloadStep(s: ElementWebSettings): Sh {
    const f = elementFiles(s.paths);
    const dir = `${f.versions}/${s.version}`;
    const what = `Element ${s.version}`;
    return lines([
        // Beside versions/: the same filesystem, so moving the release into place is a rename.
        sh`pm_element_tmp=$(mktemp -d ${`${f.root}/.incoming/XXXXXX`})`,
        sh`trap 'rm -rf -- "$pm_element_tmp"' EXIT`,
        sh`echo ${`downloading ${what} from ${s.downloadUrl}`}`,
        sh`if ! curl -fsSL --proto =https,http --proto-redir =https,http --retry 3 --retry-delay 2 --retry-connrefused --connect-timeout 20 --max-time 900 -o "$pm_element_tmp/element.tar.gz" ${s.downloadUrl}; then`,
        sh`    echo ${`${what}: the download from ${s.downloadUrl} failed (see curl's message above); nothing was changed`} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`pm_element_sum=$(sha256sum "$pm_element_tmp/element.tar.gz" | cut -d' ' -f1)`,
        sh`if [ "$pm_element_sum" != ${s.sha256} ]; then`,
        sh`    echo ${`${what}: checksum mismatch for ${s.downloadUrl}: expected SHA-256 ${s.sha256} (the sha256 setting), got`} "$pm_element_sum"${`; refusing to use it, nothing was changed`} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`mkdir "$pm_element_tmp/unpacked"`,
        // As root tar would keep the archive's owners and modes: the files are root's, modes per umask.
        sh`if ! tar -xzf "$pm_element_tmp/element.tar.gz" -C "$pm_element_tmp/unpacked" --no-same-owner --no-same-permissions; then`,
        sh`    echo ${`${what}: ${s.downloadUrl} is not a gzip tarball; nothing was changed`} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`pm_element_new="$pm_element_tmp/unpacked/"${`element-v${s.version}`}`,
        sh`if [ ! -f "$pm_element_new/index.html" ]; then`,
        sh`    echo ${`${what}: the tarball has no element-v${s.version}/index.html; nothing was changed`} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`chmod 0755 "$pm_element_new"`,
        sh`ln -sfn ${f.config} "$pm_element_new/config.json"`,
        // A directory without its checksum record (a run stopped halfway, or another tarball) is replaced.
        sh`if [ -e ${dir} ]; then mv -T ${dir} "$pm_element_tmp/replaced"; fi`,
        sh`mv -T "$pm_element_new" ${dir}`,
        sh`printf '%s\n' ${s.sha256} >${`${dir}.sha256.pm-tmp`}`,
        sh`mv -f ${`${dir}.sha256.pm-tmp`} ${`${dir}.sha256`}`,
        sh`rm -rf -- "$pm_element_tmp"`,
        sh`trap - EXIT`,
        sh`pm_element_did=installed`,
    ]);
}

/**
 * The install script: curl and tar (from apt only when missing), the
 * release (downloaded only when not installed and verified), config.json,
 * the `current` switch, and pruning beyond `keepVersions` (never the current
 * version). Prints what it did on its last line.
 */
export function elementInstallScript(s: ElementWebSettings): string {
    const f = elementFiles(s.paths);
    const dir = `${f.versions}/${s.version}`;
    const link = `versions/${s.version}`;
    const what = `Element ${s.version}`;
    return script(`pulumi-matrix Element Web ${s.version}`, [
        sh`if ! command -v curl >/dev/null || ! command -v tar >/dev/null; then pm_apt_install curl ca-certificates tar; fi`,
        sh`mkdir -p ${f.versions} ${`${f.root}/.incoming`}`,
        // One run per root at a time; append mode, so taking the lock never touches the file.
        sh`exec 9>>${`${f.root}/.lock`}`,
        sh`flock -w 600 9 || { echo ${`another run holds ${f.root}/.lock; giving up after 600 s`} >&2; exit 1; }`,
        // What a run that was stopped halfway left behind.
        sh`rm -rf -- ${`${f.root}/.incoming`}/* ${`${f.current}.pm-tmp`}`,
        sh`pm_element_did=none`,
        sh`if [ ! -d ${dir} ] || [ "$(cat ${`${dir}.sha256`} 2>/dev/null)" != ${s.sha256} ]; then`,
        indent(downloadStep(s)),
        sh`fi`,
        // The config before the switch: the version that goes live reads the config meant for it.
        applyFileSet({ name: elementFileSetName(f.root), files: [{ path: f.config, content: renderElementConfig(s) }] }),
        sh`if [ "$(readlink -- ${f.current} 2>/dev/null)" != ${link} ]; then`,
        sh`    if [ -e ${f.current} ] && [ ! -L ${f.current} ]; then`,
        sh`        echo ${`${f.current} is not the symlink pulumi-matrix manages; move it away and run again`} >&2`,
        sh`        exit 1`,
        sh`    fi`,
        sh`    ln -sfn ${link} ${`${f.current}.pm-tmp`}`,
        sh`    mv -T ${`${f.current}.pm-tmp`} ${f.current}`,
        sh`    [ "$pm_element_did" = installed ] || pm_element_did=switched`,
        sh`fi`,
        // Versions beyond keepVersions, newest first by version number; never the current one.
        sh`while IFS= read -r pm_old; do`,
        sh`    rm -rf -- ${f.versions}/"$pm_old" ${f.versions}/"$pm_old".sha256`,
        sh`    echo "removed Element $pm_old"`,
        sh`done < <(find ${f.versions} -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | grep -E ${VERSION_DIR_PATTERN} | grep -vxF -- ${s.version} | sort -rV | tail -n +${s.keepVersions + 1})`,
        sh`case "$pm_element_did" in`,
        sh`    installed) echo ${`installed ${what} (SHA-256 verified), now current`} ;;`,
        sh`    switched) echo ${`${what} (installed before) is now current`} ;;`,
        sh`    *) echo ${`${what} already installed`} ;;`,
        sh`esac`,
    ]);
}
