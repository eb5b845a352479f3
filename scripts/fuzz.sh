#!/bin/sh
# Build the libFuzzer targets in t/fuzz/ and run each one for a while.
#
#   ./scripts/fuzz.sh [TARGET...]        TARGET: visits link dates token (default: all)
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_CC       a clang with libFuzzer (default clang)
#
# Each target t/fuzz/fuzz_<name>.c is built with ASan + UBSan + libFuzzer into t/fuzz/bin/,
# then run over a scratch copy of t/fuzz/corpus/<name>/ (new inputs land there and are thrown
# away, so the committed corpus does not grow), with the committed corpus as a second,
# read-only directory. A crashing input is written as t/fuzz/crashes/<name>-crash-<sha1>
# (or -leak-, -timeout-, -oom-). To replay one: t/fuzz/bin/fuzz_<name> FILE
#
# The last line is
#
#   fuzz: N passed, M failed
#
# counting targets (a target that does not build counts as failed). Exit 1 if any failed.
set -u

cd "$(dirname "$0")/.." || exit 2

seconds=${FUZZ_SECONDS:-30}
case $seconds in
'' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2 ;;
esac
cc=${FUZZ_CC:-clang}
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
cflags="$cflags -fno-omit-frame-pointer -std=c99 -D_GNU_SOURCE -Wall -Wextra -Isrc/core"
bindir=t/fuzz/bin
crashdir=t/fuzz/crashes

# Every target links the core library built for fuzzing (make t/fuzz/bin/libclinic-core.a).
lib=$bindir/libclinic-core.a
libs="-ljwt -ljansson -lcrypto -lpthread"

if [ $# -eq 0 ]; then
    set -- visits link dates token
fi
for t in "$@"; do
    [ -f "t/fuzz/fuzz_$t.c" ] || { echo "fuzz: unknown target '$t' (visits link dates token)" >&2; exit 2; }
done
${MAKE:-make} -s "$lib" FUZZ_CC="$cc" || exit 2

mkdir -p "$bindir" "$crashdir" || exit 2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/clinic-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM

# Stack traces for UBSan findings too; ASan's defaults otherwise (leak detection on).
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export UBSAN_OPTIONS

passed=0
failed=0
summary=

for t in "$@"; do
    bin=$bindir/fuzz_$t
    echo "== fuzz_$t: build"
    # shellcheck disable=SC2086  # word splitting of flags and libraries is wanted
    if ! $cc $cflags -o "$bin" "t/fuzz/fuzz_$t.c" "$lib" $libs; then
        failed=$((failed + 1))
        summary="$summary
fuzz_$t: BUILD FAILED"
        continue
    fi

    work=$scratch/$t
    mkdir -p "$work"
    if [ -d "t/fuzz/corpus/$t" ]; then
        cp -R "t/fuzz/corpus/$t/." "$work/" || exit 2
        chmod -R u+w "$work"
        seeds=t/fuzz/corpus/$t
    else
        seeds=
    fi

    echo "== fuzz_$t: ${seconds}s"
    log=$scratch/$t.log
    # shellcheck disable=SC2086  # $seeds is empty or one path
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashdir/$t-" "$work" $seeds >"$log" 2>&1
    rc=$?
    cat "$log"

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    stats="${runs:-?} runs, ${eps:-?} exec/s, cov ${cov:-?}"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        summary="$summary
fuzz_$t: ok ($stats)"
    else
        failed=$((failed + 1))
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        summary="$summary
fuzz_$t: FAILED, exit $rc ($stats)${artifact:+, input: $artifact}"
    fi
done

echo "$summary" | sed '/^$/d'
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
