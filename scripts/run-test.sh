#!/bin/bash
# `make run` the way a newcomer meets it: a fresh clone of this repository's
# HEAD in a mode-0700 folder (as root, Apache's children cannot reach it),
# `make run PORT=<a free port>` in the background, then each curl it prints
# must answer 200; a second `make run` on the same port must stop at once
# with a one-line message naming the port and `make run PORT=...`. The
# server is stopped by its PID, and the clone and its run state removed.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
passed=0
failed=0
check() {   # check "what" command...
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $what"; return 0; fi
    failed=$((failed + 1))
    echo "not ok - $what"
    return 1
}

dir=$(mktemp -d /tmp/mod_clinic-run-test.XXXXXX)   # mode 0700
make_pid=
state=
cleanup() {
    [ -n "$state" ] && stop_pidfile "$state/httpd.pid"
    if [ -n "$make_pid" ]; then
        for _ in $(seq 50); do kill -0 "$make_pid" 2>/dev/null || break; sleep 0.2; done
        kill "$make_pid" 2>/dev/null || true
    fi
    case $state in /var/lib/mod_clinic/run-*) rm -rf "$state" ;; esac
    rm -rf "$dir"
}
trap cleanup EXIT

git clone -q "$top" "$dir/mod_clinic"
port=$(perl "$top/scripts/port.pl" free)
out="$dir/make-run.out"
(cd "$dir/mod_clinic" && exec make run PORT="$port") > "$out" 2>&1 &
make_pid=$!

# The build comes first; then the server must answer.
up=
for _ in $(seq 300); do
    kill -0 "$make_pid" 2>/dev/null || break
    if grep -q '^mod_clinic is starting' "$out"; then
        wait_port "$port" 10 && up=1
        break
    fi
    sleep 0.5
done
if ! check "make run in a mode-0700 clone starts Apache on port $port" test -n "$up"; then
    cat "$out"
    echo "run: $passed passed, $failed failed"
    exit 1
fi
state=$(sed -n 's/^mod_clinic is starting on .*logs in \(.*\))\.$/\1/p' "$out")
if [ "$(id -u)" = 0 ]; then
    check "run state outside the private clone ($state)" test "${state#"$dir"}" = "$state" || true
fi

# The printed curls, each run as printed plus the status code.
n=0
while IFS= read -r cmd; do
    n=$((n + 1))
    code=$(sh -c "$cmd -o '$dir/body' -w '%{http_code}'")
    check "printed curl $n answers 200 (got $code: $(head -c 120 "$dir/body" | tr -d '\n'))" \
        test "$code" = 200 || true
done < <(awk '/^curl /{c=$0; while (c ~ /\\$/ && (getline l) > 0) { sub(/\\$/, "", c); c = c " " l }; print c}' "$out")
check "make run printed two curls" test "$n" = 2 || true

# The port is taken now: a second make run says so in one line.
set +e
second=$(cd "$dir/mod_clinic" && make -s run PORT="$port" 2>&1)
rc=$?
set -e
msg=$(printf '%s\n' "$second" | grep '^run:' || true)
check "a port in use stops make run (exit $rc)" test "$rc" != 0 || true
check "one line naming port $port and make run PORT=: $msg" \
    bash -c '[ "$(printf "%s\n" "$1" | wc -l)" = 1 ] && [[ $1 == *"port $2 "* && $1 == *"make run PORT="* ]]' _ "$msg" "$port" || true

echo "run: $passed passed, $failed failed"
[ "$failed" = 0 ]
