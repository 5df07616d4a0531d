"""Why a node's mesh dropped messages: its counters broken down by reason, values in."""
from mesh.links import dropped_by_reason


def test_the_reasons_add_up_to_the_dropped_total_and_name_each_refusal():
    counters = {"dropped": 3, "too_big": 1, "invalid": 7, "invalid_impersonation": 4, "invalid_relayed": 2,
                "invalid_schema": 0, "in": 500, "heard_heartbeat": 400}
    reasons = dropped_by_reason(counters)
    assert reasons == {"send_queue_full": 3, "too_big": 1, "impersonation": 4, "relayed": 2, "other": 1}
    assert sum(reasons.values()) == counters["dropped"] + counters["too_big"] + counters["invalid"]


def test_a_node_that_dropped_nothing_names_no_reason():
    assert dropped_by_reason({"in": 10, "out": 12}) == {}
