#!/usr/bin/env bash
# Installs (as root) the Debian packages the integration suite needs, then
# makes sure none of their services is left running or enabled: the tests
# start their own throw-away instances (own data dirs, loopback, free ports).
#
# Idempotent: apt-get is skipped entirely (no `apt-get update`) when every
# package is already installed; the stop/disable step always runs and is
# cheap when there is nothing to do.
set -euo pipefail

# What each service's tests need, one file per service (scripts/deps/<service>.list): a new
# service adds its own list and edits nothing here. Lines: `package NAME` (a Debian package)
# and `service UNIT` (a packaged daemon started on install, stopped and disabled below).
PKGS=()
SERVICES=()
for list in "$(dirname "$0")"/deps/*.list; do
  while read -r kind name _; do
    case "$kind" in
      package) PKGS+=("$name") ;;
      service) SERVICES+=("$name") ;;
      ''|'#'*) ;;
      *) echo "integration-deps: $list: unknown line '$kind $name' (expected 'package NAME' or 'service UNIT')" >&2; exit 1 ;;
    esac
  done <"$list"
done

log() { echo "integration-deps: $*"; }

. "$(dirname "$0")/lib.sh"
missing_packages "${PKGS[@]}"

if [ "$(id -u)" -ne 0 ]; then
  if [ "${#missing[@]}" -ne 0 ]; then
    log "missing ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  log "all packages present (not root: skipping the service check)"
  exit 0
fi

if [ "${#missing[@]}" -eq 0 ]; then
  log "all packages present"
else
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' maintainer scripts from starting their daemons while
  # we install (invoke-rc.d honours policy-rc.d; 101 = "action forbidden").
  # An existing policy-rc.d (e.g. in containers) is left alone.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added_policy=1
  fi
  cleanup_policy() { if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  apt-get "${apt_opts[@]}" update -qq
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  cleanup_policy
  trap - EXIT
fi

# Stop and disable the packaged services, whatever the init system
# (`systemctl disable` also works offline, e.g. in a container without
# systemd as PID 1; it then also fixes the SysV rc links).
have_systemd=0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  have_systemd=1
fi
for svc in "${SERVICES[@]}"; do
  # stop
  if [ "$have_systemd" = 1 ]; then
    if systemctl is-active --quiet "$svc" 2>/dev/null; then
      log "stopping $svc"
      systemctl stop "$svc" || true
    fi
  elif [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
    log "stopping $svc"
    "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  fi
  # disable
  if command -v systemctl >/dev/null 2>&1 && [ -e "/lib/systemd/system/$svc.service" ]; then
    if [ "$(systemctl is-enabled "$svc" 2>/dev/null || true)" = enabled ]; then
      log "disabling $svc"
      systemctl disable --quiet "$svc" >/dev/null 2>&1 || true
    fi
  fi
  if ls /etc/rc[2-5].d/S[0-9][0-9]"$svc" >/dev/null 2>&1; then
    log "disabling $svc (SysV links)"
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
# certbot's renewal timer has nothing to renew here.
if command -v systemctl >/dev/null 2>&1 && [ "$(systemctl is-enabled certbot.timer 2>/dev/null || true)" = enabled ]; then
  log "disabling certbot.timer"
  systemctl disable --quiet certbot.timer >/dev/null 2>&1 || true
  if [ "$have_systemd" = 1 ]; then systemctl stop certbot.timer || true; fi
fi

# PostgreSQL clusters of the package (e.g. 15/main) are not ours to run.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
    if [ "$status" = online ]; then
      log "stopping PostgreSQL cluster $ver/$name"
      pg_ctlcluster "$ver" "$name" stop || true
    fi
  done
fi

# Report any such daemon that is still running (not started by the packages
# any more, so someone else started it), so a test failure is explainable.
for bin in postgres redis-server nginx turnserver pebble; do
  if pgrep -x "$bin" >/dev/null 2>&1; then
    log "note: a '$bin' process is running (not started by this script)"
  fi
done
log "done"
