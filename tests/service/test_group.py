"""GroupCommit: concurrent items share commits, each caller returns only after its own item is
committed, a failed commit fails its group (or, with ``retry_alone``, only the item at fault)."""

from __future__ import annotations

import threading
import time

import pytest

from watchkeeper.service.group import GroupCommit


def run_threads(group: GroupCommit[int], items: list[int]) -> dict[int, BaseException | None]:
    outcome: dict[int, BaseException | None] = {}
    start = threading.Barrier(len(items))

    def send(item: int) -> None:
        start.wait()
        try:
            group.submit(item)
        except Exception as exc:
            outcome[item] = exc
        else:
            outcome[item] = None

    threads = [threading.Thread(target=send, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcome


def test_concurrent_items_share_commits_and_each_returns_after_its_own() -> None:
    committed: list[list[int]] = []

    def commit(items: list[int]) -> None:
        time.sleep(0.02)  # an fsync: the others queue meanwhile
        committed.append(items)

    group: GroupCommit[int] = GroupCommit(commit)
    outcome = run_threads(group, list(range(16)))
    assert outcome == dict.fromkeys(range(16))
    assert sorted(i for items in committed for i in items) == list(range(16))  # each once
    assert len(committed) < 16 and group.groups == len(committed) and group.items == 16


@pytest.mark.parametrize("retry_alone", [False, True])
def test_a_failed_commit_fails_its_group_or_only_the_item_at_fault(retry_alone: bool) -> None:
    committed: list[int] = []
    gate = threading.Event()

    def commit(items: list[int]) -> None:
        if items == [0]:  # the first caller holds the lock while the others queue
            gate.wait(5)
        if 13 in items:
            raise ValueError("refused")
        committed.extend(items)

    group: GroupCommit[int] = GroupCommit(commit, retry_alone=retry_alone)
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    time.sleep(0.05)
    threading.Timer(0.2, gate.set).start()
    outcome = run_threads(group, [11, 12, 13])
    first.join(5)
    assert isinstance(outcome[13], ValueError)
    if retry_alone:
        assert outcome[11] is None and outcome[12] is None and sorted(committed) == [0, 11, 12]
    else:  # the three queued behind the first caller shared one commit, and its failure
        assert all(isinstance(outcome[i], ValueError) for i in (11, 12)) and committed == [0]
