#!/bin/sh
# deps.sh — make sure the build dependencies are present.
#
# tricolor needs pkg-config, libatomic_ops (its MIT-licensed atomic_ops
# library) and Check. When one is missing and we are root on a Debian-like
# system, install them (apt-get update first); otherwise stop with one line
# naming the packages.
# `deps.sh bench` also wants bdwgc, which the benchmarks compare with.
PACKAGES="libatomic-ops-dev check pkg-config"
MODULES="atomic_ops check"
if [ "${1:-}" = bench ]; then
    PACKAGES="$PACKAGES libgc-dev"
    MODULES="$MODULES bdw-gc"
fi

have_all() {
    command -v pkg-config >/dev/null 2>&1 || return 1
    for m in $MODULES; do
        pkg-config --exists "$m" 2>/dev/null || return 1
    done
}

have_all && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tricolor: installing build dependencies: $PACKAGES" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq $PACKAGES >&2 && have_all && exit 0
fi
echo "tricolor: missing build dependencies; install the packages: $PACKAGES" >&2
exit 1
