#!/bin/sh
# summary.sh BUILD — one closing line over the results of every variant
# `make test` ran (plain, ASan+UBSan, ThreadSanitizer when clang exists,
# install).
b=$1
tsan=
[ -f "$b/tsan/results.txt" ] && tsan="$b/tsan/results.txt"
cat "$b/results.txt" "$b/asan/results.txt" $tsan "$b/install/results.txt" |
    awk '{ n += $2; bad += $3 + $4 }
         END { printf "tests: %d passed, %d failed\n", n - bad, bad; exit bad != 0 }'
