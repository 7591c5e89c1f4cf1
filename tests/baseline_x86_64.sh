#!/usr/bin/env bash
# baseline_x86_64.sh -- the default (portable) build on x86-64 CPUs WITHOUT
# AVX/AVX2/AVX-512: the test programs run under qemu-user emulating a Nehalem
# (SSE4.2, no AVX: qemu-x86_64 -cpu Nehalem, the class of the Celeron J4125 /
# N4020 edge boxes), so any AVX instruction outside the AVX kernel sets'
# target-attributed functions would die with SIGILL, and the run-time choice
# must pick the sse4 set; and a Conroe (Core 2: SSSE3, no SSE4.1), where it
# must pick the portable set.  Checks:
#   * test_layers and test_model pass on the Nehalem (their groups run for
#     the portable and sse4 sets only; test_model's learning run left out:
#     BN_TEST_NO_LEARNING=1), and test_layers' sse4 group ran its Winograd
#     conv2 (the "(ran)" line);
#   * `byznode version` says "kernels sse4 (supported: portable sse4)" on the
#     Nehalem, "kernels portable (supported: portable)" on the Conroe;
#   * BN_KERNELS=avx2 on the Nehalem and BN_KERNELS=sse4 on the Conroe are
#     refused (exit 2) by bench_model, not ignored.
# Skipped (77) on a non-x86-64 host; FAILS when qemu-x86_64 is missing
# (scripts/setup.sh installs qemu-user).  Not in the sanitizer build.
set -uo pipefail
build="${BN_BUILD_ROOT:?}"
[ "$(uname -m)" = x86_64 ] || { echo "baseline_x86_64: not an x86-64 host"; exit 77; }
qemu=qemu-x86_64
command -v "$qemu" >/dev/null 2>&1 || {
    echo "baseline_x86_64: $qemu not found (scripts/setup.sh installs qemu-user)"; exit 1; }
# OpenBLAS must pick its kernels from the emulated CPU: an OPENBLAS_CORETYPE
# from the environment (some machines set Haswell) would force AVX2 kernels
# onto the Nehalem and die with SIGILL inside libopenblas, not in our code.
on() { local cpu=$1; shift; env -u OPENBLAS_CORETYPE "$qemu" -cpu "$cpu" "$@"; }
run() { on Nehalem "$@"; }
status=0
for t in layers model; do
    log="$build/baseline-x86_64-test_$t.log"
    BN_TEST_NO_LEARNING=1 run "$build/tests/test_$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    [ "$rc" -eq 0 ] || { echo "baseline_x86_64: test_$t exited $rc on a Nehalem"; status=1; }
    grep -q "SKIPPED.*$t\[avx2\]" "$log" || { echo "baseline_x86_64: test_$t ran avx2 on a Nehalem?"; status=1; }
done
grep -q "winograd 3 x 12 x 12 x 16 -> 32 (ran)" "$build/baseline-x86_64-test_layers.log" \
    || { echo "baseline_x86_64: test_layers ran no sse4 Winograd on a Nehalem"; status=1; }
v=$(run "$build/src/byznode" version 2>&1 | grep '^kernels')
echo "byznode version on a Nehalem: $v"
[ "$v" = "kernels sse4 (supported: portable sse4)" ] || { echo "baseline_x86_64: wrong kernel line"; status=1; }
v=$(on Conroe "$build/src/byznode" version 2>&1 | grep '^kernels')
echo "byznode version on a Conroe: $v"
[ "$v" = "kernels portable (supported: portable)" ] || { echo "baseline_x86_64: wrong kernel line on a Conroe"; status=1; }
BN_KERNELS=avx2 run "$build/bench/bench_model" 0.01 1 none >/dev/null 2>"$build/baseline-x86_64-refuse.log"
rc=$?
cat "$build/baseline-x86_64-refuse.log"
[ "$rc" -eq 2 ] || { echo "baseline_x86_64: BN_KERNELS=avx2 on a Nehalem exited $rc, not 2"; status=1; }
BN_KERNELS=sse4 on Conroe "$build/bench/bench_model" 0.01 1 none >/dev/null 2>"$build/baseline-x86_64-refuse-sse4.log"
rc=$?
cat "$build/baseline-x86_64-refuse-sse4.log"
[ "$rc" -eq 2 ] || { echo "baseline_x86_64: BN_KERNELS=sse4 on a Conroe exited $rc, not 2"; status=1; }
if [ "$status" -eq 0 ]; then echo "[  PASSED  ] 2 test(s)."; else echo "[  FAILED  ] 1 test(s)"; fi
exit $status
