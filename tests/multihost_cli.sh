#!/usr/bin/env bash
# multihost_cli.sh -- the multi-host commands' promises, one by one:
#   byznode keygen --out: 0600 under a permissive umask, refuses to overwrite
#   byznode swarm-file: the layout (blocks, ports, monitor on host 0, keys per
#     host), and a one-line refusal with nothing written for: more nodes than
#     slots, min degree >= n, a node-local option, an option twice, a port
#     beyond 65535, an unresolvable host, an existing key
#   byznode node --ids: one process per id (ps shows them), a failed child
#     makes the exit non-zero and is named, SIGTERM is forwarded (all
#     children gone, exit 143); --ids-from-env takes SLURM_PROCID
#   byznode version: the lines the launchers compare
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init multihost_cli
cd "$BN_TMP"
B="$BN_BIN"

umask 000
"$B" keygen --out k1.key
bn_expect_true "keygen --out writes 0600 under umask 000" test "$(stat -c %a k1.key)" = 600
before="$(cat k1.key)"
bn_expect_true "keygen refuses to overwrite" bash -c "! '$B' keygen --out k1.key 2>err && grep -q 'refusing to overwrite' err"
bn_expect_true "... and the key is unchanged" test "$(cat k1.key)" = "$before"
umask 022

printf '# three hosts\n127.0.0.1 slots=2\n127.0.0.2:3\nlocalhost\n' > hosts.txt
"$B" swarm-file --hosts hosts.txt --nodes 7 --out s.txt --curve keys --port-base 23400 --option "seed 3" 2>/dev/null
bn_expect_true "node lines in blocks, ports per address, monitor on host 0" \
    diff <(awk '$1 == "monitor" {print $1, $2} $1 == "node" {print $1, $2, $3}' s.txt) - <<'LAYOUT'
monitor tcp://127.0.0.1:23400
node 0 tcp://127.0.0.1:23401
node 1 tcp://127.0.0.1:23402
node 2 tcp://127.0.0.2:23401
node 3 tcp://127.0.0.2:23402
node 4 tcp://127.0.0.2:23403
node 5 tcp://127.0.0.1:23403
node 6 tcp://127.0.0.1:23404
LAYOUT
bn_expect_true "a key directory per host, the monitor's on the first" \
    test "$(cd keys && find . -name '*.key' | sort | tr '\n' ' ')" = \
         "./127.0.0.1/monitor.key ./127.0.0.1/node-0.key ./127.0.0.1/node-1.key ./127.0.0.2/node-2.key ./127.0.0.2/node-3.key ./127.0.0.2/node-4.key ./localhost/node-5.key ./localhost/node-6.key "
bn_expect_true "keys 0600, directories 0700" \
    test -z "$(find keys -name '*.key' ! -perm 0600; find keys -type d ! -perm 0700)"
bn_expect_true "public keys in the swarm file match the key files" \
    test "$(awk '$1 == "node" && $2 == 3 {print $4}' s.txt)" = "$(awk '$1 == "public-key" {print $2}' keys/127.0.0.2/node-3.key)"

refuse() {   # refuse WHAT EXPECTED-TEXT swarm-file-args...
    local what="$1" want="$2"; shift 2
    rm -f r.txt
    local rc=0
    "$B" swarm-file --out r.txt "$@" > r.out 2> r.err || rc=$?
    bn_expect_true "refuses $what: $(head -n 1 r.err)" \
        bash -c "[ $rc != 0 ] && [ \$(wc -l < r.err) = 1 ] && grep -q -- '$want' r.err && [ ! -e r.txt ]"
}
printf 'a 2 addr=127.0.0.1\nb 2 addr=127.0.0.2\n' > small.txt
refuse "more nodes than slots" "5 nodes but the 2 host(s) have 4 slots" --hosts small.txt --nodes 5
refuse "min degree >= n" "impossible in a swarm of 4 nodes" --hosts small.txt --nodes 4 --option "min-degree 4"
refuse "a node-local option" "node-local" --hosts small.txt --nodes 4 --option "attack reverse"
refuse "an option twice" "given twice" --hosts small.txt --nodes 4 --option "seed 1" --option "seed 2"
refuse "a port beyond 65535" "65535" --hosts small.txt --nodes 4 --port-base 65534
refuse "an unknown option" "unknown" --hosts small.txt --nodes 4 --option "no-such-option 1"
printf 'no-such-host.invalid\n' > bad.txt
refuse "an unresolvable host" "cannot resolve" --hosts bad.txt --nodes 2
refuse "an existing key" "refusing to overwrite" --hosts hosts.txt --nodes 7 --curve keys
bn_expect_true "... and the existing keys were left alone" \
    test "$(awk '$1 == "node" && $2 == 3 {print $4}' s.txt)" = "$(awk '$1 == "public-key" {print $2}' keys/127.0.0.2/node-3.key)"

# node --ids on one host: 3 nodes, loopback, short rounds.
echo "127.0.0.1 slots=3" > one.txt
opts=(--option "seed 3" --option "model logreg" --option "batch 600" --option "eval-subset 500"
      --option "round-timeout 2000" --option "data $BN_DATA")
echo "127.0.0.1 slots=5" > five.txt
"$B" swarm-file --hosts five.txt --nodes 5 --out long.txt --curve lk --port-base 23420 "${opts[@]}" \
    --option "epochs 50" --option "byzantine 1" --option "rule trimmed-mean" 2>/dev/null
mkdir -p logs out
"$B" node --swarm "$BN_TMP/long.txt" --ids 0-4 --key-dir "$BN_TMP/lk/127.0.0.1" --log-dir logs --out out \
    --byzantine-attack reverse &
host_pid=$!
for _ in $(seq 1 300); do
    [ "$(pgrep -fc -- "$BN_TMP/long.txt .*--id " || true)" = 5 ] && break
    sleep 0.1
done
bn_expect_true "one process per id" test "$(pgrep -fc -- "$BN_TMP/long.txt .*--id " || true)" = 5
byz="$("$B" roles --nodes 5 --byzantine 1 --seed 3)"
attackers="$(pgrep -af -- "$BN_TMP/long.txt .*--attack reverse" | grep -o -- '--id [0-9]*' | awk '{print $2}' | tr '\n' ' ')"
bn_expect_true "--byzantine-attack: exactly byznode roles' node ($byz) attacks ($attackers)" test "$attackers" = "$byz "
kill -TERM $host_pid
rc=0; wait $host_pid || rc=$?
bn_expect_true "SIGTERM forwarded: exit 143 ($rc)" test $rc = 143
bn_expect_true "... and no child left" test -z "$(pgrep -f -- "$BN_TMP/long.txt" || true)"
bn_expect_true "a log per node" test "$(ls logs | tr '\n' ' ')" = "node-0.log node-1.log node-2.log node-3.log node-4.log "

"$B" swarm-file --hosts one.txt --nodes 3 --out short.txt --curve sk --port-base 23430 "${opts[@]}" --option "epochs 1" 2>/dev/null
rm "$BN_TMP/sk/127.0.0.1/node-1.key"
rc=0
"$B" node --swarm "$BN_TMP/short.txt" --ids 0-2 --key-dir "$BN_TMP/sk/127.0.0.1" --out out 2> fail.err || rc=$?
bn_expect_true "a failed child: non-zero exit ($rc), named: $(grep 'node 1 ' fail.err | head -n 1)" \
    bash -c "[ $rc = 1 ] && grep -q 'node 1 exited with status' fail.err && grep -q '1 of 3 node(s) failed' fail.err"
rc=0
out="$("$B" node --swarm "$BN_TMP/short.txt" --ids 0-3 --key-dir x 2>&1)" || rc=$?
bn_expect_true "--ids 0-3 of 3 nodes: refused ($out)" bash -c "[ $rc = 2 ] && [[ '$out' == *'within 0..2'* ]]"
rc=0
SLURM_PROCID=2 "$B" node --swarm "$BN_TMP/short.txt" --ids-from-env --key-dir "$BN_TMP/sk/127.0.0.1" --out out \
    --log-dir logs 2>/dev/null || rc=$?
bn_expect_true "--ids-from-env ran node 2 alone ($rc)" bash -c "[ $rc = 0 ] && [ -s out/node-2.jsonl ] && grep -q 'node 2' logs/node-2.log"

v="$("$B" version)"
bn_expect_true "version: $(echo "$v" | tr '\n' ';')" \
    bash -c "echo '$v' | grep -qE '^byznode [0-9]' && echo '$v' | grep -qE '^protocol [0-9]+$' && echo '$v' | grep -qE '^igraph [0-9]'"
bn_finish
