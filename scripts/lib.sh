# Shared by the scripts that install the test suites' Debian packages.

# missing_packages PKG...: sets the array `missing` to those not installed.
missing_packages() {
  missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
}
