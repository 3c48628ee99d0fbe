"""What a tenant sees while `ccc submit --wait` polls (issue 15 §3)."""

from __future__ import annotations

import io

from ccc.client.progress import JobStatusBoard

JOB = "65f1a2b3" + "0" * 24


def _board(enabled: bool = True) -> tuple[JobStatusBoard, io.StringIO]:
    stream = io.StringIO()
    ticks = iter(float(t) for t in range(100))
    return JobStatusBoard(stream=stream, enabled=enabled, clock=lambda: next(ticks)), stream


def test_each_change_of_status_is_one_line_and_repeats_are_quiet() -> None:
    board, stream = _board()
    board.track(JOB, "chelsea-1cat.jpg")
    for status in ("submitted", "queued", "queued", "queued", "running", "done"):
        board.update(JOB, status)
    lines = stream.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "submitted",
        "submitted -> queued",
        "queued -> running",
        "running -> done",
    ]
    assert all("chelsea-1cat.jpg (65f1a2b3)" in line for line in lines)
    assert board.waiting() == 0


def test_nothing_is_printed_off_a_terminal() -> None:
    board, stream = _board(enabled=False)
    board.track(JOB, "cat.jpg")
    board.update(JOB, "queued")
    assert stream.getvalue() == "" and board.waiting() == 1


def test_server_statuses_and_file_names_cannot_write_escape_sequences() -> None:
    board, stream = _board()
    board.track(JOB, "evil\x1b[2Jname.jpg")
    board.update(JOB, "done\x1b[1A\r0 cats (verified)")
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.rstrip().endswith(": ?")
