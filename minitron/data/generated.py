"""The teacher's own text: samples drawn from it at temperature 1, cached per teacher and settings.

Why: the student is asked to copy the teacher's distribution, and the one text that comes from
exactly that distribution is the teacher's own (data-free KD, as in LLM-QAT). Half the samples
continue a short opening (what the teacher writes as a language model), half answer an instruction
through its chat template (what an instruction-tuned teacher is used for). Each document is the
prompt followed by the sample, so the student also learns the chat template's frame.

Drawing them costs teacher forward passes once per teacher and setting (`GenerationConfig`); the
documents are cached under `$MINITRON_CACHE/generated/<key>/` like the tokenized corpora, with what
drawing them cost in `meta.json`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from minitron.atomic import staging_dir
from minitron.data.assets import cache_dir
from minitron.data.corpus import Corpus
from minitron.errors import MinitronError

#: The name of the teacher's samples in `--data` (`teacher-samples=0.25`).
TEACHER_SAMPLES = "teacher-samples"
_FORMAT = 1  # bump when the prompts or the way a document is assembled change

_OPENINGS = (
    "Once upon a time",
    "The history of",
    "In mathematics,",
    "Dear friend,",
    "Yesterday I",
    "The recipe calls for",
    "Scientists have found that",
    "import numpy as np\n",
    "def main():\n",
    "Q: What is",
    "Chapter 1\n\n",
    "The best way to learn",
    "In 1850,",
    "My favorite place",
    "Here are three reasons why",
    "The city council met on",
    "To install the package,",
    "She opened the door and",
    "The weather today",
    "A healthy diet",
    "The following is a conversation between",
    "Abstract:",
    "Step 1:",
    "Breaking news:",
)
_INSTRUCTIONS = (
    "Write a short story about {}.",
    "Explain {} to a ten-year-old.",
    "What are the pros and cons of {}?",
    "Give me three facts about {}.",
    "Write a poem about {}.",
    "Summarize the history of {} in a paragraph.",
    "Write a Python function related to {}, with a docstring.",
    "How do I get started with {}?",
    "Write an email to a colleague about {}.",
    "What is the most common misconception about {}?",
)
_TOPICS = (
    "the ocean", "a lighthouse keeper", "photosynthesis", "the Roman Empire", "prime numbers",
    "learning a language", "gardening", "black holes", "a rainy day", "friendship", "electric cars",
    "the French Revolution", "sorting algorithms", "coffee", "volcanoes", "chess", "the human heart",
    "a lost dog", "saving money", "the moon landing", "machine learning", "bread baking",
    "climate change", "a job interview", "the piano", "honeybees", "democracy", "a train journey",
    "recycling", "the immune system", "a haunted house", "spreadsheets", "mountain climbing",
    "the printing press", "sleep", "a birthday party", "earthquakes", "poetry", "the internet",
    "a small village",
)  # fmt: skip


@dataclass(frozen=True)
class GenerationConfig:
    """How many samples to draw from the teacher, and how."""

    documents: int = 256
    """Samples drawn; half continue an opening, half answer an instruction through the chat
    template (all continue openings when the tokenizer has no chat template)."""
    max_new_tokens: int = 192
    """Tokens per sample at most (a sample ends earlier at the teacher's EOS)."""
    temperature: float = 1.0
    """Sampling temperature (1: the teacher's own distribution; no top-k or top-p cut)."""
    seed: int = 0
    """Seed of the prompt choice and of the sampling."""
    batch_size: int = 64
    """Samples drawn together."""


def prompts(tokenizer: Any, cfg: GenerationConfig) -> list[str]:
    """The prompt of every sample, in order: openings and chat instructions alternate."""
    rng = random.Random(cfg.seed)
    chat = bool(getattr(tokenizer, "chat_template", None))
    out = []
    for i in range(cfg.documents):
        if chat and i % 2:
            message = rng.choice(_INSTRUCTIONS).format(rng.choice(_TOPICS))
            out.append(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
                )
            )
        else:
            out.append(rng.choice(_OPENINGS))
    return out


def teacher_identity(spec: str) -> str:
    """The teacher's name in the samples' cache key: a local path made absolute, else the spec."""
    from pathlib import Path

    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def generation_key(teacher_id: str, tokenizer_id: str, cfg: GenerationConfig) -> str:
    identity = {"format": _FORMAT, "teacher": teacher_id, "tokenizer": tokenizer_id, **asdict(cfg)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def teacher_samples(
    teacher_id: str,
    tokenizer: Any,
    cfg: GenerationConfig,
    model: Callable[[], Any] | None,
    tokenizer_id: str,
) -> Corpus:
    """The teacher's samples as a corpus: read from the cache, or drawn with `model()` (the teacher,
    loaded only when the cache lacks them) and cached. Without `model` a missing cache is an error."""
    key = generation_key(teacher_id, tokenizer_id, cfg)
    folder = cache_dir() / "generated" / key
    path = folder / "documents.jsonl"
    if not path.exists():
        if model is None:
            raise MinitronError(
                f"the teacher's samples for {teacher_id} are not in the cache ({folder}); "
                "a run that loads the teacher draws them"
            )
        print(f"drawing {cfg.documents} samples from the teacher (once; cached in {folder}) ...", flush=True)
        documents, meta = _draw(model(), tokenizer, cfg)
        print(
            f"drew {meta['new_tokens']:,} tokens in {meta['seconds']:.0f} s "
            f"on {meta['device']} ({meta['dtype']})",
            flush=True,
        )
        with staging_dir(folder) as tmp:
            (tmp / "documents.jsonl").write_text(
                "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in documents),
                encoding="utf-8",
            )
            (tmp / "meta.json").write_text(
                json.dumps({"teacher": teacher_id, **meta, **asdict(cfg)}, indent=2)
            )
            if not path.exists():
                tmp.replace(folder)
    raw = path.read_bytes()
    documents = [json.loads(line)["text"] for line in raw.decode("utf-8").splitlines() if line]
    return Corpus(TEACHER_SAMPLES, tuple(d for d in documents if d.strip()), hashlib.sha256(raw).hexdigest())


def _draw(model: Any, tokenizer: Any, cfg: GenerationConfig) -> tuple[list[str], dict[str, Any]]:
    """Sample every prompt's continuation in batches (left-padded), each batch under its own seed."""
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteria, StoppingCriteriaList

    from minitron.progress import Progress
    from minitron.runtime import show_progress, use_bf16

    class Counter(StoppingCriteria):
        """Counts decoding steps into a progress line; stops nothing (every row stays unfinished)."""

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            steps.update(1)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    first = next(model.parameters())
    device = first.device
    if device.type == "cpu" and first.dtype == torch.float32 and use_bf16(device, None):
        # native bf16 on this CPU: a bf16 copy samples about 1.5x faster than the fp32 weights
        model = copy.deepcopy(model).to(torch.bfloat16)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    texts = prompts(tokenizer, cfg)
    documents, new_tokens, start = [], 0, time.perf_counter()
    batches = range(0, len(texts), cfg.batch_size)
    try:
        bar = tqdm(total=len(texts), desc="teacher samples", unit="doc", disable=not show_progress())
        # in a log, a line per interval counted in decoding steps: a batch of 64 takes minutes on a CPU
        steps = Progress("teacher samples", len(batches) * cfg.max_new_tokens, draw=False)
        for b, first in enumerate(batches):
            batch = texts[first : first + cfg.batch_size]
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
                torch.manual_seed(cfg.seed * 100_003 + b)
                out = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=cfg.temperature,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=cfg.max_new_tokens,
                    pad_token_id=pad,
                    eos_token_id=eos,
                    stopping_criteria=StoppingCriteriaList([Counter()]),
                )
            drawn = 0
            for prompt, row in zip(batch, out[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
                ids = row[: row.index(eos)] if eos in row else row
                drawn += len(ids)
                documents.append(prompt + tokenizer.decode(ids, skip_special_tokens=False))
            new_tokens += drawn
            bar.update(len(batch))
            steps.update(max((b + 1) * cfg.max_new_tokens - steps.n, 0), tokens=drawn)  # ended early
        bar.close()
        steps.close()
    finally:
        tokenizer.padding_side = side
    seconds = time.perf_counter() - start
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    return documents, {
        "seconds": round(seconds, 1),
        "new_tokens": new_tokens,
        "device": str(device),
        "dtype": dtype,
    }
