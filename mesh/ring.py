"""Place vnode tokens on the ring of 16,384 slots and derive each slot's owners.

A token is a `(position, node_id)` pair. The token at position `t` owns the
slots after the previous token up to and including `t` (its *arc*); the owners
of a slot are the first `replication_factor` distinct members met walking the
ring clockwise from that slot, primary first.

Tokens are not random. A random-token ring is measurably unbalanced at 20+
members (1.14x the ideal load with 256 vnodes), so tokens are placed
deliberately and deterministically:

- `join` carves the newcomer's share out of the most-loaded members
  (water-filling), in `vnodes` pieces spread over their largest arcs. Only the
  newcomer's share moves.
- `leave` deletes the leaver's tokens, so each arc passes to the next member on
  the ring, which is already its replica: failover needs no data copy. Only
  where that would overload a member beyond `leave_slack` is the rest of the
  arc handed to the least-loaded members instead. Only the leaver's slots move.

Every function is pure: the same tokens in give the same tokens out on every
node, and the tokens travel in the replicated slot map.
"""
from __future__ import annotations

import heapq
from typing import Iterable

from mesh.keyslot import SLOT_COUNT

Token = tuple[int, str]
Tokens = tuple[Token, ...]

# Pieces a joining member takes; more pieces interleave members more finely,
# which spreads a leaver's arcs (and replica load) over more successors.
DEFAULT_VNODES = 64
# How far above the ideal load a member may end up when it inherits a leaver's
# arcs; a little slack keeps more failed-over slots on the replica that has them.
DEFAULT_LEAVE_SLACK = 0.04


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


def owners(tokens: Tokens, replication_factor: int) -> tuple[tuple[str, ...], ...]:
    """Return owners per slot (primary first), sharing one tuple per distinct owner list."""
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


def join(tokens: Tokens, node_id: str, vnodes: int = DEFAULT_VNODES) -> Tokens:
    """Return the ring with `node_id` added, taking its share from the most-loaded members."""
    loads = primary_counts(tokens)
    if node_id in loads:
        return tokens
    share = SLOT_COUNT // (len(loads) + 1)
    give = _water_fill_down(loads, share)
    pieces = _apportion(give, vnodes)
    positions = dict(tokens)
    by_member: dict[str, list[tuple[int, int]]] = {}
    for first, size, owner in arcs(tokens):
        by_member.setdefault(owner, []).append((first, size))
    for donor in sorted(give):
        if give[donor]:
            _carve(positions, by_member[donor], donor, node_id, give[donor], pieces[donor])
    return normalize(positions)


def leave(tokens: Tokens, node_id: str, leave_slack: float = DEFAULT_LEAVE_SLACK) -> Tokens:
    """Return the ring without `node_id`; its arcs pass to their next member where balance allows."""
    loads = primary_counts(tokens)
    if node_id not in loads:
        return tokens
    if len(loads) == 1:
        raise ValueError("the last member cannot leave the ring")
    loads.pop(node_id)
    cap = int(SLOT_COUNT / len(loads) * (1 + leave_slack))
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


def _carve(positions: dict[int, str], donor_arcs: Iterable[tuple[int, int]],
           donor: str, taker: str, amount: int, pieces: int) -> None:
    """Move `amount` slots from the donor's largest arcs to `taker`, in `pieces` segments."""
    largest = sorted(donor_arcs, key=lambda arc: (-arc[1], arc[0]))
    chosen: list[tuple[int, int]] = []
    total = 0
    for arc in largest:
        if len(chosen) >= pieces and total >= amount:
            break
        chosen.append(arc)
        total += arc[1]
    amounts = _split_proportionally(amount, [size for _, size in chosen])
    segment_counts = _split_proportionally(max(pieces, len(chosen)), [size for _, size in chosen])
    for (first, size), taken, segments in zip(chosen, amounts, segment_counts):
        segments = max(1, min(segments, taken))
        if taken == 0:
            continue
        start = first
        for segment_size, segment_taken in zip(_even(size, segments), _even(taken, segments)):
            if segment_taken:
                positions[(start + segment_taken - 1) % SLOT_COUNT] = taker
                if segment_taken < segment_size:
                    positions[(start + segment_size - 1) % SLOT_COUNT] = donor
            start += segment_size


def _split_proportionally(total: int, sizes: list[int]) -> list[int]:
    """Split `total` in proportion to sizes (largest remainder), never above a size when total <= sum."""
    size_sum = sum(sizes)
    exact = [total * size / size_sum for size in sizes]
    result = [int(share) for share in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (result[i] - exact[i], i))
    for index in by_remainder[:total - sum(result)]:
        result[index] += 1
    return result


def _even(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal integers, larger ones first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]
