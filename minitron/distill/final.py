"""What a finished retraining leaves: the model files and `provenance.json`.

`save_final` writes the Hugging Face files one by one (each atomically) and `provenance.json` last,
so a folder with `provenance.json` is a complete job.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from minitron import codec
from minitron.atomic import staging_dir
from minitron.distill.continuation import ORIGIN
from minitron.distill.provenance import Provenance


def versions() -> dict[str, str]:
    import transformers

    import minitron

    return {
        "minitron": minitron.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def save_final(out: Path, student: Any, tokenizer: Any, record: Provenance) -> None:
    """Write the model files one by one (each atomically), `provenance.json` last; drop the checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    with staging_dir(out / "final") as tmp:
        student.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for file in sorted(tmp.iterdir()):
            os.replace(file, out / file.name)
        (tmp / "provenance.json").write_text(codec.dumps(record, indent=2))
        os.replace(tmp / "provenance.json", out / "provenance.json")
    checkpoint = out / "checkpoint"
    if checkpoint.exists():
        shutil.rmtree(checkpoint)
    (out / ORIGIN).unlink(missing_ok=True)  # now in provenance.json
