"""Model surgery: cut an architecture out of a teacher, as a fresh Hugging Face model.

    prune(teacher_model, arch, importance) -> PreTrainedModel

The result is built from a new config (`build_config`) and loaded with sliced copies of the
teacher's weights; the teacher is never modified. Every tensor is sliced by the `Selection`:
embeddings and LM head (tied or untied) and every norm by hidden channel; q/k/v by kept heads (and
biases); o_proj by hidden channel × kept heads; gate/up/down by neuron × channel; dropped layers
are skipped and the rest renumbered.

Command line (the "I already know the shape I want" path):

    python -m minitron.prune --teacher smollm2-135m --out results/pruned-70m \\
        --arch num_hidden_layers=20,hidden_size=432,intermediate_size=1024,num_attention_heads=9
"""

from __future__ import annotations

import re
from typing import Any

import torch

from minitron.architecture import Architecture, build_config, check_model_type
from minitron.errors import MinitronError
from minitron.importance import Importance
from minitron.selection import Selection, select

_LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def _expand(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Row indices of whole heads: head h covers rows h*head_dim ... (h+1)*head_dim − 1."""
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def _take(tensor: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """`tensor` restricted to `index` along `dim`; the tensor itself when nothing is cut (no copy)."""
    if index.numel() == tensor.shape[dim] and bool((index == torch.arange(index.numel())).all()):
        return tensor
    return tensor.index_select(dim, index.to(tensor.device))


def slice_state_dict(
    state: dict[str, torch.Tensor], selection: Selection, head_dim: int
) -> dict[str, torch.Tensor]:
    """The teacher's tensors cut down to `selection`, keyed for the pruned model.

    Uncut tensors are returned as they are (so a depth-only view shares the teacher's memory);
    cut ones are fresh copies.
    """
    ch = selection.channels
    new_index = {old: new for new, old in enumerate(selection.layers)}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _LAYER_KEY.match(key)
        if match is None:
            if key in ("model.embed_tokens.weight", "lm_head.weight"):
                out[key] = _take(tensor, 1, ch)
            elif key == "model.norm.weight":
                out[key] = _take(tensor, 0, ch)
            else:
                raise MinitronError(f"cannot prune unexpected tensor {key}")
            continue
        old, name = int(match.group(1)), match.group(2)
        if old not in new_index:
            continue
        i = new_index[old]
        rows = {
            "q": _expand(selection.heads[i], head_dim),
            "kv": _expand(selection.kv_heads[i], head_dim),
            "mlp": selection.neurons[i],
        }
        # (index along dim 0, index along dim 1) for every tensor of a decoder layer
        cuts: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {
            "input_layernorm.weight": (ch, None),
            "post_attention_layernorm.weight": (ch, None),
            "self_attn.q_proj.weight": (rows["q"], ch),
            "self_attn.k_proj.weight": (rows["kv"], ch),
            "self_attn.v_proj.weight": (rows["kv"], ch),
            "self_attn.q_proj.bias": (rows["q"], None),
            "self_attn.k_proj.bias": (rows["kv"], None),
            "self_attn.v_proj.bias": (rows["kv"], None),
            "self_attn.o_proj.weight": (ch, rows["q"]),
            "self_attn.o_proj.bias": (ch, None),
            "mlp.gate_proj.weight": (rows["mlp"], ch),
            "mlp.up_proj.weight": (rows["mlp"], ch),
            "mlp.gate_proj.bias": (rows["mlp"], None),
            "mlp.up_proj.bias": (rows["mlp"], None),
            "mlp.down_proj.weight": (ch, rows["mlp"]),
            "mlp.down_proj.bias": (ch, None),
        }
        if name not in cuts:
            raise MinitronError(f"cannot prune unexpected tensor {key}")
        first, second = cuts[name]
        cut = _take(tensor, 0, first)
        out[f"model.layers.{i}.{name}"] = cut if second is None else _take(cut, 1, second)
    return out


def build_model(
    config: Any, state: dict[str, torch.Tensor], dtype: torch.dtype, device: torch.device, share: bool = False
) -> Any:
    """A fresh causal LM from `config`, loaded with `state` (copied, or shared when `share`).

    Weights are allocated uninitialized on the target device (random init would be wasted), so
    buffers such as RoPE frequencies are computed by the model's own constructor.
    """
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    with no_init_weights(), torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()  # skipped with the initialization, as in from_pretrained, which ties after it too
    model.load_state_dict(state, strict=True, assign=share)
    return model.eval()


def prune(teacher: Any, arch: Architecture, importance: Importance, depth: str = "block") -> Any:
    """A new model of the teacher's family with `arch`'s sizes and the most important units.

    `teacher` is a causal LM of a supported family (Llama incl. SmolLM2/Llama-3.x, Mistral, Qwen2);
    `importance` must have been estimated on it. `depth` picks the layers to drop (see
    `minitron.selection`). The teacher is only read.
    """
    check_model_type(teacher.config.model_type)
    teacher_arch = Architecture.from_mapping(teacher.config)
    if importance.architecture != teacher_arch:
        raise MinitronError(
            f"importance was estimated on {importance.architecture.short()}, "
            f"not on this teacher ({teacher_arch.short()})"
        )
    selection = select(importance, arch, depth)
    return prune_with(teacher, arch, selection)


def prune_with(teacher: Any, arch: Architecture, selection: Selection, share: bool = False) -> Any:
    """Cut `arch` out of `teacher` with an explicit selection (copies unless `share`)."""
    param = next(teacher.parameters())
    with torch.no_grad():
        state = slice_state_dict(teacher.state_dict(), selection, arch.head_dim)
        config = build_config(teacher.config, arch, layers=selection.layers)
        return build_model(config, state, param.dtype, param.device, share=share)


def parse_arch(text: str, teacher: Architecture) -> Architecture:
    """An architecture from `k=v,k=v` or a JSON file (e.g. one row of `search.py --dry-run --json`).

    `num_key_value_heads` and `head_dim` default to the teacher's; `params` and `name` are ignored.
    """
    import json
    from pathlib import Path

    from minitron.architecture import ARCH_FIELDS

    path = Path(text).expanduser()
    if path.suffix == ".json" or path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise MinitronError(f"cannot read architecture file {text}: {err}") from None
        if not isinstance(values, dict):
            raise MinitronError(f"architecture file {text} must hold one JSON object")
        values = {k: v for k, v in values.items() if k not in ("params", "name")}
    else:
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise MinitronError(f"--arch part {part!r} is not key=value")
            values[key.strip()] = value.strip()
    unknown = sorted(set(values) - set(ARCH_FIELDS))
    if unknown:
        expected = ", ".join(ARCH_FIELDS)
        raise MinitronError(f"--arch: unknown field(s) {', '.join(unknown)}; expected {expected}")
    fields = {**{k: getattr(teacher, k) for k in ("num_key_value_heads", "head_dim")}, **values}
    missing = [k for k in ARCH_FIELDS if k not in fields]
    if missing:
        raise MinitronError(f"--arch is missing {', '.join(missing)}")
    try:
        return Architecture(**{k: int(v) for k, v in fields.items()})
    except (TypeError, ValueError):
        raise MinitronError(f"--arch values must be integers, got {values}") from None


def main(argv: list[str] | None = None) -> int:
    import argparse

    from minitron.cli import run_command

    parser = argparse.ArgumentParser(
        prog="python -m minitron.prune",
        description="Cut one architecture out of a teacher by importance; save a Hugging Face checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--teacher", default="smollm2-135m", help="embedded name, checkpoint dir, .gguf or hub id"
    )
    parser.add_argument(
        "--arch",
        required=True,
        help="k=v list of num_hidden_layers, hidden_size, intermediate_size, num_attention_heads "
        "[, num_key_value_heads, head_dim], or a JSON file with those fields",
    )
    parser.add_argument(
        "--out", required=True, help="folder for the pruned checkpoint (must not exist or be empty)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--data", default="wiki-en", help="corpus for calibration and the zero-shot loss")
    parser.add_argument(
        "--depth",
        default="block",
        choices=["block", "layer_loss", "block_importance", "last"],
        help="how layers to drop are chosen",
    )
    parser.add_argument(
        "--calibration-samples", type=int, default=128, help="calibration sequences for importance"
    )
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per packed sequence")
    parser.add_argument(
        "--eval-sequences",
        default="64",
        help="validation sequences for the zero-shot loss, or 'all', or 0 to skip",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), debug=args.debug)


def _run(args: Any) -> None:
    import json
    import time
    from pathlib import Path

    from minitron.architecture import Family, count_params
    from minitron.assets import publish, staging_dir
    from minitron.calibrate import importance_for
    from minitron.corpus import load_corpus
    from minitron.importance import ImportanceConfig
    from minitron.selection import check_prunable
    from minitron.teacher import load_teacher
    from minitron.tokens import tokenize_corpus
    from minitron.validation import zero_shot_loss

    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise MinitronError(f"--out {out} already exists and is not empty; pass --overwrite to replace it")
    eval_n = None if args.eval_sequences == "all" else _int_option("--eval-sequences", args.eval_sequences)
    cfg = ImportanceConfig(num_samples=args.calibration_samples, seq_len=args.seq_len)

    start = time.perf_counter()
    teacher = load_teacher(args.teacher)
    teacher_arch = teacher.architecture
    arch = parse_arch(args.arch, teacher_arch)
    check_prunable(teacher_arch, arch)  # before minutes of calibration, not after
    family = Family.from_config(teacher.model.config)
    tokens = tokenize_corpus(load_corpus(args.data), teacher.tokenizer)
    drop = teacher_arch.num_hidden_layers - arch.num_hidden_layers
    blocks = [1] if args.depth == "layer_loss" else [drop] if args.depth == "block" and drop > 0 else []
    importance = importance_for(teacher.model, tokens, cfg, block_sizes=blocks, name=args.teacher)
    selection = select(importance, arch, args.depth)
    model = prune_with(teacher.model, arch, selection)
    params = count_params(family, arch)
    share = params / count_params(family, teacher_arch)
    print(
        f"pruned {teacher_arch.short()} -> {arch.short()}: {params:,} parameters ({share:.1%} of the teacher)"
    )
    print(f"kept teacher layers {list(selection.layers)}")
    loss = None
    if eval_n != 0:
        report = zero_shot_loss(model, tokens, args.seq_len, eval_n)
        loss = {"loss": report.loss, "perplexity": report.perplexity, "tokens": report.tokens}
        print(
            f"zero-shot validation loss {report.loss:.4f} nats/token (perplexity {report.perplexity:.2f}, "
            f"{report.tokens:,} tokens)"
        )
    record = {
        "teacher": args.teacher,
        "teacher_architecture": teacher_arch.as_dict(),
        "architecture": arch.as_dict(),
        "params": params,
        "depth_method": args.depth,
        "calibration": importance.meta.get("calibration"),
        "data": args.data,
        "selection": selection.summary(),
        "zero_shot_validation": loss,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    with staging_dir(out) as tmp:
        model.save_pretrained(tmp)
        teacher.tokenizer.save_pretrained(tmp)
        (tmp / "pruning.json").write_text(json.dumps(record, indent=2))
        publish(tmp, out)  # with --overwrite, the old folder goes only once the new one is complete
    print(f"saved to {out}")


def _int_option(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise MinitronError(f"{name} must be an integer or 'all', got {value!r}") from None
    if number < 0:
        raise MinitronError(f"{name} must not be negative")
    return number


if __name__ == "__main__":
    raise SystemExit(main())
