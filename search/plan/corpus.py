"""What a run needs of its corpus, checked before its run directory is written.

Why: a corpus too small for the calibration, validation, test and training sets a run draws from
it must cost seconds and leave nothing behind, not fail an hour into a search.
"""

from __future__ import annotations

from minitron.data.tokens import TokenizedCorpus
from minitron.errors import MinitronError
from search.plan.settings import SearchSettings


def check_corpus(tokens: TokenizedCorpus, settings: SearchSettings) -> None:
    """Refuse a corpus too small for the calibration, validation, test and training sets it must provide."""
    seq = settings.seq_len
    calibration = settings.importance
    needs = {
        "calibration": (max(calibration.num_samples, calibration.depth_samples), "--calibration-samples"),
        "validation": (settings.plan.validation_sequences, "--eval-sequences"),
        "train": (settings.tokens.target_sequences, "--probe-tokens or --retrain-tokens"),
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
