"""Atomic writes: a crash or a full disk never leaves a truncated file that looks complete."""

from __future__ import annotations

import errno

import pytest

from minitron.atomic import disk_full_message, write_json, write_text


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    monkeypatch.setenv("MINITRON_FULL_DISK", "summary.json")
    with pytest.raises(OSError) as caught:
        write_json(target, {"big": "x" * 100_000})
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == [], "neither the target nor a temporary file is left"
    message = disk_full_message(caught.value)
    assert message is not None and str(target) in message and "--resume" in message


def test_failed_rewrite_keeps_the_previous_version(tmp_path, monkeypatch):
    target = tmp_path / "trials.jsonl"
    write_text(target, "old\n")
    monkeypatch.setenv("MINITRON_FULL_DISK", "trials.jsonl")
    with pytest.raises(OSError):
        write_text(target, "new\n" * 1000)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["trials.jsonl"]


def test_other_os_errors_are_not_disk_full():
    assert disk_full_message(OSError(errno.EACCES, "Permission denied", "/x")) is None
