"""Shared fixtures. Tests never touch the network: the real teacher and corpus come from the cache
that `make test` fills first (`python -m minitron fetch`); if it is empty those tests fail saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: The files that take longest (`--durations` on a 2-core Intel Xeon: the reference and kill/resume
#: searches, the range search, the sharded retraining, the trial faults and ASHA), collected first:
#: `make test` hands whole files to two workers in collection order, and a long file started last
#: would leave one worker idle while the other runs it.
LONGEST_FIRST = (
    "test_search_cli.py",
    "test_range_search.py",
    "test_sharded_retrain.py",
    "test_search_trials.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [name for name in LONGEST_FIRST if not (ROOT / "tests" / name).is_file()]
    assert not missing, f"LONGEST_FIRST names test files that do not exist: {missing}"
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run `python search.py ARGS` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "search.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="session")
def teacher():
    """The real embedded teacher, loaded from the cache (fp32, CPU)."""
    from minitron.model.teacher import load_teacher

    return load_teacher("smollm2-135m", offline=True)


@pytest.fixture(scope="session")
def wiki_tokens(teacher):
    """The embedded corpus tokenized with the teacher's tokenizer (cached)."""
    from minitron.data.corpus import load_corpus
    from minitron.data.tokens import tokenize_corpus

    return tokenize_corpus(load_corpus("wiki-en", offline=True), teacher.tokenizer)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, teacher, wiki_tokens):
    """A tiny 2-layer teacher checkpoint with SmolLM2's tokenizer, and an environment whose private
    cache reuses the real corpus, its tokenization and the benchmark data (so command-line tests run
    offline and fast)."""
    from minitron.data.assets import cache_dir
    from tests.tiny import tiny_model

    root = tmp_path_factory.mktemp("tiny-world")
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=2)
    model.save_pretrained(root / "teacher")
    teacher.tokenizer.save_pretrained(root / "teacher")
    cache = root / "cache"
    cache.mkdir()
    for name in ("assets", "tokens", "benchmarks"):
        (cache / name).symlink_to(cache_dir() / name)
    return root, {**os.environ, "MINITRON_CACHE": str(cache)}


@pytest.fixture(scope="session")
def tiny_space(tiny_world):
    """A space for the tiny 2-layer teacher: 24 feasible candidates at 3.55M."""
    root, env = tiny_world
    config = json.loads((root / "teacher" / "config.json").read_text())
    space = {
        "name": "tiny",
        "teacher": {
            "name": str(root / "teacher"),
            "model_type": "llama",
            "vocab_size": config["vocab_size"],
            "tie_word_embeddings": False,
            "num_hidden_layers": 2,
            "hidden_size": 48,
            "intermediate_size": 40,
            "num_attention_heads": 6,
            "num_key_value_heads": 2,
            "head_dim": 8,
        },
        "choices": {
            "num_hidden_layers": [1, 2],
            "hidden_size": [36, 48],
            "intermediate_size": [16, 24, 40],
            "num_attention_heads": [2, 4, 6],
            "num_key_value_heads": [1, 2],
        },
        "band": 0.05,
        "top_k": 2,
    }
    path = root / "tiny-space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path, env


@dataclass
class Ran:
    """What a command run in this process returned and printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def in_process(monkeypatch, capsys):
    """Run a command's own `main(argv)` in this process, in a given environment and folder.

    The commands' bad-input paths are tested this way: a fresh Python per case would spend most of
    the time importing torch. A few tests still run `search.py` and `python -m minitron` as
    processes, so the scripts themselves are covered too."""

    def run(main: Callable[[list[str]], int], *args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Ran:  # fmt: skip
        if env is not None:
            for key in set(os.environ) - set(env):
                monkeypatch.delenv(key)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m MODULE ARGS` from the project root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
