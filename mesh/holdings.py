"""Which slots a node holds a current copy of: the pure half of "data follows the map".

A node's store may contain keys of any slot. What decides whether it may serve
a slot, copy it to a replica or hand it to a puller is not the keys but this
record: a slot is *held* (`loaded`) from the moment its whole copy arrived (or
the node led it from the start) for as long as every write to it reached this
node, and no longer. Each rule below closes a way an old copy could pass for a
current one and replace newer data:

- maps went by while the node was away (a pause, a cut): every write
  acknowledged under them may be missing, so copies older than the last map
  seen are void;
- a slot owned again after a map that gave it to others was written without us:
  void, even when some of it was kept (retained or not dropped yet), unless the
  copy came under the new map;
- a copy kept for a joining primary (retained) is for that primary only, and
  only while it leads the slot; when another one leads it first, the copy stays
  as a fallback (below), since it may be the only one;
- maps skipped while present (two commits in a row) may have taken a slot we
  replicate away and given it back, its writes meanwhile not sent to us: such a
  copy is in doubt until its primary says, on the stream, that it holds every slot
  it leads under the new map (LED_HELD: it comes after the copies that map
  begins, and after the primary pulled back what it lacked).

A copy a node stops owning while one of the slot's new owners has none yet (a
move for balance: the new replica is copied from the new primary after the
switch) is kept as a *fallback*: stale, offered only when no owner holds the
slot current, until every owner of the slot says it holds all it owns. Without
it the new primary would hold the slot's only copy for the length of that copy,
and one more failure in that window would lose acknowledged writes. (Writes
taken after the switch are acknowledged only once the new replica has them, so
the fallback misses none that a client saw acknowledged.)

A voided copy whose keys are still here is *stale*, not gone: when no live
member holds a slot current (say every owner was away at once, a machine so
starved that all nodes stalled past the node timeout), the stale copy last
current under the newest map is served rather than nothing (`best_stale`).
It may miss writes made while its node was away, or hold keys deleted since;
an empty slot misses all of them.

The node's I/O (hypercache/replication.py) asks and informs; nothing here
touches a socket or a store. Owners are per-slot tuples, primary first, as in
mesh.slotmap.SlotMap.owners.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping, Sequence

from mesh.keyslot import SLOT_COUNT

Owners = Sequence[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Retained:
    """A copy kept, though no longer ours, for the slot's new primary to pull."""

    primary: str
    since: float
    epoch: int      # the last map under which it is known current (we owned it then)


class Holdings:
    """Per-slot: held or not, under which map epoch the copy arrived, kept for whom."""

    def __init__(self, me: str, fresh: bool) -> None:
        self.me = me
        # (a fresh node is the whole cluster's first: it leads every slot, empty)
        self.loaded = bytearray(b"\x01" * SLOT_COUNT) if fresh else bytearray(SLOT_COUNT)
        self.loaded_epoch = [0] * SLOT_COUNT
        self.retained: dict[int, Retained] = {}
        self._expired_at = float("-inf")     # when expire_retained last walked `retained`
        self._oldest_at = float("inf")       # no entry of `retained` is older (a bound: see _retain)
        # slot -> the newest map epoch its voided copy is known current under (its keys are still here)
        self.stale: dict[int, int] = {}
        # While joining: slot -> the primary that copied it here ahead of our admission
        # (its live writes follow). Not held: the switch voids it like any copy made
        # before the map; the primary then confirms it on the same stream (no new copy).
        self.precopied: dict[int, str] = {}
        # slot -> when this node stopped owning it and kept its copy as a fallback (see above)
        self.fallback: dict[int, float] = {}
        # primary -> (map epoch, slots): replica copies in doubt after skipped maps, held
        # again once that primary says it holds every slot it leads under that map or a newer one
        self.in_doubt: dict[str, tuple[int, set[int]]] = {}

    # -- a map change ---------------------------------------------------------------

    def follow(self, previous: Owners, previous_epoch: int, owners: Owners, epoch: int, now: float,
               unacknowledged: Mapping[str, Collection[int]] | None = None, missed_maps: bool = False) -> int:
        """Apply the rules of the change from one map to the next; returns how many
        slots the missed-maps rule voided.

        `missed_maps`: maps went by while this node was away (the caller knows:
        a stall, a cut, a refuted death). Maps merely skipped by a node that was
        there all along (two commits in a row) void nothing: its streams kept it
        current, and voiding every owner's copy at once would leave nobody
        holding the data.

        `unacknowledged`: peer -> slots whose copy we were sending it and it has not
        acknowledged whole (it pulled them, or replicates them): it does not hold them."""
        me, loaded = self.me, self.loaded
        unacknowledged = unacknowledged or {}
        voided = 0
        # (a copy in doubt is a copy we have, not current for sure: as a voided one below)
        doubted = {slot for _, slots in self.in_doubt.values() for slot in slots}
        self._keep_doubts(owners, drop_all=missed_maps)
        voided_now: set[int] = set()
        if missed_maps:
            voided_now.update(doubted)
            # (copies that arrived from a newer map's primaries stay: they saw those maps)
            retained = self.retained
            for slot in range(SLOT_COUNT):
                if loaded[slot] and self.loaded_epoch[slot] <= previous_epoch:
                    loaded[slot] = 0
                    voided_now.add(slot)
                    # (current at least until we went away; a copy kept for a new primary,
                    # until we stopped owning it: nobody wrote it through us since)
                    kept = retained.get(slot)
                    self.stale[slot] = previous_epoch if kept is None else kept.epoch
                    voided += 1
            # A copy kept for its new primary stays kept, stale now: that primary pulls it as
            # the newest stale copy when nobody holds the slot current, and a leaving node
            # waits for that (handing_over). Cleared, its keys were dropped as not ours at
            # once, and a scale-down on a machine that stalled every node lost them all.
        precopied = self.precopied
        for slot, now_owners in enumerate(owners):
            # (a copy that came from a primary of this map or a newer one is current:
            # the node applies maps a little after its streams see them; so is a copy
            # taken ahead of our admission from a primary that goes on leading the slot:
            # its stream, unbroken, now simply feeds a replica)
            if (loaded[slot] and me in now_owners and me not in previous[slot]
                    and self.loaded_epoch[slot] <= previous_epoch
                    and not (previous[slot][:1] == now_owners[:1] and precopied.get(slot) == now_owners[0])):
                loaded[slot] = 0
                self.stale[slot] = self.loaded_epoch[slot]     # (all we know: it was current then)
                self.retained.pop(slot, None)
        for slot, kept in list(self.retained.items()):
            if owners[slot][:1] != (kept.primary,):
                del self.retained[slot]
                if (loaded[slot] or slot in self.stale) and me not in owners[slot]:
                    # The slot's primary changed before it pulled our copy (two joins in a
                    # row; it died): we may hold the only one (replication factor 1). Not
                    # for the new primary as current (it may have taken writes meanwhile,
                    # from a copy it got elsewhere): kept as a fallback, the newest stale
                    # copy a primary that finds no current one pulls (best_stale).
                    self._fall_back(slot, min(kept.epoch, self.stale.get(slot, kept.epoch)), now)
        for slot in [slot for slot in self.fallback if me in owners[slot]]:
            del self.fallback[slot]     # (ours again: its stale copy follows the owners' rules)
        # A slot's new primary that does not hold it (it joined, or it was an owner
        # still receiving our copy) pulls it from the slot's other owners. When none
        # of them holds it either (newcomers too: two joins in one map; replication
        # factor 1) we hold the only copy: keep it for that primary. (When one does,
        # keeping ours too would only strand keys here until RETAIN_S passed.)
        for slot, now_owners in enumerate(owners):
            before = previous[slot]
            if not (now_owners and me not in now_owners and me in before
                    and (loaded[slot] or slot in voided_now or slot in doubted)):
                continue
            primary = now_owners[0]
            if slot in voided_now:
                # Away across the map that took it from us (a leave on a machine that stalled
                # every node): whether its other owners hold it current is not known, they
                # may have been away too. Kept, stale, for its new primary's stale pull.
                self._retain(slot, primary, now, self.stale[slot])
                continue
            # (a copy in doubt is kept by the same rules, labelled with the map it is sure of)
            current_at = previous_epoch if loaded[slot] else self.stale.get(slot, previous_epoch)
            lacking = any(owner not in before or slot in unacknowledged.get(owner, ()) for owner in now_owners)
            if primary in before and slot not in unacknowledged.get(primary, ()):
                if lacking:     # it holds the slot already, a new replica does not
                    self._fall_back(slot, current_at, now)
                continue
            if any(other in before and slot not in unacknowledged.get(other, ()) for other in now_owners[1:]):
                self._fall_back(slot, current_at, now)
                continue        # another owner holds it and gives it
            self._retain(slot, primary, now, current_at)
        return voided

    def doubt_after_skip(self, previous: Owners, previous_epoch: int, owners: Owners, epoch: int,
                         seen: Mapping[str, int]) -> int:
        """Maps were skipped while this node was present: each slot it replicates for the
        same primary before and after may have been taken from it and given back in a map it
        did not see, and the writes of that map not sent to it. Such a copy is not held
        (not served, not counted in `holds`) until the primary says on its stream that it
        holds every slot it leads under map `epoch` or a newer one (primary_spoke); `seen`
        is primary -> the newest map epoch it said so for (before we adopted the map).
        (Voiding and copying such slots again, tried, left one complete copy for the length
        of the copy; this waits only for the primary's word, LED_HELD.) Returns how many."""
        me, loaded = self.me, self.loaded
        doubted = 0
        for slot, now_owners in enumerate(owners):
            if not loaded[slot] or me not in now_owners[1:] or previous[slot][:1] != now_owners[:1]:
                continue
            primary = now_owners[0]
            if seen.get(primary, 0) >= epoch:
                continue        # it said so already: a new copy of it would have begun before
            loaded[slot] = 0
            self.stale[slot] = previous_epoch      # (current at least until the last map we saw)
            entry = self.in_doubt.get(primary)
            if entry is None or entry[0] < epoch:
                # (a second skip before the primary spoke: its word for the earlier map does
                # not come after the copies this one begins)
                entry = self.in_doubt[primary] = (epoch, set() if entry is None else entry[1])
            entry[1].add(slot)
            doubted += 1
        return doubted

    def primary_spoke(self, primary: str, epoch: int) -> list[int]:
        """`primary` says on its stream that it holds every slot it leads under map `epoch`:
        the copies in doubt it confirms (held again).

        That it *holds* them matters: a primary that lost the slot in the skipped maps too
        and got it back pulls it before it copies it to anyone, and, were our copy confirmed
        by then, it would pull ours, which may miss the writes made while the slot was
        elsewhere. Only the slots it leads: a wait on its replica copies too could be mutual
        (two replicas of each other's slots that skipped the same maps) and never end."""
        entry = self.in_doubt.get(primary)
        if entry is None or epoch < entry[0]:
            return []
        del self.in_doubt[primary]
        confirmed = sorted(entry[1])
        for slot in confirmed:
            self.loaded[slot] = 1
            self.loaded_epoch[slot] = entry[0]
            self.stale.pop(slot, None)
        return confirmed

    def _keep_doubts(self, owners: Owners, drop_all: bool) -> None:
        """A new map: a doubt stays only while its primary leads the slot and we replicate it
        (otherwise the slot is simply not held: stale, under the usual rules)."""
        me = self.me
        for primary, (epoch, slots) in list(self.in_doubt.items()):
            if not drop_all:
                slots.intersection_update([slot for slot in slots
                                           if owners[slot][:1] == (primary,) and me in owners[slot]])
            if drop_all or not slots:
                del self.in_doubt[primary]

    def _fall_back(self, slot: int, epoch: int, now: float) -> None:
        """Keep our copy, current under map `epoch`, as a fallback: stale, not served."""
        self.loaded[slot] = 0
        self.stale[slot] = epoch
        self.fallback[slot] = now

    def release_fallback(self, slots: Iterable[int]) -> list[int]:
        """The slots' owners all hold them: our fallback copies go (returned: their keys are to drop)."""
        released = [slot for slot in slots if self.fallback.pop(slot, None) is not None]
        for slot in released:
            self.stale.pop(slot, None)
        return released

    def release_unowned(self, owners: Owners, handing: Iterable[int]) -> list[int]:
        """Slots we neither own nor hand on are not held any more: nothing keeps their
        copy current. Returns them (the keys left of them are to be dropped)."""
        kept = set(handing)
        kept.update(self.retained)
        kept.update(self.precopied)
        kept.update(self.fallback)
        me, loaded = self.me, self.loaded
        released = []
        stale = self.stale
        for slot, now_owners in enumerate(owners):
            if me not in now_owners and slot not in kept:
                loaded[slot] = 0
                stale.pop(slot, None)
                released.append(slot)
        return released

    def led_unheld(self, owners: Owners, led: Sequence[int] | None = None) -> list[int]:
        """Slots we lead without their data: to pull before serving them. (`led`: the slots we lead
        in `owners`, where the caller has them: the replicator keeps them per map.)"""
        me, loaded = self.me, self.loaded
        if led is not None:
            return [slot for slot in led if not loaded[slot]]
        return [slot for slot, now_owners in enumerate(owners) if now_owners[:1] == (me,) and not loaded[slot]]

    # -- copies arriving ------------------------------------------------------------

    def copy_starts(self, slots: Iterable[int]) -> None:
        in_doubt = self.in_doubt
        for slot in slots:
            self.loaded[slot] = 0
            self.stale.pop(slot, None)      # (the copy replaces the keys)
            self.precopied.pop(slot, None)
            if in_doubt:
                for _, doubted in in_doubt.values():
                    doubted.discard(slot)   # (the copy decides; empty entries go at the next map)

    def copy_done(self, slots: Iterable[int], epoch: int) -> None:
        for slot in slots:
            self.loaded[slot] = 1
            self.loaded_epoch[slot] = epoch

    def copied_ahead(self, slots: Iterable[int], primary: str, owners: Owners, own_map: bool) -> None:
        """`primary` finished copying `slots` to this node ahead of its admission (while it
        joins): `precopied`, but for slots this node owns in the cluster's map it holds.

        `own_map`: it still holds its own one-member map, which gives it every slot, when a
        member's copy ends (the member planned on the cluster's map): those count too. They
        did not, and the join waited for the stall patience (5 node timeouts, 15 s by
        default) to be admitted anyway, then pulled again what it had."""
        self.precopied.update((slot, primary) for slot in slots if own_map or self.me not in owners[slot])

    def left_own_map(self, owners: Owners) -> None:
        """This node took a cluster's map after its own one-member map: of the copies counted
        while it held its own, keep those this map makes copies ahead of its admission (from
        the slot's primary, for a slot it does not own). A node restarted under its old id
        also starts from its own map, and a copy its primary sent it *as a replica* then is no
        copy ahead: counted, the node claimed the slot as held through a removal and a new
        admission while its primary's stream no longer fed it (review)."""
        me = self.me
        self.precopied = {slot: primary for slot, primary in self.precopied.items()
                          if me not in owners[slot] and owners[slot][:1] == (primary,)}

    def given_up(self, slots: Iterable[int]) -> None:
        """No live member holds these current, and none has a newer stale copy than
        ours (a whole-cluster restart, rf 1 with the holder dead, every owner away):
        served from what this node has, possibly nothing."""
        for slot in slots:
            self.loaded[slot] = 1
            self.stale.pop(slot, None)

    def best_stale(self, slot: int, offers: Mapping[str, int]) -> str | None:
        """Whose stale copy of `slot` to pull when no live member holds it current:
        the member whose copy was current under the newest map, among `offers`
        (member -> epoch). None: ours is as new (it stays), or nobody has one."""
        ours = self.stale.get(slot, -1)
        best = max(offers.items(), key=lambda offer: (offer[1], offer[0]), default=None)
        if best is None or best[1] <= ours:
            return None
        return best[0]

    # -- copies leaving -------------------------------------------------------------

    def can_give(self, slot: int, owners: Owners, asker: str) -> bool:
        """Whether `asker`, which leads `slot`, may pull our copy: we hold it as an
        owner, or kept it for `asker` as the slot's former owner."""
        if not self.loaded[slot]:
            return False
        if self.me in owners[slot]:
            return True
        kept = self.retained.get(slot)
        return kept is not None and kept.primary == asker

    def can_give_stale(self, slot: int) -> bool:
        """Whether we have a stale copy of `slot` to give (PULL_STALE)."""
        return slot in self.stale

    def answer_pull(self, slots: Iterable[int], owners: Owners, asker: str,
                    stale_ok: bool) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """A pull by `asker` of `slots` it leads: (the slots to copy it, (slot, epoch) of the
        stale copies only offered to it, the slots we have nothing of). A plain pull wants a
        current copy: a stale one given to it would pass as current, without the wait for every
        owner's answer and the choice of the newest (best_stale), and could lack acknowledged
        writes or bring deleted keys back. Only a pull for stale copies (`stale_ok`) gets them."""
        give: list[int] = []
        offered: list[tuple[int, int]] = []
        lacking: list[int] = []
        for slot in slots:
            if self.can_give(slot, owners, asker) or (stale_ok and slot in self.stale):
                give.append(slot)
            elif slot in self.stale:
                offered.append((slot, self.stale[slot]))
            else:
                lacking.append(slot)
        return give, offered, lacking

    def keep_for(self, slots: Iterable[int], primary: str, now: float, epoch: int) -> None:
        """Keep copies we are no longer an owner of for `primary`, which leads them now and
        holds them already but for our confirmation (a joiner fed ahead of the switch)."""
        for slot in slots:
            if self.loaded[slot]:
                self._retain(slot, primary, now, epoch)

    def handed_off(self, slots: Iterable[int]) -> None:
        for slot in slots:
            self.retained.pop(slot, None)

    def _retain(self, slot: int, primary: str, now: float, epoch: int) -> None:
        self.retained[slot] = Retained(primary, now, epoch)
        self._oldest_at = min(self._oldest_at, now)

    def expire_retained(self, now: float, keep_s: float) -> list[int]:
        # At most once a second, and only once the oldest entry may have expired: a walk
        # over the thousands of slots a formation retains cost an idle member of 12 ~0.1-0.2%
        # of a core each second for a minute (and 14% when it ran 20 times a second).
        if now - self._expired_at < 1.0 or now - self._oldest_at <= keep_s:
            return []
        self._expired_at = now
        expired = [slot for slot, kept in self.retained.items() if now - kept.since > keep_s]
        for slot in expired:
            del self.retained[slot]
        self._oldest_at = min((kept.since for kept in self.retained.values()), default=float("inf"))
        return expired
