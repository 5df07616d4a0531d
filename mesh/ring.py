"""Place vnode tokens on the ring of 16,384 slots and derive each slot's owners.

A token is a `(position, node_id)` pair. The token at position `t` owns the
slots after the previous token up to and including `t` (its *arc*); the owners
of a slot are the first `replication_factor` distinct members met walking the
ring clockwise from that slot, primary first.

Tokens are not random. A random-token ring is measurably unbalanced at 20+
members (1.14x the ideal load with 256 vnodes), so tokens are placed
deliberately and deterministically:

- `join` carves the newcomer's share out of the most-loaded members
  (water-filling), in `vnodes` pieces. Only the newcomer's share moves. Where
  each piece goes is chosen for the *replicas*: the replica of an arc is the
  owner of the next token, so token order, not arc length, decides replica
  load. Balancing primaries alone left replica loads of 0.5x-1.47x ideal;
  each piece is placed where it brings every member's replica load (at
  replication_factor 2 and 3 together) closest to its ideal.
- `leave` deletes the leaver's tokens, so each arc passes to the next member on
  the ring, which is already its replica: failover needs no data copy. By
  default every arc goes to its replica, whatever the balance (a leave leaves
  the busiest member at up to ~1.2x its ideal load, against 1.04x when a
  `leave_slack` of 0.04 handed the rest of an arc to the least-loaded members:
  those held no copy, and 7-39% of a dead member's slots came back empty).
  Only the leaver's slots move.

Every function is pure: the same tokens in give the same tokens out on every
node, and the tokens travel in the replicated slot map.
"""
from __future__ import annotations

import bisect
import functools
import heapq
from typing import Collection

from mesh.keyslot import SLOT_COUNT

Token = tuple[int, str]
Tokens = tuple[Token, ...]

# Pieces a joining member takes; more pieces interleave members more finely,
# which spreads a leaver's arcs (and replica load) over more successors.
DEFAULT_VNODES = 64
# ...but never more than half a newcomer's share of slots: 64 pieces of a share
# under 128 slots (past 127 members) leave arcs of one or two slots, and past 256
# members there are not 64 slots to take at all. Rings up to 127 members are
# placed as they always were.
SLOTS_PER_VNODE_MIN = 2
# Each piece weighs every cut of the donor's arcs that fits it. In a ring of more
# members than DEFAULT_VNODES a newcomer takes a piece from more donors than it has
# vnodes (about one piece from each member), and weighing all ~64 arcs of each cost
# ~1 s of placement per newcomer at 100 members: there only the largest arcs that
# fit are weighed, up to this many. (Capped at every size, rings of 5 members
# were measurably worse balanced: the cap stays off where every piece counts.)
CANDIDATE_ARCS = 12
# How far above the ideal load a member may end up when it inherits a leaver's
# arcs. Unbounded: an arc handed to any other member than its replica would
# arrive there empty (balancing is a migration's job, with the data).
DEFAULT_LEAVE_SLACK = float("inf")


def single(node_id: str) -> Tokens:
    """Return the ring of a one-member cluster: one token, owning every slot."""
    return ((SLOT_COUNT - 1, node_id),)


def arcs(tokens: Tokens) -> list[tuple[int, int, str]]:
    """Return `(first_slot, size, node_id)` for each token's arc, in ring order."""
    if len(tokens) == 1:
        position, node_id = tokens[0]
        return [((position + 1) % SLOT_COUNT, SLOT_COUNT, node_id)]
    result = []
    previous = tokens[-1][0] - SLOT_COUNT
    for position, node_id in tokens:
        result.append(((previous + 1) % SLOT_COUNT, position - previous, node_id))
        previous = position
    return result


def primary_counts(tokens: Tokens) -> dict[str, int]:
    """Return how many slots each member owns as primary."""
    counts: dict[str, int] = {}
    for _, size, node_id in arcs(tokens):
        counts[node_id] = counts.get(node_id, 0) + size
    return counts


def replica_counts(tokens: Tokens, replication_factor: int) -> dict[str, int]:
    """Return how many slots each member owns as a replica (not primary) at `replication_factor`."""
    counts = {node_id: 0 for _, node_id in tokens}
    for slot_owners in owners(tokens, replication_factor):
        for node_id in slot_owners[1:]:
            counts[node_id] += 1
    return counts


def arc_owners(tokens: Tokens, replication_factor: int) -> list[tuple[str, ...]]:
    """Return the owners of each token's arc (primary first): the first `replication_factor`
    distinct members met from that token on, one shared tuple per distinct owner list."""
    if not tokens:
        raise ValueError("a ring needs at least one token")
    members = {node_id for _, node_id in tokens}
    wanted = min(replication_factor, len(members))
    interned: dict[tuple[str, ...], tuple[str, ...]] = {}
    count = len(tokens)
    per_token: list[tuple[str, ...]] = []
    for index in range(count):
        found: list[str] = []
        step = index
        while len(found) < wanted:
            node_id = tokens[step % count][1]
            if node_id not in found:
                found.append(node_id)
            step += 1
        key = tuple(found)
        per_token.append(interned.setdefault(key, key))
    return per_token


# Every map is built several times over from the same tokens (a proposal, each vote's
# rebuild of it, its commit, a map decoded from the wire: SlotMap derives its owners),
# and in the simulation every member builds each one: remember the last few.
@functools.lru_cache(maxsize=8)
def owners(tokens: Tokens, replication_factor: int) -> tuple[tuple[str, ...], ...]:
    """Return owners per slot (primary first), sharing one tuple per distinct owner list."""
    per_token = arc_owners(tokens, replication_factor)
    result: list[tuple[str, ...]] = []
    previous = -1
    for (position, _), slot_owners in zip(tokens, per_token):
        result.extend([slot_owners] * (position - previous))
        previous = position
    # Slots after the last token wrap around to the first token's arc.
    result.extend([per_token[0]] * (SLOT_COUNT - 1 - previous))
    return tuple(result)


def normalize(positions: dict[int, str]) -> Tokens:
    """Return sorted tokens without redundant ones (a token whose next token has the same owner)."""
    ordered = sorted(positions.items())
    kept = [
        token for index, token in enumerate(ordered)
        if token[1] != ordered[(index + 1) % len(ordered)][1]
    ]
    return tuple(kept) if kept else (ordered[-1],)


# Placing a newcomer weighs thousands of cuts (tens of ms); every node computes
# the same join for a proposal, its votes and its commit, so remember a few.
@functools.lru_cache(maxsize=32)
def join(tokens: Tokens, node_id: str, vnodes: int = DEFAULT_VNODES) -> Tokens:
    """Return the ring with `node_id` added, taking its share from the most-loaded members."""
    loads = primary_counts(tokens)
    if node_id in loads:
        return tokens
    share = SLOT_COUNT // (len(loads) + 1)
    vnodes = max(1, min(vnodes, share // SLOTS_PER_VNODE_MIN))
    give = _water_fill_down(loads, share)
    pieces = _apportion(give, vnodes)
    carving = _Carving(tokens, node_id, len(loads) + 1, vnodes)
    for donor in sorted(give):
        if give[donor]:
            for amount in _even(give[donor], pieces[donor]):
                carving.carve(donor, amount)
    return normalize(dict(carving.tokens))


# A join checked by its shape (joins_fairly) may load a member as a replica up to this many
# percent of its ideal, or as much as the busiest replica before it: where a joiner's pieces
# sit decides who replicates them, and the ring's own joins reach ~1.45x (139 members, rf 3).
JOIN_REPLICA_BOUND_PCT = 160


def joins_fairly(before: Tokens, after: Tokens, joiners: Collection[str], replication_factor: int,
                 replica_bound_pct: int = JOIN_REPLICA_BOUND_PCT) -> bool:
    """True if `after` is `before` with `joiners` placed as `join` would load them: each member
    gives the newcomers exactly the slots water-filling asks of it (joiners in id order, as
    `join` is applied); a slot's primary changes only to a joiner; no member is loaded as a
    replica past `replica_bound_pct` of its ideal (or as far over as the busiest was before);
    the tokens are normalized (no two in a row of one member: `leave` and `rebalance` rely on
    it), and no more than the pieces can add.

    O(slots), milliseconds: what a voter checks of a join instead of placing it again (~0.1 s
    at 50 members, and every member checks every join; mesh/election.py `follows`). Not
    checked: which of a donor's arcs each piece comes from, and where in it, which is the
    proposer's to choose. That decides, within the replica bound, who replicates the pieces,
    and who inherits them if their joiner leaves: a piece cut from the top of an arc passes
    to the member after it, one from the bottom back to its donor, and `join` cuts both. So
    a proposer in league with a joiner can cut its pieces from arcs that pass to one member,
    and hand that member up to a joiner's share when the joiner leaves, until the next move
    for balance (mesh/balance.py, which voters rebuild exactly). False says only that the
    shape is not that of a join here (the voter then places it again)."""
    loads = primary_counts(before)
    joining = sorted(set(joiners))
    if not joining or any(joiner in loads for joiner in joining):
        return False
    for joiner in joining:
        share = SLOT_COUNT // (len(loads) + 1)
        for member, amount in _water_fill_down(loads, share).items():
            loads[member] -= amount
        loads[joiner] = share
    if primary_counts(after) != loads:
        return False
    count = len(after)
    # (a piece adds the joiner's token and may split the donor's arc in two)
    if count > len(before) + 2 * len(joining) * (DEFAULT_VNODES + len(loads)):
        return False
    if count > 1 and any(after[index][1] == after[(index + 1) % count][1] for index in range(count)):
        return False
    was, now = owners(before, replication_factor), owners(after, replication_factor)
    newcomers = set(joining)
    for slot in range(SLOT_COUNT):
        primary = now[slot][0]
        if primary != was[slot][0] and primary not in newcomers:
            return False
    return _replica_pct(after, replication_factor) <= max(_replica_pct(before, replication_factor),
                                                           replica_bound_pct)


def _replica_pct(tokens: Tokens, replication_factor: int) -> int:
    """How loaded the busiest replica of `tokens` is, in percent of the ideal replica load (0: no copies)."""
    members = len({node_id for _, node_id in tokens})
    copies = min(replication_factor, members) - 1
    if copies == 0:
        return 0
    return max(replica_counts(tokens, replication_factor).values()) * members * 100 // (SLOT_COUNT * copies)


def leave(tokens: Tokens, node_id: str, leave_slack: float = DEFAULT_LEAVE_SLACK) -> Tokens:
    """Return the ring without `node_id`; its arcs pass to their next member where balance allows."""
    loads = primary_counts(tokens)
    if node_id not in loads:
        return tokens
    if len(loads) == 1:
        raise ValueError("the last member cannot leave the ring")
    loads.pop(node_id)
    cap = SLOT_COUNT if leave_slack == float("inf") else int(SLOT_COUNT / len(loads) * (1 + leave_slack))
    positions = dict(tokens)
    leaver_arcs = []  # (size, first, next member)
    count = len(tokens)
    for index, (first, size, owner) in enumerate(arcs(tokens)):
        if owner == node_id:
            # Normalized tokens never repeat an owner, so the next token is another member.
            leaver_arcs.append((size, first, tokens[(index + 1) % count][1]))
            del positions[tokens[index][0]]
    # Smallest arcs first, so whole arcs stay with their replica before big ones are cut.
    leaver_arcs.sort()
    leftovers: list[tuple[int, int]] = []  # (first slot, size) still without an owner
    for size, first, successor in leaver_arcs:
        kept = max(0, min(size, cap - loads[successor]))
        loads[successor] += kept
        if kept < size:
            leftovers.append((first, size - kept))
    receive = _water_fill_up(loads, sum(size for _, size in leftovers))
    receivers = [member for member in sorted(receive) if receive[member]]
    for first, size in sorted(leftovers):
        # The bottom of the arc goes to receivers; its top already merged into the successor.
        while size:
            member = receivers[0]
            taken = min(size, receive[member])
            first = (first + taken) % SLOT_COUNT
            positions[(first - 1) % SLOT_COUNT] = member
            size -= taken
            receive[member] -= taken
            if not receive[member]:
                receivers.pop(0)
    return normalize(positions)


def _water_fill_down(loads: dict[str, int], amount: int) -> dict[str, int]:
    """Split `amount` over members so the highest loads come down to one level."""
    level = _lowest_level(loads, amount)
    give = {member: max(0, load - level) for member, load in loads.items()}
    remainder = amount - sum(give.values())
    # Those sitting at the level give one more each, in node id order.
    for member in sorted(m for m, load in loads.items() if load >= level):
        if remainder == 0:
            break
        give[member] += 1
        remainder -= 1
    return give


def _lowest_level(loads: dict[str, int], amount: int) -> int:
    """Return the lowest level L with sum(max(0, load - L)) <= amount."""
    low, high = 0, max(loads.values())
    while low < high:
        middle = (low + high) // 2
        if sum(max(0, load - middle) for load in loads.values()) <= amount:
            high = middle
        else:
            low = middle + 1
    return low


def _water_fill_up(loads: dict[str, int], amount: int) -> dict[str, int]:
    """Split `amount` over members so the lowest loads rise to one level."""
    receive = {member: 0 for member in loads}
    heap = [(load, member) for member, load in loads.items()]
    heapq.heapify(heap)
    # Leftovers are a small fraction of one member's share, so one slot at a time is cheap.
    for _ in range(amount):
        load, member = heapq.heappop(heap)
        receive[member] += 1
        heapq.heappush(heap, (load + 1, member))
    return receive


def _apportion(weights: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` pieces in proportion to weights: at least 1 and at most the weight each."""
    weight_sum = sum(weights.values())
    pieces = {}
    for member, weight in weights.items():
        if weight:
            pieces[member] = min(weight, max(1, round(total * weight / weight_sum)))
        else:
            pieces[member] = 0
    return pieces


class _Carving:
    """A join in progress: the ring so far, and each member's replica slots for rf 2 and rf 3.

    Which slots the newcomer takes is fixed by water-filling; where in a donor's
    arcs it takes them decides who replicates what, because the replica of an
    arc is the owner of the next token. Each piece therefore goes where it
    brings replica loads (for replication_factor 2 and 3 at once, as the ring
    does not know which one the cluster runs) closest to their ideal.
    """

    def __init__(self, tokens: Tokens, taker: str, members: int, vnodes: int) -> None:
        self.tokens = list(tokens)
        # member -> positions of its tokens: a piece looks up its donor's arcs by these
        # (bisect) instead of walking every token (16,000 of them for each piece at 300 members)
        self.positions: dict[str, set[int]] = {}
        for position, owner in tokens:
            self.positions.setdefault(owner, set()).add(position)
        self.taker = taker
        self.members = members
        self.vnodes = vnodes
        self.loads = _replica_loads(self.tokens)
        self.loads.setdefault(taker, [0, 0])
        # Ideal replica slots times `members`, so that every cost stays an integer
        # (floats could round differently on another node and break determinism).
        self.ideal = (SLOT_COUNT * min(1, members - 1), SLOT_COUNT * min(2, members - 1))

    def carve(self, donor: str, amount: int) -> None:
        """Give `amount` slots of `donor` to the taker, as one piece where possible."""
        while amount:
            arcs_by_size = sorted(
                (-size, index) for index, size in self._arcs_of(donor))
            fitting = [(-negative, index) for negative, index in arcs_by_size if -negative >= amount]
            if self.members > DEFAULT_VNODES:
                fitting = fitting[:CANDIDATE_ARCS]
            choices = [choice for size, index in fitting
                       for choice in self._choices(index, size, amount)]
            if fitting and not choices:
                # Every cut would touch a taker token: accept one merging with it.
                size, index = fitting[0]
                choices = self._choices(index, size, amount, crowd=True)
            if choices:
                taken = amount
            else:
                # Every arc is too small: the largest goes whole, the rest comes from the next.
                size, index = -arcs_by_size[0][0], arcs_by_size[0][1]
                taken = size
                choices = [(index, size, [(self.tokens[index][0], self.taker)], [size])]
            best: tuple[int, int, list[Token], dict[str, list[int]]] | None = None
            for index, size, replacement, sizes in choices:
                delta = _replica_delta(self.tokens, index, replacement)
                cost = self._cost(delta, size, sizes)
                if best is None or cost < best[0]:
                    best = (cost, index, replacement, delta)
            assert best is not None     # (choices is never empty here)
            _, index, replacement, delta = best
            for member, (rank1, rank12) in delta.items():
                load = self.loads.setdefault(member, [0, 0])
                load[0] += rank1
                load[1] += rank12
            position, owner = self.tokens[index]
            self.positions[owner].discard(position)
            for new_position, new_owner in replacement:
                self.positions.setdefault(new_owner, set()).add(new_position)
            tokens = self.tokens
            tokens[index:index + 1] = replacement
            end = index + len(replacement)
            # (a replacement is in order in place unless its arc wraps past slot 0: sorting
            # 16,000 tokens for every piece was a sixth of a join at 200 members)
            if not (all(tokens[k - 1] < tokens[k] for k in range(max(1, index), end))
                    and (end == len(tokens) or tokens[end - 1] < tokens[end])):
                tokens.sort()
            amount -= taken

    def _arcs_of(self, donor: str) -> list[tuple[int, int]]:
        tokens = self.tokens
        result = []
        for position in self.positions.get(donor, ()):
            index = bisect.bisect_left(tokens, (position,))
            result.append((index, (position - tokens[index - 1][0]) % SLOT_COUNT or SLOT_COUNT))
        return result

    def _choices(self, index: int, size: int, amount: int,
                 crowd: bool = False) -> list[tuple[int, int, list[Token], list[int]]]:
        """Ways to cut `amount` out of the arc: (index, old size, replacement tokens, new arc sizes).

        A cut piece always sits right before a donor token, never at the top of the
        arc, so a leave of the newest member hands it back to its donor (only a
        piece that is a donor's whole arc passes to the next member instead). A
        piece at the bottom makes the taker the replica of the previous arc; one in
        the middle makes it the replica of the arc's lower part and the donor the
        replica of the piece. Taking a whole arc that fits keeps arcs even.
        """
        position, donor = self.tokens[index]
        first = position - size + 1
        rest = size - amount
        if not rest:
            return [(index, size, [(position, self.taker)], [size])]
        choices = []
        if rest >= 2:
            low = rest // 2
            middle = [((first + low - 1) % SLOT_COUNT, donor),
                      ((first + low + amount - 1) % SLOT_COUNT, self.taker), (position, donor)]
            choices.append((index, size, middle, [low, amount, rest - low]))
        if crowd or len(self.tokens) == 1 or self.tokens[index - 1][1] != self.taker:
            bottom = [((first + amount - 1) % SLOT_COUNT, self.taker), (position, donor)]
            choices.append((index, size, bottom, [amount, rest]))
        return choices

    def _cost(self, delta: dict[str, list[int]], old_size: int, new_sizes: list[int]) -> int:
        """Change in squared distance from ideal: replica loads first, arc evenness a little.

        Evenness (arcs near SLOT_COUNT / (members * vnodes)) weighs a tenth: it only
        decides between otherwise equal cuts, e.g. halving a huge arc while the
        cluster is small, so the pieces spread instead of crowding one end.
        """
        members, total = self.members, 0
        for member, change in delta.items():
            load = self.loads.get(member, (0, 0))
            for rank in (0, 1):
                if change[rank]:
                    before = (load[rank] * members - self.ideal[rank]) * self.vnodes
                    after = before + change[rank] * members * self.vnodes
                    total += 10 * (after * after - before * before)
        unit = members * self.vnodes
        total += sum((size * unit - SLOT_COUNT) ** 2 for size in new_sizes)
        return total - (old_size * unit - SLOT_COUNT) ** 2


# Arcs before a change whose owners it can alter: a walk for three distinct
# owners rarely needs more than three tokens, six leaves room for repeats.
_LOOKBACK = 6


def _replica_shares(tokens: list[Token], first: int, last: int) -> dict[str, list[int]]:
    """Return member -> [slots as first replica, slots as first or second replica] for arcs first..last.

    The arc of tokens[k] runs from tokens[k - 1]; walks stop at the end of the
    list, so callers pass enough tokens after `last`.
    """
    shares: dict[str, list[int]] = {}
    count = len(tokens)
    for index in range(first, last + 1):
        size = (tokens[index][0] - tokens[index - 1][0]) % SLOT_COUNT
        primary = tokens[index][1]
        replicas: list[str] = []
        # (indices, not a slice: slicing the rest of a 3-lap ring for every arc made the
        # whole-ring count quadratic, a third of a join's time at 48 members)
        for later in range(index + 1, count):
            member = tokens[later][1]
            if member != primary and member not in replicas:
                replicas.append(member)
                if len(replicas) == 2:
                    break
        for rank, member in enumerate(replicas):
            share = shares.setdefault(member, [0, 0])
            if rank == 0:
                share[0] += size
            share[1] += size
    return shares


def _replica_loads(tokens: list[Token]) -> dict[str, list[int]]:
    """Return member -> [replica slots at rf 2, replica slots at rf 3] for the whole ring."""
    count = len(tokens)
    if count == 1:
        return {}
    # Three laps: arcs of the middle one, walks running on into the third.
    return _replica_shares(tokens * 3, count, 2 * count - 1)


def _replica_delta(tokens: list[Token], index: int, replacement: list[Token]) -> dict[str, list[int]]:
    """Return how replica loads change when tokens[index] is replaced (its position stays the last)."""
    count = len(tokens)
    if count <= 2 * _LOOKBACK + 4:
        # A small ring wraps inside any window: compare whole rings instead.
        before = _replica_loads(tokens)
        after = _replica_loads(tokens[:index] + replacement + tokens[index + 1:])
    else:
        # Only arcs up to the replaced one can change (the replacement ends at the
        # old position, so later arcs keep their size and their walks), and of
        # those only arcs whose walk for two replicas reaches the replaced token.
        reach = 1
        seen = {tokens[index - 1][1]}
        while reach < _LOOKBACK and len(seen) < 3:
            reach += 1
            seen.add(tokens[(index - reach) % count][1])
        window = [tokens[(index + offset) % count] for offset in range(-reach - 1, _LOOKBACK + 1)]
        centre = reach + 1
        changed = window[:centre] + replacement + window[centre + 1:]
        before = _replica_shares(window, 1, centre)
        after = _replica_shares(changed, 1, centre + len(replacement) - 1)
    delta = {member: list(share) for member, share in after.items()}
    for member, (rank1, rank12) in before.items():
        change = delta.setdefault(member, [0, 0])
        change[0] -= rank1
        change[1] -= rank12
    return delta


def _even(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal integers, larger ones first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]
