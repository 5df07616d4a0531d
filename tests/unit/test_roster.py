"""How often a member sends its whole member list: flat bytes per member at any size, values in."""
import pytest

from mesh.bus import ROSTER_EVERY_S, ROSTER_FLAT_FROM, roster_every_s


def test_small_maps_send_the_roster_as_before():
    assert roster_every_s(3) == ROSTER_EVERY_S
    assert roster_every_s(ROSTER_FLAT_FROM) == ROSTER_EVERY_S


def test_past_sixteen_members_the_roster_bytes_each_member_hears_stay_flat():
    # a roster names every member: its bytes per second grow with the map unless it goes less often
    def roster_entries_per_second(members: int) -> float:
        return members / roster_every_s(members)
    flat = roster_entries_per_second(ROSTER_FLAT_FROM)
    for members in (17, 48, 100, 300, 1000):
        assert roster_entries_per_second(members) == pytest.approx(flat)
    assert roster_every_s(100) > roster_every_s(48) > ROSTER_EVERY_S
