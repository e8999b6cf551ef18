#!/bin/sh
# run.sh BUILD TEST... — run Check suite binaries, record each suite's
# totals in BUILD/results.txt ("name checks failures errors"), fail if any
# suite failed. The failures are repeated at the end, where the tail of a
# long log shows them.
build=$1
shift
results="$build/results.txt"
failures="$build/failures.txt"
: > "$results"
: > "$failures"
status=0
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-300}"
for t in "$@"; do
    name=$(basename "$t")
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed "s|^|[$name] |"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    checks=$(printf '%s' "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
    fails=$(printf '%s' "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p')
    errors=$(printf '%s' "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p')
    if [ -z "$checks" ]; then
        echo "[$name] no Check summary (exit $rc)"
        checks=1 fails=0 errors=1
    fi
    if [ "$rc" -ne 0 ]; then
        status=1
        printf '%s\n' "$out" | grep -E ':[FE]:|no Check summary|ERROR|Sanitizer' |
            sed "s|^|[$name] |" >> "$failures"
        echo "[$name] exit $rc" >> "$failures"
    fi
    echo "$name $checks $fails $errors" >> "$results"
done
if [ -s "$failures" ]; then
    echo "failed in $build:"
    cat "$failures"
fi
exit $status
