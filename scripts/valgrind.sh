#!/usr/bin/env bash
# valgrind.sh -- the wire, aggregate, metrics and transport test programs under
# valgrind memcheck: any invalid access, use of uninitialised memory or
# definite/indirect leak fails the run.
#
#   scripts/valgrind.sh [test names...]     (default: wire aggregate metrics transport)
#
# Uses a plain (non-sanitized) build without -march=native (valgrind 3.19
# cannot decode AVX-512): build-valgrind, or $BN_VALGRIND_BUILD_DIR.
# Prints one line per program and "N passed, N failed"; exits non-zero on any
# failure.  Logs: BUILD/meson-logs/valgrind-NAME.log.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BN_VALGRIND_BUILD_DIR:-$here/build-valgrind}"
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 77; }
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$here" -Dnative=false >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$build" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
[ $# -gt 0 ] && names=("$@") || names=(wire aggregate metrics transport)
export OPENBLAS_NUM_THREADS=1 BN_SOURCE_ROOT="$here" BN_BUILD_ROOT="$build"
passed=0; failed=0
for t in "${names[@]}"; do
    exe="$build/tests/test_$t"
    log="$build/meson-logs/valgrind-$t.log"
    if [ ! -x "$exe" ]; then echo "valgrind: no $exe" >&2; failed=$((failed + 1)); continue; fi
    t0=$SECONDS
    # Possibly-lost and still-reachable blocks are library start-up state
    # (libzmq, OpenBLAS thread pools); definite and indirect leaks are ours.
    if valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect --error-exitcode=1 --track-origins=yes \
            --log-file="$log" "$exe" >"$log.out" 2>&1; then
        echo "valgrind: $t ok ($((SECONDS - t0)) s; $(grep -m1 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //'))"
        passed=$((passed + 1))
    else
        echo "valgrind: $t FAILED ($((SECONDS - t0)) s): see $log"
        grep -E "ERROR SUMMARY|definitely lost|indirectly lost|Invalid|uninitialised" "$log" | head -n 10 >&2
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
