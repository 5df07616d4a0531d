"""routing.slot_of: the one slot of a command's keys, or CROSSSLOT, exactly as hashing every key says.

Keys that begin with the first key's text up to the end of its {tag} are taken without
hashing them (a check in C); these properties compare that with keyslot() of every key.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercache.pulse import EVERY
from hypercache.routing import CROSSSLOT, slot_of
from mesh.keyslot import keyslot

# few symbols, braces among them: tags, empty tags, unclosed and nested braces, tags not at the start
_KEYS = st.binary(max_size=8).map(lambda raw: bytes(b"ab{}"[c % 4] for c in raw))


def _expected(keys: list[bytes]) -> int | None:
    slots = {keyslot(key) for key in keys}
    return slots.pop() if len(slots) == 1 else None


@given(st.lists(_KEYS, min_size=1, max_size=12))
def test_the_slot_is_the_one_every_key_hashes_to(keys):
    expected = _expected(keys)
    if expected is None:
        with pytest.raises(type(CROSSSLOT)):
            slot_of(keys)
    else:
        assert slot_of(keys) == expected


@given(_KEYS, st.lists(_KEYS, min_size=1, max_size=4))
def test_keys_sharing_the_first_keys_tag_prefix_share_its_slot(first, tails):
    """A tagged first key and keys made of its text up to the tag's end plus anything."""
    start = first.find(b"{")
    end = first.find(b"}", start + 1)
    prefix = first[:end + 1] if start != -1 and end > start + 1 else first
    keys = [first] + [prefix + tail for tail in tails]
    expected = _expected(keys)
    assert (slot_of(keys) if expected is not None else None) == expected


def test_one_key_in_another_slot_past_the_first_piece_is_found():
    keys = [b"{t}k%d" % i for i in range(EVERY * 2 + 5)]
    assert slot_of(keys) == keyslot(b"t")
    keys[-1] = b"{u}k"
    with pytest.raises(type(CROSSSLOT)):
        slot_of(keys)
    keys[-1] = b"t"                              # no tag, but the same slot: hashed, and accepted
    assert slot_of(keys) == keyslot(b"t")
