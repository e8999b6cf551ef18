#!/bin/sh
# install_test.sh BUILD — install into a scratch prefix and build a program
# against it the way users do: dynamically and statically through
# pkg-config. Also checks that the shared library exports only the public
# API (gc_* / GC_*). Records one result line in BUILD/install/results.txt.
set -u
build=$1
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
mkdir -p "$build/install"
: > "$build/install/results.txt"
fail() { echo "install test: FAIL: $*"; echo "install 1 1 0" > "$build/install/results.txt"; exit 1; }

${MAKE:-make} --no-print-directory -s BUILD="$build" PREFIX="$prefix" install >/dev/null ||
    fail "make install"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

cat > "$work/p.c" <<'PROG'
#include <stdio.h>
#include <string.h>
#include <tricolor.h>
struct node { struct node *next; int v; };
int main(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 100000; i++) {
        struct node *n = gc_alloc(sizeof *n);
        n->v = i;
        GC_WRITE(n->next, head);
        head = n;
    }
    long sum = 0;
    for (struct node *n = head; n; n = n->next)
        sum += n->v;
    char *s = gc_strdup("tricolor");
    printf("%ld %s\n", sum, s);
    return sum == 4999950000L && strcmp(s, "tricolor") == 0 ? 0 : 1;
}
PROG
libs=$(pkg-config --static --libs tricolor) || fail "pkg-config --static --libs"
case "$libs" in *-latomic_ops*) ;; *) fail "static libs lack -latomic_ops: $libs" ;; esac
case "$libs" in *pthread*) ;; *) fail "static libs lack pthread: $libs" ;; esac

cc "$work/p.c" -o "$work/dyn" $(pkg-config --cflags --libs tricolor) || fail "dynamic link"
LD_LIBRARY_PATH="$prefix/lib" "$work/dyn" >/dev/null || fail "dynamic run"
ldd "$work/dyn" | grep -q "$prefix/lib/libtricolor.so" 2>/dev/null ||
    LD_LIBRARY_PATH="$prefix/lib" ldd "$work/dyn" | grep -q libtricolor.so || fail "not dynamic"

cc -static "$work/p.c" -o "$work/static" $(pkg-config --static --cflags --libs tricolor) ||
    fail "static link"
"$work/static" >/dev/null || fail "static run"

exports=$(nm -D --defined-only "$prefix/lib/libtricolor.so" | awk '{print $3}' |
          grep -v -E '^(gc_|GC_)' | tr '\n' ' ')
[ -z "$exports" ] || fail "shared library exports internal symbols: $exports"

echo "install test: ok (pkg-config dynamic and static builds run; only gc_* exported)"
echo "install 1 0 0" > "$build/install/results.txt"
