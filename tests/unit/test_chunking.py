"""mailproxy.chunking: the fixed-size slices every batch call is cut into."""

from __future__ import annotations

import pytest

from mailproxy.chunking import chunks


@pytest.mark.parametrize(
    ("count", "size", "lengths"),
    [(0, 10, []), (1, 10, [1]), (10, 10, [10]), (11, 10, [10, 1]), (250, 100, [100, 100, 50])],
)
def test_items_are_cut_in_order_into_slices_of_at_most_size(
    count: int, size: int, lengths: list[int]
) -> None:
    # Given `count` items / When chunked by `size`
    items = list(range(count))
    cut = list(chunks(items, size))
    # Then every slice but the last is full, and together they are the items in order
    assert [len(chunk) for chunk in cut] == lengths
    assert [item for chunk in cut for item in chunk] == items


def test_each_slice_is_a_list_of_its_own() -> None:
    # Given a tuple / Then the slices are lists, and changing one leaves the items as they were
    items = ("a", "b", "c")
    first, second = chunks(items, 2)
    first.append("z")
    assert (first, second, items) == (["a", "b", "z"], ["c"], ("a", "b", "c"))


@pytest.mark.parametrize("size", [0, -1])
def test_a_slice_holds_at_least_one_item(size: int) -> None:
    with pytest.raises(ValueError, match="at least one item"):
        list(chunks([1, 2], size))
