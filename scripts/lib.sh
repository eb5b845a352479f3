# Sourced by scripts/test.sh, scripts/bench.sh and scripts/farm-test.sh:
# what the three share. Sets $top (the tree), $pgbin (PostgreSQL's newest
# bin dir), $httpd (Apache's binary), $moddir (its module dir), and, through
# scripts/unpriv.sh, $user and as_user. Functions:
#
#   need_file FILE...          exit 2 unless each exists (names the make target)
#   wait_port PORT [SECONDS]   until something answers HTTP on 127.0.0.1:PORT
#   stop_pidfile FILE [TENTHS] SIGTERM the pid in FILE, SIGKILL after TENTHS/10 s
#   make_rsa_key DIR NAME      DIR/NAME-private.pem, DIR/NAME-public.pem (2048 bit)
#   make_ec_key DIR NAME       the same, P-256
#   make_hs_secret FILE        32 random bytes, hex
# and pg_temp_start (scripts/pgtemp.sh).
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
httpd=$(apxs -q SBINDIR)/$(apxs -q TARGET)
moddir=$(apxs -q LIBEXECDIR)

# shellcheck source=scripts/unpriv.sh
. "$top/scripts/unpriv.sh"
# shellcheck source=scripts/pgtemp.sh
. "$top/scripts/pgtemp.sh"

need_file() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || { echo "$(basename "$0"): $f missing: make mod_clinic.so tools/mkjwt" >&2; exit 2; }
    done
}

wait_port() {
    local port=$1 tenths=$((${2:-10} * 10)) i
    for i in $(seq 1 "$tenths"); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing answers on 127.0.0.1:$port" >&2
    return 1
}

stop_pidfile() {
    local file=$1 tenths=${2:-50} pid i
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file" 2>/dev/null || true
}

make_rsa_key() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1/$2-private.pem" 2>/dev/null
    openssl pkey -in "$1/$2-private.pem" -pubout -out "$1/$2-public.pem"
}
make_ec_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/$2-private.pem" 2>/dev/null
    openssl pkey -in "$1/$2-private.pem" -pubout -out "$1/$2-public.pem"
}
make_hs_secret() { openssl rand -hex 32 > "$1"; }
# make_test_pki DIR: a test CA (ca.pem), a server certificate for localhost signed by it
# (server.pem, server-key.pem), two client certificates it signs (client1, client2: .pem and
# -key.pem) and one it does not (stranger): mod_ssl's certificate-bound token tests.
make_test_pki() {
    local d=$1 n
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=mod_clinic test CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
    for n in server client1 client2 stranger; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$d/$n-key.pem" -out "$d/$n.csr" 2>/dev/null
    done
    for n in server client1 client2; do
        openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -days 2 \
            -copy_extensions copy -out "$d/$n.pem" 2>/dev/null
    done
    openssl x509 -req -in "$d/stranger.csr" -signkey "$d/stranger-key.pem" -days 2 \
        -out "$d/stranger.pem" 2>/dev/null
}
