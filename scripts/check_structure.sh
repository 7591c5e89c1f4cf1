#!/usr/bin/env bash
# check_structure.sh -- two structural checks of src/ (issue 8), a report, not a test:
#  1. every function body longer than 80 lines outside the numeric kernels
#     (src/kernels_*.c, src/layers.c);
#  2. include layering: a module is src/X.c + src/X.h.  The layers are derived from
#     the include graph itself: a module's layer is 1 + the highest layer among the
#     modules it includes (leaves such as util/rng/json are layer 0; cmd_* and main
#     are on top).  A lower module including a higher one shows up as a cycle
#     (X includes Y's header and Y includes X's): every such pair is flagged.
# Usage: scripts/check_structure.sh [SRC_DIR]   Exit status: 0 clean, 1 findings.
set -u
src=${1:-"$(dirname "$0")/../src"}
python3 - "$src" <<'PY'
import os, re, sys, glob
src = sys.argv[1]
bad = 0
print("== functions over 80 lines (kernels excluded) ==")
for f in sorted(glob.glob(os.path.join(src, "**", "*.c"), recursive=True)):
    b = os.path.basename(f)
    if b.startswith("kernels_") or b == "layers.c":
        continue
    L = open(f, errors="replace").read().split("\n")
    i = 0
    while i < len(L):
        if L[i].startswith("{") and i > 0:
            k = i - 1
            while k > 0 and not re.match(r"^[A-Za-z_].*\(", L[k]):
                k -= 1
            m = re.search(r"([A-Za-z_]\w*)\s*\(", L[k])
            e = i
            while e < len(L) and not L[e].startswith("}"):
                e += 1
            n = e - i + 1
            if n > 80:
                bad = 1
                print(f"{n:5d}  {os.path.relpath(f, src)}:{i+1}  {m.group(1) if m else '?'}")
            i = e
        i += 1
print("== include layering ==")
mods = {}
for f in glob.glob(os.path.join(src, "**", "*.[ch]"), recursive=True):
    m = os.path.relpath(f, src)[:-2]
    inc = set()
    for line in open(f, errors="replace"):
        g = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
        if g:
            d = os.path.normpath(os.path.join(os.path.dirname(m), g.group(1)))
            if not os.path.exists(os.path.join(src, d + ".h")):
                d = os.path.normpath(g.group(1))
            if d != m:
                inc.add(d)
    mods.setdefault(m, set()).update(inc)
level = {}
def lv(m, stack=()):
    if m in level: return level[m]
    if m in stack: return 0
    level[m] = 1 + max([lv(d, stack + (m,)) for d in mods.get(m, ()) ] or [-1])
    return level[m]
for m in mods: lv(m)
for m in sorted(mods):
    for d in sorted(mods[m]):
        if m in mods.get(d, set()) and m < d:
            bad = 1
            print(f"cycle: {m} <-> {d} (one of them includes a module above it)")
for L_ in range(max(level.values()) + 1):
    print(f"layer {L_}: " + " ".join(sorted(m for m in mods if level[m] == L_)))
sys.exit(bad)
PY
