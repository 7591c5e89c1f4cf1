#!/usr/bin/env bash
# readme_help.sh -- README and --help agree (issue 8, Done-when):
#   - every option of README's "Its own options are `...`" sentence is one
#     of swarm.sh's own options in `scripts/swarm.sh --help`, and back;
#   - swarm.sh accepts each of them: with the option (and a value) followed
#     by a made-up option, the run stops at the made-up one, i.e. after
#     every check of the option itself and before any process starts;
#   - every `byznode COMMAND` the README names is a command of
#     `byznode --help`, answers `byznode COMMAND --help` with 0, and is
#     named by the unknown-command message (which an unknown command with
#     --help gets too, exit 2).
# Starts no swarm; a few seconds.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init readme_help
SWARM="$BN_SRC/scripts/swarm.sh"
README="$BN_SRC/README.md"

# README's options: the backquoted text after "Its own options are".
readme_opts="$(tr '\n' ' ' < "$README" | sed -n 's/.*Its own options are `\([^`]*\)`.*/\1/p' \
               | grep -o -- '--[a-z][a-z-]*' | sort -u)"
[ -n "$readme_opts" ] || bn_die "README.md has no \"Its own options are \`...\`\" sentence"
# --help's own options: the lines between "swarm.sh's own options" and the
# line "Every other ..." (the prose after); (...) asides are not options.
help_opts="$("$SWARM" --help | sed -n "/^swarm.sh's own options/,/^Every other/p" | sed 's/([^)]*)//g' \
             | grep -o -- '--[a-z][a-z-]*' | sort -u)"
[ -n "$help_opts" ] || bn_die "swarm.sh --help has no \"swarm.sh's own options\" section"
bn_log "README names $(wc -w <<< "$readme_opts") own options, --help $(wc -w <<< "$help_opts")"

for o in $readme_opts; do
    bn_expect_true "README's $o is in swarm.sh --help's own options" grep -qx -- "$o" <<< "$help_opts"
done
for o in $help_opts; do
    [ "$o" = --help ] && continue
    bn_expect_true "swarm.sh --help's $o is in README's sentence" grep -qx -- "$o" <<< "$readme_opts"
done

# swarm.sh OPTION [VALUE] --zz-not-an-option 1 must fail on the latter.
value_of() {
    case "$1" in
        --nodes) echo 2 ;; --byzantine) echo 0 ;; --attack) echo dlie ;; --out) echo "$BN_TMP/out" ;;
        --transport) echo tcp ;; --base-port) echo 46100 ;; --fail-nodes) echo 0 ;;
        --fail-at-epoch) echo 1 ;; --node-opt) echo "--verbose 1" ;; --build) echo "$BN_BUILD" ;;
    esac
}
mkdir -p "$BN_TMP/resume/nodes"
: > "$BN_TMP/resume/nodes/checkpoint-0.bin"  # --resume wants a run with checkpoints
accepted() {
    local o="$1" args=("$1") msg
    local v; v="$(value_of "$o")"
    [ -n "$v" ] && args+=("$v")
    [ "$o" = --resume ] && args+=(--out "$BN_TMP/resume")
    [ "$o" = --out ] || [ "$o" = --resume ] || args+=(--out "$BN_TMP/out")
    msg="$("$SWARM" --build "$BN_BUILD" --data "$BN_DATA" "${args[@]}" --zz-not-an-option 1 2>&1 >/dev/null)" && return 1
    grep -q "unknown option --zz-not-an-option" <<< "$msg" || { bn_log "  $o: $msg"; return 1; }
}
for o in $readme_opts; do
    [ "$o" = --help ] && continue
    bn_expect_true "swarm.sh accepts $o" accepted "$o"
done
# The check above can fail: an option swarm.sh does not know stops the run
# before the made-up one.
refused() {
    local msg
    msg="$("$SWARM" --build "$BN_BUILD" --data "$BN_DATA" --out "$BN_TMP/out" --zz-other 1 \
           --zz-not-an-option 1 2>&1 >/dev/null)" && return 1
    grep -q "unknown option --zz-other" <<< "$msg"
}
bn_expect_true "(control) swarm.sh refuses --zz-other first" refused
[ ! -e "$BN_TMP/out/summary.json" ] || bn_die "a check started a swarm"

# byznode commands named in README: `byznode WORD` (not "byznode` process").
usage="$("$BN_BIN" --help)"
help_cmds="$(sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p; s/^  \([a-z][a-z-]*\)$/\1/p' <<< "$usage" | sort -u)"
readme_cmds="$(grep -oE 'byznode [a-z][a-z-]*' "$README" | awk '{print $2}' | sort -u)"
[ -n "$readme_cmds" ] || bn_die "README names no byznode command"
bn_log "README names the commands: $(echo $readme_cmds); --help lists: $(echo $help_cmds)"
unknown_msg="$("$BN_BIN" zz-no-command 2>&1 >/dev/null || true)"
for c in $readme_cmds; do
    bn_expect_true "README's 'byznode $c' is in byznode --help" grep -qx -- "$c" <<< "$help_cmds"
done
for c in $help_cmds; do
    bn_expect_true "byznode $c --help exits 0" "$BN_BIN" "$c" --help > /dev/null
    bn_expect_true "the unknown-command message names $c" grep -qE "[ ,]$c[,)]" <<< "$unknown_msg"
done
rc=0; "$BN_BIN" zz-no-command --help > /dev/null 2>&1 || rc=$?
bn_expect_true "byznode zz-no-command --help exits 2" test "$rc" = 2
bn_finish
