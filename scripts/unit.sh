#!/bin/sh
# Run each cmocka unit-test binary given as an argument, showing its own report, then print
#
#   unit: N passed, M failed
#
# counting test cases over all binaries from cmocka's "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)" lines. A binary that fails without a failed test counted (a crash,
# a failed group setup, a missing file) counts as one failed test. Exit 1 if anything failed.
set -u

out=$(mktemp) || exit 2
trap 'rm -f "$out" "$out.rc"' EXIT
passed=0
failed=0
status=0

for bin in "$@"; do
    case $bin in */*) ;; *) bin=./$bin ;; esac
    { CMOCKA_MESSAGE_OUTPUT=STDOUT "$bin" 2>&1; echo $? >"$out.rc"; } | tee "$out"
    rc=$(cat "$out.rc")
    # p is "-" when no PASSED line was printed; both are summed over the binary's groups
    read -r p f <<EOF
$(awk '/^\[  PASSED  \] [0-9]+ test\(s\)\.$/ { p += $4; seen = 1 }
       /^\[  FAILED  \] [0-9]+ test\(s\)/    { f += $4 }
       END { print (seen ? p : "-"), f + 0 }' "$out")
EOF
    [ "$p" = - ] || passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$p" = - ]; then
        status=1
        if [ "$f" -eq 0 ]; then
            failed=$((failed + 1))
            if [ "$rc" -gt 128 ]; then
                echo "unit: $bin killed by signal $((rc - 128)), counted as 1 failed"
            else
                echo "unit: $bin exit status $rc with no failed test reported, counted as 1 failed"
            fi
        fi
    fi
done

echo "unit: $passed passed, $failed failed"
exit $status
