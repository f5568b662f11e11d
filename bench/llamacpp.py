"""The exported GGUF files in llama.cpp itself: each loads, generates, scores the test split as
PyTorch does, and is timed (prompt and generation tokens/s), for the teacher and a run's winners.

    pip install "llama-cpp-python==0.3.36"      # or: pip install -e ".[llamacpp]"; compiles llama.cpp
    python bench/llamacpp.py --run results/<name> [--quants f16,q8_0,q4_0] [--data wiki-en,code-py]
        [--windows 16] [--seq-len 256] [--new-tokens 64] [--threads 2] [--out FILE]

For each model (the embedded teacher, then every finished winner of the run, or `--checkpoint`
folders) and quantization: the file is written under `results/bench/llamacpp/` (the run's own files
are not touched), loaded (seconds), asked to continue a fixed prompt greedily (text and tokens/s
after the first token), timed on one `seq-len`-token prompt (median of 3 after a warm-up), and
scored on `windows` test windows of each corpus with every position's logits. PyTorch's fp32 loss
on the same windows and its own prompt latency stand beside it. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.eval.loss import validation_loss
from minitron.export import llamacpp
from minitron.export.gguf_file import export_gguf, parse_quants
from minitron.model.speed import measure_speed
from minitron.model.teacher import checkpoint_folder, load_teacher
from minitron.runtime import cpu_description

PROMPT = "The history of the city begins"


def models(args: argparse.Namespace) -> dict[str, Path]:
    """Name -> checkpoint folder: the teacher first."""
    teacher = checkpoint_folder("smollm2-135m")
    assert teacher is not None
    found = {"teacher": teacher}
    folders = [Path(c) for c in args.checkpoint]
    if args.run:
        folders += sorted(p.parent for p in Path(args.run).glob("winners/*/provenance.json"))
    for folder in folders:
        found[folder.name] = folder
    return found


def pytorch_side(folder: Path, windows: dict[str, torch.Tensor], seq_len: int) -> dict[str, object]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).eval()
    losses = {name: validation_loss(model, w, progress=False).loss for name, w in windows.items()}
    speed = measure_speed(model, seq_len=seq_len, batch_size=1, repeats=3)
    params = sum(p.numel() for p in model.parameters())
    return {"loss": losses, "prompt_tokens_per_s": 1000 * seq_len / speed.latency_ms, "params": params}


def llama_side(
    path: Path, windows: dict[str, torch.Tensor], args: argparse.Namespace, prompt: list[int], tokenizer
) -> dict[str, object]:
    start = time.perf_counter()
    runner = llamacpp.LlamaCpp(path, n_ctx=args.seq_len, threads=args.threads)
    load_seconds = time.perf_counter() - start
    with runner:
        generation = runner.greedy(prompt, args.new_tokens)
        ids = llamacpp.random_tokens(runner.n_vocab, args.seq_len)
        runner.forward_seconds(ids)
        prompt_ms = 1000 * statistics.median(runner.forward_seconds(ids) for _ in range(3))
    with llamacpp.LlamaCpp(path, n_ctx=args.seq_len, threads=args.threads, logits=True) as scorer:
        losses = {name: scorer.loss(w.numpy()) for name, w in windows.items()}
    return {
        "file_mib": path.stat().st_size / 2**20,
        "load_s": load_seconds,
        "text": tokenizer.decode(generation.tokens),
        "generated": len(generation.tokens),
        "generate_tokens_per_s": generation.tokens_per_s,
        "prompt_tokens_per_s": 1000 * args.seq_len / prompt_ms,
        "loss": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a run directory whose finished winners to include")
    parser.add_argument("--checkpoint", action="append", default=[], help="more checkpoint folders")
    parser.add_argument("--quants", default="f16,q8_0,q4_0")
    parser.add_argument("--data", default="wiki-en,code-py", help="corpora whose test splits score the files")
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench/llamacpp.json")
    args = parser.parse_args()
    llamacpp.require()
    quants = parse_quants(args.quants)
    torch.set_num_threads(args.threads)

    teacher = load_teacher("smollm2-135m", offline=True)
    tokenizer = teacher.tokenizer
    windows = {
        name: pack(
            tokenize_corpus(load_corpus(name, offline=True), tokenizer).test, args.seq_len, args.windows
        )
        for name in args.data.split(",")
    }
    prompt = tokenizer(PROMPT).input_ids
    files = Path(args.out).with_suffix("")
    rows = []
    for name, folder in models(args).items():
        torch_side = pytorch_side(folder, windows, args.seq_len)
        print(
            f"[llamacpp] {name}: {torch_side['params']:,} parameters, PyTorch loss {torch_side['loss']}",
            flush=True,
        )
        for quant in quants:
            (written,) = export_gguf(folder, [quant], out=files / name)
            row = {"model": name, "quant": quant, "pytorch": torch_side}
            row |= llama_side(written.path, windows, args, prompt, tokenizer)
            row["fallback_f16_matrices"] = len(written.fallback)
            rows.append(row)
            print(
                f"[llamacpp] {name} {quant}: {json.dumps({k: row[k] for k in ('loss', 'text')})}", flush=True
            )

    cpu = cpu_description()
    print(
        f"\nllama.cpp ({llamacpp.PACKAGE}, {args.threads} threads) on {cpu}; "
        f"{args.windows} × {args.seq_len}-token test windows"
    )
    names = list(windows)
    head = ["model", "quant", "MiB", "load s"] + [f"{n} llama.cpp (PyTorch fp32)" for n in names]
    head += ["prompt tok/s (PyTorch)", "generate tok/s"]
    print(" | ".join(head))
    for row in rows:
        torch_side = row["pytorch"]
        cells = [row["model"], row["quant"], f"{row['file_mib']:.0f}", f"{row['load_s']:.2f}"]
        cells += [f"{row['loss'][n]:.4f} ({torch_side['loss'][n]:.4f})" for n in names]
        cells += [f"{row['prompt_tokens_per_s']:,.0f} ({torch_side['prompt_tokens_per_s']:,.0f})"]
        cells += [f"{row['generate_tokens_per_s']:.1f}"]
        print(" | ".join(cells))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": cpu, "package": llamacpp.PACKAGE, "threads": args.threads, "windows": args.windows}
    meta |= {"seq_len": args.seq_len, "prompt": PROMPT, "new_tokens": args.new_tokens, "run": args.run}
    out.write_text(json.dumps({**meta, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
