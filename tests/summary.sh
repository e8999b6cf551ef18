#!/bin/sh
# summary.sh BUILD — one closing line over the results of every variant
# `make test` ran (plain, ASan+UBSan, install).
b=$1
cat "$b/results.txt" "$b/asan/results.txt" "$b/install/results.txt" |
    awk '{ n += $2; bad += $3 + $4 }
         END { printf "tests: %d passed, %d failed\n", n - bad, bad; exit bad != 0 }'
