/*  adversary.h -- one round of a Byzantine node (options.attack != none).
 *
 *  The attacker runs the honest schedule (Algorithm 1's rounds) but, instead
 *  of aggregating, crafts what it sends:
 *    1. x_prev = x; local steps if the attack trains (bn_attack_trains)
 *    2. collect its honest neighbours' models of the round
 *    3. omniscient: relay each honest neighbour's model, as COLLUDE, to the
 *       fellow attackers that do not hear it (the lowest-id attacker adjacent
 *       to an honest node relays it), and collect the relays it should get
 *    4. craft with bn_attack_craft from every honest model it knows, and
 *       send: one vector to all honest neighbours, or, when
 *       bn_attack_per_victim(kind), one vector per honest neighbour sent to
 *       that neighbour only (input.victim / victim_x set); crash sends nothing
 *    5. x follows the mean of x and the honest models it knows, so that its
 *       next local update starts from a plausible point.
 *  In a stand-alone swarm (rule standalone) nobody talks: steps 2-5 are
 *  skipped.
 */
#ifndef BN_ADVERSARY_H
#define BN_ADVERSARY_H

#include "node_state.h"

void bn_adversary_round(bn_node_t *nd);

#endif
