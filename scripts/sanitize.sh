#!/usr/bin/env bash
# sanitize.sh -- the whole test suite in an AddressSanitizer + UBSan build.
#
#   scripts/sanitize.sh [meson test arguments...]
#
# Configures build-asan (or $BN_ASAN_BUILD_DIR) with
# -Db_sanitize=address,undefined -Db_lundef=false, builds it, and runs the
# suite there through scripts/test.sh (same "N passed, N failed" summary,
# same exit status).  Sanitizer reports are fatal: UBSan aborts on the first
# report (halt_on_error), ASan reports leaks at exit, so a test with any
# finding fails.  The swarm tests run the sanitized byznode binary too.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BN_ASAN_BUILD_DIR:-$here/build-asan}"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$here" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null \
        || { echo "0 passed, 1 failed"; exit 1; }
fi
# Leak checking stays on; libzmq's and OpenBLAS's own start-up allocations are
# not ours, so known one-off allocations of those libraries are suppressed.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ -f "$here/scripts/lsan.supp" ]; then
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$here/scripts/lsan.supp:print_suppressions=0}"
fi
# Sanitized code runs ~2-5 times slower: give every test more time.
BN_BUILD_DIR="$build" exec "$here/scripts/test.sh" --timeout-multiplier 3 "$@"
