#!/usr/bin/env bash
# Makes sure the programs the tests, examples and benchmarks use to run their
# private server are installed: the MariaDB server binaries (mariadbd and
# mariadb-install-db) and the openssl command-line tool (which makes the
# server's TLS certificates).
#
# Idempotent: exits 0 at once when all are present. Otherwise installs what is
# missing of Debian/Ubuntu's `mariadb-server` and `mariadb-client` packages
# and `openssl` with apt-get, directly as root or through `sudo -n` (never
# prompting for a password). Exits 1, saying what to run by hand, when that is
# not possible.
#
# Run from a terminal (stdin is a TTY and CI is not set), it says what it
# will install and asks first; in CI (CI set) or without a terminal (as when
# the tests start it) it just installs. The test server
# (mysql-uring-testserver) hands it the terminal when it has one.
#
# Usage: scripts/install-mariadb.sh [-y]      (-y: do not ask)
set -euo pipefail

assume_yes=0
case "${1:-}" in
    -y | --yes) assume_yes=1 ;;
    "") ;;
    *)
        echo "usage: $0 [-y]" >&2
        exit 2
        ;;
esac

have_server() {
    local d
    for d in /usr/sbin/mariadbd /usr/sbin/mysqld; do
        [ -x "$d" ] && break
        d=""
    done
    [ -n "$d" ] || command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || return 1
    command -v mariadb-install-db >/dev/null 2>&1 || command -v mysql_install_db >/dev/null 2>&1 ||
        [ -x /usr/bin/mariadb-install-db ] || [ -x /usr/bin/mysql_install_db ] || return 1
}

have_openssl() {
    command -v openssl >/dev/null 2>&1 || [ -x /usr/bin/openssl ]
}

have_all() {
    have_server && have_openssl
}

if have_all; then
    exit 0
fi

# What is missing, as Debian/Ubuntu packages.
packages=()
if ! have_server; then
    packages+=(mariadb-server mariadb-client)
fi
if ! have_openssl; then
    packages+=(openssl)
fi

manual="sudo apt-get update && sudo apt-get install -y ${packages[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-mariadb: missing: ${packages[*]}, and apt-get is not available." >&2
    echo "install-mariadb: install MariaDB server 10.6 or newer (so that mariadbd and" >&2
    echo "install-mariadb: mariadb-install-db are installed) and the openssl command-line tool with" >&2
    echo "install-mariadb: your package manager, or set MYSQL_URL to an existing server." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install-mariadb: missing: ${packages[*]}, and this user cannot install" >&2
    echo "install-mariadb: packages (not root, and sudo needs a password). Run:" >&2
    echo "install-mariadb:     $manual" >&2
    echo "install-mariadb: or set MYSQL_URL to an existing server." >&2
    exit 1
fi

# Several test binaries may get here at once: install one at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/mysql-uring-install-mariadb.lock"
    flock 9
    if have_all; then
        exit 0
    fi
fi

# A person at a terminal is asked first; CI and non-interactive runs are not.
if [ "$assume_yes" -eq 0 ] && [ -t 0 ] && [ -z "${CI:-}" ]; then
    echo "install-mariadb: the private test server needs: ${packages[*]}" >&2
    echo "install-mariadb: about to run: ${sudo[*]:+${sudo[*]} }apt-get update && ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends ${packages[*]}" >&2
    printf 'install-mariadb: install them now? [y/N] ' >&2
    answer=""
    read -r answer || true
    case "$answer" in
        y | Y | yes | YES | Yes) ;;
        *)
            echo "install-mariadb: not installed. Run it yourself: $manual" >&2
            echo "install-mariadb: or set MYSQL_URL to an existing server." >&2
            exit 1
            ;;
    esac
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-mariadb: running: ${sudo[*]:+${sudo[*]} }apt-get update" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >&2 || {
    echo "install-mariadb: apt-get update failed. Run: $manual" >&2
    exit 1
}
echo "install-mariadb: running: ${sudo[*]:+${sudo[*]} }apt-get install -y ${packages[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    --no-install-recommends "${packages[@]}" >&2 || {
    echo "install-mariadb: apt-get install failed. Run: $manual" >&2
    exit 1
}

if ! have_server; then
    echo "install-mariadb: mariadb-server is installed but mariadbd / mariadb-install-db are still" >&2
    echo "install-mariadb: not found. Run: $manual" >&2
    exit 1
fi
if ! have_openssl; then
    echo "install-mariadb: openssl is installed but still not found. Run: $manual" >&2
    exit 1
fi
echo "install-mariadb: installed ${packages[*]}" >&2
