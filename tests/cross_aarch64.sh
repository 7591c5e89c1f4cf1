#!/usr/bin/env bash
# cross_aarch64.sh -- the NEON kernel set, built for aarch64 with Debian's
# cross compiler (gcc-aarch64-linux-gnu) and run under qemu-user
# (qemu-aarch64 -L /usr/aarch64-linux-gnu; no binfmt needed).
#
# What runs: tests/test_layers.c and tests/test_model.c themselves, cross-built
# from the kernel sources and what they need (layers, the kernel sets, model,
# sgd, rng, common) -- not the whole libbyznode, which would need arm64
# ZeroMQ/igraph/msgpack/OpenBLAS/zlib through multiarch.  Stand-ins from
# tests/cross/ replace the arm64 libraries that are not installed: a reference
# row-major cblas_sgemm (cblas_ref.c), a cmocka subset (cmocka.h) that prints
# the same summary lines, and a dataset module that refuses to read
# (dataset_absent.c: no arm64 zlib; no test that runs here reads data).  Each program runs its groups for every
# kernel set the (emulated) CPU supports: portable and neon; the test fails if
# the neon groups did not run.  test_model's Fashion-MNIST learning run is left
# out (BN_TEST_NO_LEARNING=1: minutes under emulation, and not kernel-specific;
# its finite-difference and PyTorch-reference checks do run).  Speed is not
# measured here.
#
# env: BN_SOURCE_ROOT, BN_BUILD_ROOT (set by meson).  The tools are installed
# by scripts/setup.sh; when missing, this test FAILS (never skips) with a
# message saying so.
set -uo pipefail
src="${BN_SOURCE_ROOT:?}"
out="${BN_BUILD_ROOT:?}/cross-aarch64"
cc=aarch64-linux-gnu-gcc
qemu=qemu-aarch64
sysroot=/usr/aarch64-linux-gnu
for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cross_aarch64: $tool not found (scripts/setup.sh installs gcc-aarch64-linux-gnu and qemu-user)"
        exit 1
    fi
done
mkdir -p "$out"
mods=(layers kernels_avx512 kernels_avx2 kernels_sse kernels_neon model sgd rng common)
srcs=("$src/tests/cross/cblas_ref.c" "$src/tests/cross/dataset_absent.c" "$src/tests/fixture.c")
for m in "${mods[@]}"; do srcs+=("$src/src/$m.c"); done
status=0
for t in layers model; do
    if ! "$cc" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror \
            -I"$src/tests/cross" -I"$src/src" -o "$out/test_$t" \
            "$src/tests/test_$t.c" "${srcs[@]}" -lm; then
        echo "cross_aarch64: cross-compiling test_$t failed"
        echo "[  FAILED  ] 1 test(s)"
        exit 1
    fi
    # ELF e_machine (bytes 18-19, little-endian) is 0xb7 for aarch64.
    machine=$(od -An -tx1 -j18 -N2 "$out/test_$t" | tr -d ' ')
    [ "$machine" = b700 ] || { echo "cross_aarch64: test_$t is not an aarch64 binary ($machine)"; status=1; }
done
for t in layers model; do
    log="$out/test_$t.log"
    BN_TEST_NO_LEARNING=1 "$qemu" -L "$sysroot" "$out/test_$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    [ "$rc" -eq 0 ] || { echo "cross_aarch64: test_$t exited $rc under qemu"; status=1; }
    if ! grep -q "^\[==========\] $t\[neon\]: Running" "$log"; then
        echo "cross_aarch64: test_$t ran no neon group"
        echo "[  FAILED  ] 1 test(s)"
        status=1
    fi
done
exit $status
