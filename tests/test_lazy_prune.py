"""Cutting a student straight from the teacher's safetensors files gives, weight for weight, the
model that pruning the loaded teacher gives, for every family, one file or sharded."""

import pytest
import torch

from minitron.errors import MinitronError
from minitron.model.lazy import _runs
from minitron.prune import prune, prune_from_checkpoint
from tests.test_prune import VARIANTS, importance_of
from tests.tiny import FAMILIES, tiny_batches, tiny_model


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def saved_teacher(request, tmp_path_factory):
    model = tiny_model(request.param)
    folders = {}
    for layout, shard in (("one-file", "10GB"), ("sharded", "20KB")):
        folder = tmp_path_factory.mktemp(f"{request.param}-{layout}")
        model.save_pretrained(folder, max_shard_size=shard)
        folders[layout] = folder
    assert (folders["sharded"] / "model.safetensors.index.json").is_file()
    return model, importance_of(model), folders


@pytest.mark.parametrize("layout", ["one-file", "sharded"])
@pytest.mark.parametrize("variant", ["combined", "hidden", "kv-groups", "depth", "identity"])
def test_slicing_from_disk_equals_pruning_in_memory(saved_teacher, variant, layout):
    model, importance, folders = saved_teacher
    arch = VARIANTS[variant]
    expected = prune(model, arch, importance)
    got = prune_from_checkpoint(folders[layout], arch, importance)
    assert got.config.to_dict() == expected.config.to_dict()
    want, have = expected.state_dict(), got.state_dict()
    assert list(have) == list(want)
    for key in want:
        assert have[key].dtype == want[key].dtype and torch.equal(have[key], want[key]), key
    if model.config.tie_word_embeddings:
        assert got.lm_head.weight.data_ptr() == got.model.embed_tokens.weight.data_ptr()
    ids = tiny_batches(2, 10, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(got(ids).logits, expected(ids).logits, rtol=0, atol=0)


def test_a_cut_in_another_dtype_and_a_mismatched_importance(saved_teacher):
    _, importance, folders = saved_teacher
    got = prune_from_checkpoint(folders["one-file"], VARIANTS["combined"], importance, dtype=torch.bfloat16)
    assert {p.dtype for p in got.parameters()} == {torch.bfloat16}
    other = importance_of(tiny_model("llama", num_hidden_layers=4), blocks=(1,))
    with pytest.raises(MinitronError, match="importance was estimated on L4-"):
        prune_from_checkpoint(folders["one-file"], VARIANTS["combined"], other)


def test_rows_are_read_as_contiguous_runs():
    assert _runs(torch.tensor([3, 4, 5, 9, 10, 0])) == [(3, 6), (9, 11), (0, 1)]
    assert _runs(torch.tensor([], dtype=torch.long)) == []
