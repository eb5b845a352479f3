#!/bin/sh
# Install exactly the Debian packages mod_clinic needs that are missing.
# Non-interactive; runs `apt-get update` once, and only when something is missing.
# A no-op (no apt call at all) when everything is present.
set -eu

PKGS="apache2 apache2-dev libaprutil1-dbd-pgsql libaprutil1-dbd-sqlite3 \
libjansson-dev libjwt-dev libssl-dev libpq-dev libcmocka-dev pkg-config \
libapache2-mod-perl2 libwww-perl libdbi-perl libdbd-pg-perl libdbd-sqlite3-perl sqlite3 postgresql postgresql-contrib \
openssl curl wrk clang valgrind make gcc \
libcurl4-openssl-dev chromium pgbouncer prometheus haproxy debhelper lintian fakeroot dpkg-dev \
libjson-validator-perl libyaml-libyaml-perl nodejs node-axios libjs-moment iproute2 \
libio-socket-ssl-perl liblwp-protocol-https-perl"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
