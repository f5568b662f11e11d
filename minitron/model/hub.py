"""Whether a hub-id teacher can be loaded here, asked before a run writes anything.

A search of `meta-llama/Llama-3.1-8B` on a machine that has neither the weights in its hub cache nor
access to the (gated) repository would otherwise fail minutes in, after the run directory exists.
This asks the local cache first (no network), then the hub's auth-check endpoint (one small request,
bounded by a timeout, since cluster nodes without internet can hang on DNS rather than fail).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from minitron.errors import MinitronError

#: Seconds to wait for the hub before saying it cannot be reached.
HUB_TIMEOUT_S = 20.0


def cached_snapshot(repo_id: str) -> Path | None:
    """The hub cache's snapshot of `repo_id` if it holds a config and safetensors weights."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (the hub library raises several kinds here): ask the hub
        return None
    has_weights = any(folder.glob("*.safetensors"))
    return folder if (folder / "config.json").is_file() and has_weights else None


def _how_to_give(repo_id: str) -> str:
    return (
        f"give a local checkpoint with --teacher /path/to/checkpoint, or download it where the hub is "
        f"reachable (`hf download {repo_id}`) into this machine's hub cache"
    )


def check_hub_teacher(repo_id: str) -> None:
    """Raise one clear line when `repo_id` is neither in the hub cache nor downloadable from here."""
    if cached_snapshot(repo_id) is not None:
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        raise MinitronError(
            f"teacher {repo_id!r} is not in the hub cache and HF_HUB_OFFLINE is set; {_how_to_give(repo_id)}"
        )
    outcome: list[BaseException | None] = []

    def ask() -> None:
        from huggingface_hub import HfApi

        try:
            HfApi().auth_check(repo_id)
            outcome.append(None)
        except BaseException as err:  # handed to the caller's thread, which decides
            outcome.append(err)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(HUB_TIMEOUT_S)
    if not outcome:
        raise MinitronError(
            f"teacher {repo_id!r} is not in the hub cache and the Hugging Face Hub did not answer within "
            f"{HUB_TIMEOUT_S:g} s; {_how_to_give(repo_id)}"
        )
    error = outcome[0]
    if error is None:
        return
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(error, GatedRepoError):
        raise MinitronError(
            f"teacher {repo_id!r} is gated on the Hugging Face Hub and this machine has no access to it: "
            f"accept its license at https://huggingface.co/{repo_id} and log in (`hf auth login` or "
            f"HF_TOKEN), or give a local checkpoint with --teacher /path/to/checkpoint"
        )
    if isinstance(error, RepositoryNotFoundError):
        raise MinitronError(
            f"teacher {repo_id!r} is not a model on the Hugging Face Hub (or is private and this machine "
            "is not logged in); check the id, or give a local checkpoint with --teacher /path/to/checkpoint"
        )
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise MinitronError(
        f"teacher {repo_id!r} is not in the hub cache and the Hugging Face Hub cannot be reached "
        f"({first}); {_how_to_give(repo_id)}"
    )
