#!/usr/bin/env bash
# Installs (as root) the Debian packages the e2e VM harness needs:
# qemu to boot test VMs, debootstrap + e2fsprogs to build the base image
# without loop mounts, the OpenSSH client to reach the guests, and Pebble
# (Let's Encrypt's test CA) that gives the VMs' nginx its certificate.
# Idempotent: apt is skipped entirely when everything is already there.
set -euo pipefail

PKGS=(
  qemu-system-x86   # qemu-system-x86_64 (TCG, or KVM when usable)
  qemu-utils        # qemu-img (qcow2 base image + per-VM overlays)
  debootstrap       # builds the Debian bookworm root file system
  e2fsprogs         # mkfs.ext4 -d (file system from a directory, no mount)
  openssh-client    # ssh, scp, ssh-keygen
  debian-archive-keyring
  ca-certificates
  pebble            # pebble + pebble-challtestsrv: the ACME server the VM suites and the demo use
  openssl           # Pebble's own API certificate
)

. "$(dirname "$0")/lib.sh"
missing_packages "${PKGS[@]}"

if [ "${#missing[@]}" -eq 0 ]; then
  echo "e2e-deps: all packages present (${PKGS[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e-deps: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "e2e-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
