set -euo pipefail
# The last command of a pipeline runs in this shell, so "... | pm_write" can record its change.
shopt -s lastpipe
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
umask 022
declare -A pm_dirty=() pm_files=() pm_stages=() pm_marked=() pm_kept=() pm_undo=() pm_lists=()
declare -a pm_keep_path=() pm_keep_file=()
mkdir -p /var/lib/pulumi-matrix/filesets /var/lib/pulumi-matrix/owed-restart /var/lib/pulumi-matrix/pending /var/lib/pulumi-matrix/staging /var/lib/pulumi-matrix/written/records /var/lib/pulumi-matrix/written/files
# The copies of what was written are root's alone, like many of the files they copy; so is what is staged.
chmod 0700 /var/lib/pulumi-matrix/written /var/lib/pulumi-matrix/staging
# This run's staging directory, locked while the run lives. Under the guard, so a run that
# starts now cannot take another's fresh directory for a dead one.
exec {pm_guard}>/var/lib/pulumi-matrix/staging/.guard
flock -w 120 "$pm_guard"
pm_run=$(mktemp -d /var/lib/pulumi-matrix/staging/run-XXXXXX)
exec {pm_lock}>"$pm_run/.lock"
flock -n "$pm_lock"
# What runs that died left (staged files, kept copies): their lock is free, or gone.
for pm_old in $([ ! -f /var/lib/pulumi-matrix/staging/bases ] || sed 's|$|/run-*|' /var/lib/pulumi-matrix/staging/bases) /var/lib/pulumi-matrix/staging/run-*; do
    [ -d "$pm_old" ] && [ "${pm_old##*/}" != "${pm_run##*/}" ] || continue
    if flock -n "/var/lib/pulumi-matrix/staging/${pm_old##*/}/.lock" true 2>/dev/null || [ ! -d "/var/lib/pulumi-matrix/staging/${pm_old##*/}" ]; then rm -rf -- "$pm_old"; fi
done
exec {pm_guard}>&-
# Temp files older versions made beside their targets: a stale one in a hook or a conf.d directory is run or parsed.
for pm_old in /var/lib/pulumi-matrix/filesets/*.list; do
    [ -f "$pm_old" ] || continue
    while IFS= read -r pm_old; do
        for pm_t in "$pm_old".pm-??????; do if [ -f "$pm_t" ] && [ ! -L "$pm_t" ]; then rm -f -- "$pm_t"; fi; done
    done <"$pm_old"
done
# pm_stage_for DIR: sets pm_stage to this run's root-only staging directory on DIR's filesystem,
# from where a rename into DIR is atomic.
pm_stage_for() {
    local mnt base
    # No mount table to read (a chroot whose root is no mount point): the state directory's staging,
    # which the device check below accepts only on DIR's filesystem.
    mnt=$(findmnt -n -o TARGET --target "$1" 2>/dev/null || true)
    if [ -n "$mnt" ] && [ -n "${pm_stages[$mnt]:-}" ]; then pm_stage=${pm_stages[$mnt]}; return 0; fi
    if [ -z "$mnt" ] || [ "$mnt" = "$(findmnt -n -o TARGET --target /var/lib/pulumi-matrix/staging 2>/dev/null || true)" ]; then
        base=/var/lib/pulumi-matrix/staging
    else
        base=${mnt%/}/.pulumi-matrix-staging
        if [ "$(stat -c %u -- "$mnt")" != 0 ] || [ -L "$base" ] || { [ -e "$base" ] && [ "$(stat -c %u -- "$base")" != 0 ]; }; then
            pm_tell "refusing to write under $1: the root of its filesystem, $mnt, or $base is not root's own"
            return 1
        fi
        install -d -m 0700 -- "$base"; chmod 0700 -- "$base"
        grep -qxF -- "$base" /var/lib/pulumi-matrix/staging/bases 2>/dev/null || printf '%s\n' "$base" >>/var/lib/pulumi-matrix/staging/bases
    fi
    pm_stage=$base/${pm_run##*/}
    [ -d "$pm_stage" ] || mkdir -m 0700 -- "$pm_stage"
    if [ "$(stat -c %d -- "$pm_stage")" != "$(stat -c %d -- "$1")" ]; then
        pm_tell "refusing to write under $1: no staging directory on its filesystem (found $pm_stage)"
        return 1
    fi
    if [ -n "$mnt" ]; then pm_stages[$mnt]=$pm_stage; fi
}
# pm_safe_path PATH: refuses a target that is a symbolic link, or a parent that is one not owned by root
# (another user could point it anywhere).
pm_safe_path() {
    local p
    if [ -L "$1" ]; then
        pm_tell "refusing to write $1: it is a symbolic link (pulumi-matrix writes regular files; remove the link and run again)"
        return 1
    fi
    p=${1%/*}
    while [ -n "$p" ]; do
        if [ -L "$p" ] && [ "$(stat -c %u -- "$p")" != 0 ]; then
            pm_tell "refusing to write $1: its parent $p is a symbolic link owned by $(stat -c %U -- "$p"), not root"
            return 1
        fi
        p=${p%/*}
    done
}
pm_write() {
    local set=$1 path=$2 mode=$3 owner=$4 group=$5 kind=${6:-readable} dir tmp
    dir=$(dirname -- "$path")
    # Create a missing parent only: an existing one keeps its mode (e.g. 0750 secrets/).
    [ -d "$dir" ] || install -d -m 0755 -- "$dir"
    pm_safe_path "$path"
    pm_stage_for "$dir"
    tmp=$(mktemp -- "$pm_stage/write-XXXXXX")
    cat >"$tmp"
    # No one else can enter the staging directory: these act on the staged file, whatever happens in $dir.
    chmod -- "$mode" "$tmp"; chown -- "$owner:$group" "$tmp"
    pm_files[$set]+="$path"$'\n'
    if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s -- "$tmp" "$path" && [ "$(stat -c '%a %U %G' -- "$path")" = "$(stat -c '%a %U %G' -- "$tmp")" ]; then
        pm_record "$set" "$path" "$kind" "$tmp"
        rm -f -- "$tmp"
    else
        pm_keep "$set" "$path"
        pm_record "$set" "$path" "$kind" "$tmp"
        mv -fT -- "$tmp" "$path"; pm_dirty[$set]=1
        echo "updated $path"
    fi
}
# pm_keep SET PATH: before PATH is replaced or removed. SET is pending until its handlers all ran
# (pm_done), across runs; and what PATH was is kept (a hard link beside the staged files, its
# drift record) so a failing check can put it back (pm_refuse).
pm_keep() {
    local set=$1 path=$2 n
    if [ -z "${pm_marked[$set]:-}" ]; then
        if [ -e /var/lib/pulumi-matrix/pending/"$set" ]; then pm_marked[$set]=before; else pm_marked[$set]=now; fi
        : >/var/lib/pulumi-matrix/pending/"$set"; sync -- /var/lib/pulumi-matrix/pending/"$set" /var/lib/pulumi-matrix/pending
    fi
    [ -z "${pm_kept[$set$path]:-}" ] || return 0
    n=${#pm_keep_path[@]}; pm_kept[$set$path]=1; pm_undo[$set]+="$n "
    pm_keep_path[n]=$path pm_keep_file[n]=
    if [ -e "$path" ] || [ -L "$path" ]; then
        pm_stage_for "$(dirname -- "$path")"
        ln -P -- "$path" "$pm_stage/keep-$n"; pm_keep_file[n]=$pm_stage/keep-$n
    fi
    if [ -e /var/lib/pulumi-matrix/written/records"$path" ]; then cp -p -- /var/lib/pulumi-matrix/written/records"$path" "$pm_run/record-$n"; fi
    if [ -e /var/lib/pulumi-matrix/written/files"$path" ]; then cp -p -- /var/lib/pulumi-matrix/written/files"$path" "$pm_run/copy-$n"; fi
}
# pm_refuse SET: the set's new files failed their check: puts back what this run replaced or removed
# (and their records and manifest), then fails the step.
pm_refuse() {
    local set=$1 n path
    for n in ${pm_undo[$set]:-}; do
        path=${pm_keep_path[n]}
        if [ -n "${pm_keep_file[n]}" ]; then mv -fT -- "${pm_keep_file[n]}" "$path"; else rm -f -- "$path"; fi
        if [ -e "$pm_run/record-$n" ]; then mv -f -- "$pm_run/record-$n" /var/lib/pulumi-matrix/written/records"$path"; else rm -f -- /var/lib/pulumi-matrix/written/records"$path"; fi
        if [ -e "$pm_run/copy-$n" ]; then mv -f -- "$pm_run/copy-$n" /var/lib/pulumi-matrix/written/files"$path"; else rm -f -- /var/lib/pulumi-matrix/written/files"$path"; fi
        echo "put back $path" >&2
    done
    if [ -n "${pm_lists[$set]:-}" ]; then
        if [ -e "$pm_run/list-$set" ]; then mv -f -- "$pm_run/list-$set" /var/lib/pulumi-matrix/filesets/"$set".list; else rm -f -- /var/lib/pulumi-matrix/filesets/"$set".list; fi
    fi
    # Back as before this run: pending only if an earlier run left it so.
    if [ "${pm_marked[$set]:-}" = now ]; then rm -f -- /var/lib/pulumi-matrix/pending/"$set"; fi
    pm_tell "$set: the new files fail their check (its output is above): the files are as they were before this run, and nothing was reloaded or restarted"
    exit 1
}
# pm_tell TEXT...: a message for the operator, which must hold no secret: on stderr, and in a secret
# step (whose output stays on the host) also on the command's own stderr, so Pulumi shows it.
pm_tell() {
    printf '%s\n' "$*" >&2
    if [ -n "${pm_tell_fd:-}" ]; then printf '%s\n' "$*" >&"$pm_tell_fd"; fi
}
pm_digest_key() {
    [ -s /var/lib/pulumi-matrix/digest.key ] && return 0
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >/var/lib/pulumi-matrix/digest.key.$$; mv -n /var/lib/pulumi-matrix/digest.key.$$ /var/lib/pulumi-matrix/digest.key; rm -f /var/lib/pulumi-matrix/digest.key.$$)
}
pm_digest() {
    local key= c i inner out=
    if [ -z "${pm_digest_ipad:-}" ]; then
        IFS= read -r key </var/lib/pulumi-matrix/digest.key || [ -n "$key" ] || { echo "/var/lib/pulumi-matrix/digest.key: missing or empty" >&2; return 1; }
        [[ $key =~ ^[0-9a-f]{64}$ ]] || { echo "/var/lib/pulumi-matrix/digest.key: not 64 hex characters" >&2; return 1; }
        pm_digest_ipad= pm_digest_opad=
        for ((i = 0; i < 64; i++)); do
            printf -v c '%d' "'${key:i:1}"
            printf -v pm_digest_ipad '%s\\x%02x' "$pm_digest_ipad" $((c ^ 0x36))
            printf -v pm_digest_opad '%s\\x%02x' "$pm_digest_opad" $((c ^ 0x5c))
        done
    fi
    inner=$({ printf "$pm_digest_ipad"; cat; } | sha256sum)
    for ((i = 0; i < 64; i += 2)); do out+="\\x${inner:i:2}"; done
    { printf "$pm_digest_opad"; printf "$out"; } | sha256sum | cut -d' ' -f1
}
# pm_record SET PATH KIND FILE: FILE (the staged file, or PATH itself) is what PATH now holds; kept even
# when unchanged, so a host written before records existed gets them on its next run.
pm_record() {
    local set=$1 path=$2 kind=$3 src=${4:-$2} rec=/var/lib/pulumi-matrix/written/records$2 copy=/var/lib/pulumi-matrix/written/files$2 line
    if [ "$kind" = secret ]; then
        # A secret is never copied, and its digest is keyed: enough to tell that it changed, no use for guessing it.
        pm_digest_key
        line="$kind $(stat -c '%a %U %G' -- "$src") hmac:$(pm_digest <"$src") $set"
        rm -f -- "$copy"
    else
        line="$kind $(stat -c '%a %U %G' -- "$src") $(sha256sum <"$src" | cut -d' ' -f1) $set"
    fi
    if [ "$kind" != secret ] && ! cmp -s -- "$src" "$copy"; then
        mkdir -p -- "$(dirname -- "$copy")"; install -m 0600 -T -- "$src" "$copy.pm-tmp"; mv -f -- "$copy.pm-tmp" "$copy"
    fi
    if [ "$(cat -- "$rec" 2>/dev/null)" != "$line" ]; then
        mkdir -p -- "$(dirname -- "$rec")"; printf '%s\n' "$line" >"$rec.pm-tmp"; mv -f -- "$rec.pm-tmp" "$rec"
    fi
}
pm_changed() { [ -n "${pm_dirty[$1]:-}" ] || [ -e /var/lib/pulumi-matrix/pending/"$1" ]; }
# pm_done SET: its handlers all ran: no longer pending, and what was kept for pm_refuse is dropped.
pm_done() {
    local n
    rm -f -- /var/lib/pulumi-matrix/pending/"$1"
    for n in ${pm_undo[$1]:-}; do rm -f -- "${pm_keep_file[n]}" "$pm_run/record-$n" "$pm_run/copy-$n"; done
    pm_undo[$1]=
}
pm_prune() {
    local set=$1 list=/var/lib/pulumi-matrix/filesets/$1.list old
    pm_lists[$set]=1
    if [ -f "$list" ]; then
        cp -p -- "$list" "$pm_run/list-$set"
        while IFS= read -r old; do
            [ -n "$old" ] || continue
            printf '%s' "${pm_files[$set]:-}" | grep -qxF -- "$old" && continue
            if [ -e "$old" ] || [ -L "$old" ]; then pm_keep "$set" "$old"; rm -f -- "$old"; pm_dirty[$set]=1; echo "removed $old"; fi
            rm -f -- "/var/lib/pulumi-matrix/written/records$old" "/var/lib/pulumi-matrix/written/files$old"
        done <"$list"
    fi
    printf '%s' "${pm_files[$set]:-}" | sort -u >"$list.tmp"; mv -f "$list.tmp" "$list"
}
pm_owe() { touch "/var/lib/pulumi-matrix/owed-restart/$1"; }
pm_take() { if [ -e "/var/lib/pulumi-matrix/owed-restart/$1" ]; then rm -f "/var/lib/pulumi-matrix/owed-restart/$1"; return 0; fi; return 1; }
# pm_apt ARGS...: apt-get, one at a time: scripts for several components may run at once on one host.
pm_apt() { flock -w 1800 /var/lib/pulumi-matrix/apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# pm_apt_install PKG...: installs the packages that are missing; updates the lists only then.
pm_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}"
    pm_apt update -q >/dev/null
    pm_apt install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

