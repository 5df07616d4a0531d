"""Command statistics: a run of pipelined calls is recorded at once, exactly."""
from hypercache.stats import LATENCY_BUCKETS, CommandStats


def test_record_many_counts_every_call_at_the_mean_latency():
    stats = CommandStats()
    stats.record_many(16, 16 * 3_000)          # 16 calls, 3 us each on average
    assert stats.calls == 16
    assert stats.nanos == 48_000
    assert stats.usec == 48
    assert stats.latency[(3).bit_length()] == 16     # the <= 4 us bucket
    assert sum(stats.latency) == 16


def test_record_many_agrees_with_record_for_one_call():
    one, many = CommandStats(), CommandStats()
    for elapsed in (0, 999, 1_000, 7_500, 10**12):
        one.record(elapsed)
        many.record_many(1, elapsed)
    assert (one.calls, one.nanos, one.latency) == (many.calls, many.nanos, many.latency)
    assert one.latency[LATENCY_BUCKETS] == 1    # 1000 s: the overflow bucket
