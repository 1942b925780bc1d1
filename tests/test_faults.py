"""Faults that must never cost a user their model."""

import pytest

from testing.faults import kill_during_writes


@pytest.mark.slow
def test_sigkill_mid_write_always_leaves_a_whole_consistent_checkpoint(tmp_path):
    found = kill_during_writes(tmp_path / "ck", trials=40)
    assert len(set(found)) > 10  # the kills really landed at many different points of the writing loop
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ck"]
    assert len(leftovers) <= 2 and all(name.startswith(".ck.") for name in leftovers)  # stale temps are swept
