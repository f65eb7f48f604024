#!/usr/bin/env bash
# Installs the Debian packages Tally builds and tests with, when any is missing.
set -euo pipefail
packages=(libpq-dev libsodium-dev liblz4-dev pkg-config postgresql pgbouncer)
[ "${WITH_WRK:-0}" = 1 ] && packages+=(wrk)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
