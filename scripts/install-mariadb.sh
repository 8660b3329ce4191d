#!/usr/bin/env bash
# Makes sure the programs the tests, examples and benchmarks use to run their
# private servers are installed: the MariaDB server binaries (mariadbd and
# mariadb-install-db), the mariadb command-line client (the test clusters are
# set up through it, and Galera's mysqldump state transfer uses it and
# mariadb-dump), the openssl command-line tool (which makes the servers' TLS
# certificates) and the Galera 4 library (for the test Galera cluster).
#
# Idempotent: exits 0 at once when all are present. Otherwise installs what is
# missing of Debian/Ubuntu's `mariadb-server`, `mariadb-client`, `openssl` and
# `galera-4` packages with apt-get, directly as root or through `sudo -n`
# (never prompting for a password). Exits 1, saying what to run by hand, when
# that is not possible.
#
# galera-4 is only needed by the Galera tests: when it cannot be installed
# (no such package here, or no way to install anything) the script says so
# and still succeeds, unless --galera says it is needed.
#
# Run from a terminal (stdin is a TTY and CI is not set), it says what it
# will install and asks first; in CI (CI set) or without a terminal (as when
# the tests start it) it just installs. The test server
# (mysql-uring-testserver) hands it the terminal when it has one.
#
# Usage: scripts/install-mariadb.sh [-y] [--galera] [--netfaults]
#   -y        do not ask
#   --galera  fail when the Galera library cannot be installed
#   --netfaults  fail when iptables (for the network-fault tests) cannot be installed
set -euo pipefail

assume_yes=0
need_galera=0
need_iptables=0
for arg in "$@"; do
    case "$arg" in
        -y | --yes) assume_yes=1 ;;
        --galera) need_galera=1 ;;
        --netfaults) need_iptables=1 ;;
        *)
            echo "usage: $0 [-y] [--galera] [--netfaults]" >&2
            exit 2
            ;;
    esac
done

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

have_client() {
    command -v mariadb >/dev/null 2>&1 || command -v mysql >/dev/null 2>&1 ||
        [ -x /usr/bin/mariadb ] || [ -x /usr/bin/mysql ]
}

have_openssl() {
    command -v openssl >/dev/null 2>&1 || [ -x /usr/bin/openssl ]
}

# The same places as GALERA_LIBRARIES in testserver/src/tools.rs.
have_galera() {
    local lib
    for lib in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so \
        /usr/lib64/galera-4/libgalera_smm.so /usr/lib64/galera/libgalera_smm.so \
        /usr/lib/x86_64-linux-gnu/galera/libgalera_smm.so \
        /usr/lib/aarch64-linux-gnu/galera/libgalera_smm.so; do
        [ -f "$lib" ] && return 0
    done
    return 1
}

# iptables: the network-fault tests (tests/netfaults.rs) drop and reset the
# private server's packets inside a network namespace they create.
have_iptables() {
    command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || [ -x /sbin/iptables ]
}

# Everything that is required (galera-4 only with --galera, iptables only
# with --netfaults).
have_required() {
    have_server && have_client && have_openssl && { [ "$need_galera" -eq 0 ] || have_galera; } &&
        { [ "$need_iptables" -eq 0 ] || have_iptables; }
}

have_all() {
    have_server && have_client && have_openssl && have_galera && have_iptables
}

if have_all; then
    exit 0
fi

# What is missing, as Debian/Ubuntu packages: the required ones, and galera-4
# (required with --galera, else optional).
packages=()
if ! have_server; then
    packages+=(mariadb-server mariadb-client)
elif ! have_client; then
    packages+=(mariadb-client)
fi
if ! have_openssl; then
    packages+=(openssl)
fi
optional=()
if ! have_galera; then
    if [ "$need_galera" -eq 1 ]; then
        packages+=(galera-4)
    else
        optional+=(galera-4)
    fi
fi
if ! have_iptables; then
    if [ "$need_iptables" -eq 1 ]; then
        packages+=(iptables)
    else
        optional+=(iptables)
    fi
fi
all=("${packages[@]}" "${optional[@]}")

manual="sudo apt-get update && sudo apt-get install -y ${all[*]}"

# Only optional packages are missing and cannot be installed: say so, succeed.
optional_only_fails() {
    echo "install-mariadb: not installed: ${optional[*]} (only the Galera cluster tests need it;" >&2
    echo "install-mariadb: they will fail without it). Install it with: $manual" >&2
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    [ "${#packages[@]}" -eq 0 ] && optional_only_fails
    echo "install-mariadb: missing: ${all[*]}, and apt-get is not available." >&2
    echo "install-mariadb: install MariaDB server 10.6 or newer (so that mariadbd and" >&2
    echo "install-mariadb: mariadb-install-db are installed), its client, the openssl command-line" >&2
    echo "install-mariadb: tool and Galera 4 with your package manager, or set MYSQL_URL to an" >&2
    echo "install-mariadb: existing server." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    [ "${#packages[@]}" -eq 0 ] && optional_only_fails
    echo "install-mariadb: missing: ${all[*]}, and this user cannot install" >&2
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
    echo "install-mariadb: the private test servers need: ${all[*]}" >&2
    echo "install-mariadb: about to run: ${sudo[*]:+${sudo[*]} }apt-get update && ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends ${all[*]}" >&2
    printf 'install-mariadb: install them now? [y/N] ' >&2
    answer=""
    read -r answer || true
    case "$answer" in
        y | Y | yes | YES | Yes) ;;
        *)
            [ "${#packages[@]}" -eq 0 ] && optional_only_fails
            echo "install-mariadb: not installed. Run it yourself: $manual" >&2
            echo "install-mariadb: or set MYSQL_URL to an existing server." >&2
            exit 1
            ;;
    esac
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-mariadb: running: ${sudo[*]:+${sudo[*]} }apt-get update" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >&2 || {
    [ "${#packages[@]}" -eq 0 ] && optional_only_fails
    echo "install-mariadb: apt-get update failed. Run: $manual" >&2
    exit 1
}
if [ "${#packages[@]}" -gt 0 ]; then
    echo "install-mariadb: running: ${sudo[*]:+${sudo[*]} }apt-get install -y ${packages[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends "${packages[@]}" >&2 || {
        echo "install-mariadb: apt-get install failed. Run: $manual" >&2
        exit 1
    }
fi
# Separately, so that a system without galera-4 still gets the rest.
if [ "${#optional[@]}" -gt 0 ]; then
    echo "install-mariadb: running: ${sudo[*]:+${sudo[*]} }apt-get install -y ${optional[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends "${optional[@]}" >&2 || true
fi

if ! have_server; then
    echo "install-mariadb: mariadb-server is installed but mariadbd / mariadb-install-db are still" >&2
    echo "install-mariadb: not found. Run: $manual" >&2
    exit 1
fi
if ! have_client; then
    echo "install-mariadb: mariadb-client is installed but the mariadb client is still not found." >&2
    echo "install-mariadb: Run: $manual" >&2
    exit 1
fi
if ! have_openssl; then
    echo "install-mariadb: openssl is installed but still not found. Run: $manual" >&2
    exit 1
fi
if ! have_galera; then
    if [ "$need_galera" -eq 1 ]; then
        echo "install-mariadb: galera-4 is installed but libgalera_smm.so is still not found." >&2
        echo "install-mariadb: Run: $manual" >&2
        exit 1
    fi
    optional_only_fails
fi
echo "install-mariadb: installed ${all[*]}" >&2
