"""Hugging Face model cards for the models we write: where a model came from, how it was made,
how it scores, and under which license (the teacher's: a pruned model is a derivative of it).

`model_card(...)` renders the card (`README.md` with the Hub's YAML metadata: `base_model`,
`library_name`, `license`, `datasets`, `tags`); `teacher_origin(spec)` finds the hub id and license
of a teacher where they can be known without the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from minitron.model.teacher import EMBEDDED_TEACHERS


@dataclass(frozen=True)
class Origin:
    """Where a teacher came from, as far as it can be known offline."""

    base_model: str | None
    """Its hub id, when it has one."""
    license: str | None
    """Its license identifier (`apache-2.0`, `llama3.1`, ...), when its card or our records say."""


def _front_matter(readme: Path) -> dict[str, Any]:
    """The YAML metadata block at the top of a model card, or {}."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    block = text[3:].split("\n---", 1)[0]
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def teacher_origin(spec: str) -> Origin:
    """The hub id and license of a teacher spec (embedded name, checkpoint folder, .gguf, hub id)."""
    if spec in EMBEDDED_TEACHERS:
        return Origin(EMBEDDED_TEACHERS[spec].hub_id, EMBEDDED_TEACHERS[spec].license)
    path = Path(spec).expanduser()
    if path.is_dir():
        meta = _front_matter(path / "README.md")
        return Origin(None, _license(meta))
    if path.exists() or spec.count("/") != 1:
        return Origin(None, None)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec, "README.md")
    meta = _front_matter(Path(cached)) if isinstance(cached, str) else {}
    return Origin(spec, _license(meta))


def _license(meta: dict[str, Any]) -> str | None:
    value = meta.get("license")
    return str(value) if value else None


def model_card(
    *,
    title: str,
    origin: Origin,
    teacher: str,
    datasets: list[str],
    made: list[str],
    results: str,
    tags: list[str],
) -> str:
    """The card: YAML metadata, then what the model is, how it was made and how it scores."""
    meta: dict[str, Any] = {}
    if origin.base_model:
        meta["base_model"] = origin.base_model
    meta["library_name"] = "transformers"
    meta["license"] = origin.license or "other"
    meta["pipeline_tag"] = "text-generation"
    meta["datasets"] = datasets
    meta["tags"] = tags
    license_note = (
        f"Inherited from the teacher: {origin.license}."
        if origin.license
        else "Inherited from the teacher, whose license could not be read here: check it before use."
    )
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {title}",
        "",
        f"A smaller model cut out of `{teacher}` by structured pruning and retrained by knowledge "
        "distillation from it, with minitron-search (NVIDIA's Minitron recipe).",
        "",
        "## How it was made",
        "",
        *(f"- {item}" for item in made),
        "",
        "## Benchmarks",
        "",
        results.strip() or "Not benchmarked in this run.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        "```",
        "",
        "## License",
        "",
        license_note,
        "",
    ]
    return "\n".join(lines)
