"""The stated merge rule, slot by slot (shared.project_merge.three_way)."""

from __future__ import annotations

import pytest

from shared.project_merge import three_way


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "merged", "conflicts"),
    [
        ({"d": 1}, {"d": 1}, {"d": 1}, {"d": 1}, []),  # nobody changed it
        ({"d": 1}, {"d": 2}, {"d": 1}, {"d": 2}, []),  # only ours changed it
        ({"d": 1}, {"d": 1}, {"d": 3}, {"d": 3}, []),  # only theirs changed it
        ({"d": 1}, {"d": 2}, {"d": 2}, {"d": 2}, []),  # both made the same change
        ({"d": 1}, {"d": 2}, {"d": 3}, {}, ["d"]),  # both changed it differently
        ({"d": 1}, {}, {"d": 1}, {}, []),  # ours removed it
        ({"d": 1}, {"d": 1}, {}, {}, []),  # theirs removed it
        ({"d": 1}, {}, {"d": 3}, {}, ["d"]),  # removed on one side, changed on the other
        ({}, {"v": 1}, {}, {"v": 1}, []),  # added on one side
        ({}, {"v": 1}, {"v": 2}, {}, ["v"]),  # added on both sides with different content
    ],
)
def test_three_way_rule(base, ours, theirs, merged, conflicts):
    got, got_conflicts, side = three_way(base, ours, theirs)
    assert got == merged and got_conflicts == conflicts
    assert set(side) | set(got_conflicts) == set(base) | set(ours) | set(theirs)
