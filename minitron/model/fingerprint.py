"""A model's identity for cache keys: what makes two loaded models the same weights."""

from __future__ import annotations

import hashlib
from typing import Any

import torch


def model_fingerprint(model: Any) -> str:
    """A cheap content hash of a model: its config plus, per tensor, shape and fp64 sums.

    Any real change of weights changes it; hashing every byte of an 8B model would take minutes.
    """
    digest = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            t = tensor.detach().double()
            digest.update(
                f"{name}:{tuple(t.shape)}:{t.sum().item():.10e}:{t.abs().sum().item():.10e}".encode()
            )
    return digest.hexdigest()
