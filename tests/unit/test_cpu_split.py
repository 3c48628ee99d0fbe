"""`ccc bench pipeline --enclave-cpus N`: the CPU list format, the split, and the placement check.

The split is what makes the pinned report honest: the enclave and the bare counter on the same
CPUs, everything else elsewhere, checked against the kernel's view of every thread.
"""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc.evaluation.cpu_split import CpuSplit, CpuSplitError, check_split, pin_process, plan_split, process_cpus
from ccc_enclave.cpus import CpuListError, format_cpu_list, parse_cpu_list


@given(st.sets(st.integers(min_value=0, max_value=300), min_size=1))
def test_cpu_lists_round_trip(cpus: set[int]) -> None:
    assert parse_cpu_list(format_cpu_list(cpus)) == cpus


def test_cpu_lists_use_the_kernels_format() -> None:
    assert format_cpu_list({0, 2, 3, 4, 7}) == "0,2-4,7"
    assert parse_cpu_list(" 1,3-5 ") == {1, 3, 4, 5}


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "1,,2", "1;2", "99999"])
def test_malformed_cpu_lists_are_refused(text: str) -> None:
    with pytest.raises(CpuListError):
        parse_cpu_list(text)


def test_the_split_gives_the_enclave_the_highest_cpus_and_leaves_the_rest_at_least_one() -> None:
    split = plan_split(2, frozenset({0, 1, 2, 3}))
    assert split == CpuSplit(enclave=frozenset({2, 3}), rest=frozenset({0, 1}))
    assert split.describe() == {"mode": "pinned", "enclave_cpus": "2-3", "other_cpus": "0-1", "onnxruntime_threads": 2}
    for impossible in (0, 4, 5):
        with pytest.raises(CpuSplitError):
            plan_split(impossible, frozenset({0, 1, 2, 3}))


def test_pinning_moves_every_thread_and_the_check_reads_it_back() -> None:
    original = frozenset(os.sched_getaffinity(0))
    if len(original) < 2:
        pytest.skip("needs two CPUs")
    split = plan_split(1, original)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()  # a thread that exists before the move must move too
    try:
        pin_process(os.getpid(), split.rest)
        assert process_cpus(os.getpid()) == split.rest
        assert check_split(split, {"bench": os.getpid()}) == {"bench": format_cpu_list(split.rest)}
        with pytest.raises(CpuSplitError, match="not the enclave's"):
            check_split(split, {"enclave-1": os.getpid()})
        pin_process(os.getpid(), split.enclave)
        with pytest.raises(CpuSplitError, match="outside the rest"):
            check_split(split, {"moto": os.getpid()})
    finally:
        stop.set()
        worker.join(5)
        pin_process(os.getpid(), original)
    assert process_cpus(os.getpid()) == original


def test_a_process_that_is_gone_is_skipped() -> None:
    assert process_cpus(2**22 + 12345) is None
    assert check_split(plan_split(1, frozenset({0, 1})), {"enclave-1": 2**22 + 12345}) == {}
