"""Checks of a run's input that happen before its run directory is written.

Why: a bad name, folder, corpus or resource request must cost seconds and leave nothing behind, not
fail an hour into a search or write outside the folder the user chose.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

from minitron.atomic import write_json
from minitron.budget import format_count
from minitron.commands.common import check_folder_path
from minitron.data.tokens import TokenizedCorpus
from minitron.errors import MinitronError
from search.rundir import RunDir
from search.settings import SearchSettings


def default_name(low: int, budget: int) -> str:
    """Date, time and budget (`20261129-150102-70M`, or `...-50M-110M` for a range)."""
    span = format_count(budget) if low == budget else f"{format_count(low)}-{format_count(budget)}"
    return f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}-{span}"


def check_name(name: str) -> str:
    """A run name is one path component: the run directory always lands inside `--out`."""
    separators = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    if not name.strip() or name in (".", "..") or any(s in name for s in separators) or "\0" in name:
        raise MinitronError(
            f"--name {name!r} must be a plain folder name (no '/', not '.' or '..'); "
            "use --out to choose where run directories go"
        )
    return name


def check_out(out: str) -> None:
    """`--out` must be a folder, or a path where one can be made."""
    check_folder_path(Path(out).expanduser(), "--out")


def check_run_dir(run: RunDir, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written, a new run whose directory already holds something."""
    if not resume and not overwrite and run.root.exists() and any(run.root.iterdir()):
        raise MinitronError(
            f"{run.root} already holds a run; pass --resume {run.root} to continue it, --overwrite to "
            "start over, or choose another --name"
        )


def check_corpus(tokens: TokenizedCorpus, settings: SearchSettings) -> None:
    """Refuse a corpus too small for the calibration, validation, test and training sets it must provide."""
    seq = settings.seq_len
    calibration = settings.importance
    needs = {
        "calibration": (max(calibration.num_samples, calibration.depth_samples), "--calibration-samples"),
        "validation": (settings.plan.validation_sequences, "--eval-sequences"),
        "train": (settings.target_sequences, "--probe-tokens or --retrain-tokens"),
        "test": (settings.retrain.test_sequences, ""),
    }
    for split, (sequences, option) in needs.items():
        found = tokens.split(split).size
        if found < sequences * seq:
            raise MinitronError(
                f"corpus {settings.data!r} is too small: its {split} split needs {sequences * seq:,} "
                f"tokens ({sequences} sequences of {seq}) and holds {found:,}; give a larger --data"
                + (f" or a smaller {option}" if option else "")
            )


def create_run_dir(run: RunDir, config: dict[str, object], overwrite: bool) -> None:
    """Create the run directory with its `config.json` (replacing an old run with `overwrite`)."""
    check_run_dir(run, resume=False, overwrite=overwrite)
    if run.root.exists():
        shutil.rmtree(run.root)
    created = [p for p in (run.root, *run.root.parents) if not p.exists()]
    run.root.mkdir(parents=True, exist_ok=True)
    try:
        write_json(run.config, config)
    except BaseException:  # e.g. a full disk: leave no empty run directory behind
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
