"""Model surgery on tiny models of every supported family."""

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from minitron.commands.prune import parse_arch
from minitron.errors import MinitronError
from minitron.importance.depth import estimate_depth
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import block_starts, choose_layers, select, top_sorted
from minitron.importance.width import estimate_width_importance
from minitron.model.architecture import Architecture, Family, count_params
from minitron.prune import prune
from tests.tiny import FAMILIES, tiny_batches, tiny_model

TEACHER = Architecture(5, 48, 40, 6, 2, 8)
VARIANTS = {
    "identity": TEACHER,
    "depth": Architecture(3, 48, 40, 6, 2, 8),
    "hidden": Architecture(5, 36, 40, 6, 2, 8),
    "mlp": Architecture(5, 48, 24, 6, 2, 8),
    "heads-in-groups": Architecture(5, 48, 40, 4, 2, 8),
    "kv-groups": Architecture(5, 48, 40, 3, 1, 8),
    "combined": Architecture(3, 24, 16, 2, 1, 8),
}


def importance_of(model, blocks=(1, 2)):
    cfg = ImportanceConfig(num_samples=8, seq_len=16, batch_size=4, depth_samples=4)
    sequences = tiny_batches()
    importance = estimate_width_importance(model, sequences, cfg, progress=False)
    estimate_depth(model, sequences[:4], importance, blocks, progress=False)
    return importance


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_model(request):
    model = tiny_model(request.param)
    return request.param, model, importance_of(model)


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def test_identity_prune_reproduces_the_teacher_exactly(family_model):
    _, model, importance = family_model
    ids = tiny_batches(3, 12, seed=5)
    pruned = prune(model, TEACHER, importance)
    assert pruned is not model
    torch.testing.assert_close(logits(pruned, ids), logits(model, ids), rtol=0, atol=0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_axis_builds_counts_and_round_trips(family_model, variant, tmp_path):
    _, model, importance = family_model
    arch = VARIANTS[variant]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = prune(model, arch, importance)
    assert type(pruned) is type(model) and Architecture.from_mapping(pruned.config) == arch
    assert sum(p.numel() for p in pruned.parameters()) == count_params(Family.from_config(model.config), arch)
    assert pruned.config.tie_word_embeddings == model.config.tie_word_embeddings
    if model.config.tie_word_embeddings:
        assert pruned.lm_head.weight.data_ptr() == pruned.model.embed_tokens.weight.data_ptr()
    ids = tiny_batches(2, 10, seed=7)
    expected = logits(pruned, ids)
    pruned.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    torch.testing.assert_close(logits(reloaded, ids), expected, rtol=0, atol=0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the teacher was modified"


def masked_teacher_logits(model, ids, selection, teacher):
    """The teacher with dropped heads/neurons zeroed and dropped layers skipped, through hooks."""
    handles = []
    for layer_index, layer in enumerate(model.model.layers):
        if layer_index not in selection.layers:
            handles.append(
                layer.register_forward_hook(
                    lambda m, a, kw, out: a[0] if a else kw["hidden_states"], with_kwargs=True
                )
            )
            continue
        i = selection.layers.index(layer_index)
        head_mask = torch.zeros(teacher.num_attention_heads)
        head_mask[selection.heads[i]] = 1
        neuron_mask = torch.zeros(teacher.intermediate_size)
        neuron_mask[selection.neurons[i]] = 1

        def mask_heads(m, args, head_mask=head_mask):
            x = args[0]
            return (x.reshape(*x.shape[:-1], -1, teacher.head_dim) * head_mask[:, None]).reshape(x.shape)

        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(mask_heads))
        handles.append(
            layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, mask=neuron_mask: a[0] * mask)
        )
    try:
        return logits(model, ids)
    finally:
        for handle in handles:
            handle.remove()


def assert_same_function(pruned, model, ids, selection):
    """The pruned model and the masked teacher are two different computations of the same function:
    smaller matmuls against zeroed rows sum in another order, so float32 results differ in the last
    bits, and by how much depends on the CPU (AVX2 and AVX-512 kernels differ). In float64 the
    reordering error is ~1e-15 of the logits' size (~10 here), so 1e-9 is far above it, and far
    below what a wrong slice gives (differences of order 1)."""
    torch.testing.assert_close(
        logits(pruned.double(), ids),
        masked_teacher_logits(copy.deepcopy(model).double(), ids, selection, TEACHER),
        rtol=1e-9,
        atol=1e-9,
    )


@pytest.mark.parametrize("variant", ["depth", "mlp", "heads-in-groups", "identity"])
def test_pruning_equals_zeroing_the_dropped_units(family_model, variant):
    """Dropping heads, neurons or layers is exactly zeroing their outputs (an independent reference)."""
    _, model, importance = family_model
    arch = VARIANTS[variant]
    selection = select(importance, arch)
    assert_same_function(prune(model, arch, importance), model, tiny_batches(2, 10, seed=9), selection)


def test_dropping_kv_groups_equals_zeroing_their_query_heads():
    model = tiny_model("qwen2")
    importance = importance_of(model)
    arch = VARIANTS["kv-groups"]
    selection = select(importance, arch)
    assert all(len(k) == 1 for k in selection.kv_heads)
    assert_same_function(prune(model, arch, importance), model, tiny_batches(2, 10, seed=3), selection)


def test_gqa_invariants_and_sliced_tensors():
    model = tiny_model("qwen2")
    importance = importance_of(model)
    arch = VARIANTS["combined"]  # 2 query heads on 1 KV head, from 6 on 2
    selection = select(importance, arch)
    pruned = prune(model, arch, importance)
    d = TEACHER.head_dim
    for i, layer in enumerate(selection.layers):
        groups, heads = selection.kv_heads[i], selection.heads[i]
        assert len(heads) % len(groups) == 0 and len(heads) == arch.num_attention_heads
        assert sorted({int(h) // TEACHER.heads_per_group for h in heads}) == groups.tolist()
        rows = (groups[:, None] * d + torch.arange(d)).reshape(-1)
        q_rows = (heads[:, None] * d + torch.arange(d)).reshape(-1)
        src, dst = model.model.layers[layer].self_attn, pruned.model.layers[i].self_attn
        ch = selection.channels
        assert torch.equal(dst.k_proj.weight, src.k_proj.weight[rows][:, ch])
        assert torch.equal(dst.v_proj.bias, src.v_proj.bias[rows])
        assert torch.equal(dst.q_proj.bias, src.q_proj.bias[q_rows])
        assert torch.equal(dst.o_proj.weight, src.o_proj.weight[ch][:, q_rows])
        assert dst.o_proj.bias is None and src.o_proj.bias is None  # Qwen2: no o_proj bias
    assert torch.equal(
        pruned.model.embed_tokens.weight, model.model.embed_tokens.weight[:, selection.channels]
    )
    assert torch.equal(pruned.model.norm.weight, model.model.norm.weight[selection.channels])


def test_kept_units_are_the_top_scoring_in_original_order():
    scores = torch.tensor([0.5, 3.0, 1.0, 3.0, 0.1])
    assert top_sorted(scores, 3).tolist() == [1, 2, 3]
    assert top_sorted(scores, 2).tolist() == [1, 3]
    model = tiny_model()
    importance = importance_of(model)
    selection = select(importance, VARIANTS["mlp"])
    for i, layer in enumerate(selection.layers):
        kept = selection.neurons[i]
        assert kept.tolist() == sorted(kept.tolist())
        dropped = torch.ones(40, dtype=torch.bool)
        dropped[kept] = False
        assert importance.neurons[layer][kept].min() >= importance.neurons[layer][dropped].max()


def test_depth_methods():
    model = tiny_model()
    importance = importance_of(model, blocks=(1, 2, 3))
    importance.layer_loss = torch.tensor([5.0, 0.1, 3.0, 0.2, 4.0])
    importance.block_loss[2] = torch.tensor([9.0, 2.0, 1.0, 7.0])
    importance.block_importance = torch.tensor([0.9, 0.5, 0.1, 0.3, 0.8])
    assert choose_layers(importance, 3, "block") == (0, 1, 4)  # contiguous block 2-3 costs least
    assert choose_layers(importance, 3, "layer_loss") == (0, 2, 4)  # individually least important: 1, 3
    assert choose_layers(importance, 3, "block_importance") == (0, 1, 4)
    assert choose_layers(importance, 3, "last") == (0, 1, 2)
    assert choose_layers(importance, 4, "block") == (0, 2, 3, 4)  # k = 1 uses the per-layer losses
    assert choose_layers(importance, 5, "block") == (0, 1, 2, 3, 4)
    with pytest.raises(MinitronError, match="no contiguous-block losses for dropping 4 layers"):
        choose_layers(importance, 1, "block")
    with pytest.raises(MinitronError, match="depth method 'best' is unknown"):
        choose_layers(importance, 3, "best")


def test_block_rank_drops_the_next_measured_blocks():
    model = tiny_model()
    importance = importance_of(model, blocks=(1, 2, 3))
    importance.block_loss[2] = torch.tensor([9.0, float("nan"), 1.0, 7.0])  # start 1 not measured
    assert block_starts(importance, 2) == [2, 3, 0]
    assert choose_layers(importance, 3, "block", block=0) == choose_layers(importance, 3, "block")
    assert choose_layers(importance, 3, "block", block=1) == (0, 1, 2)  # block 3-4
    assert choose_layers(importance, 3, "block", block=2) == (2, 3, 4)  # block 0-1
    with pytest.raises(MinitronError, match="only 3 contiguous blocks of 2 layers have a measured"):
        choose_layers(importance, 3, "block", block=3)
    with pytest.raises(MinitronError, match="needs the depth method 'block'"):
        choose_layers(importance, 3, "layer_loss", block=1)
    importance.block_loss[2] = torch.full((4,), float("nan"))
    with pytest.raises(MinitronError, match="every block-removal loss is NaN or infinite"):
        block_starts(importance, 2)
    importance.block_loss[2] = torch.tensor([9.0, float("nan"), 1.0, 7.0])
    arch = Architecture(3, 48, 40, 6, 2, 8)
    assert select(importance, arch, block=1).layers == (0, 1, 2)
    student = prune(model, arch, importance, block=1)
    assert student.config.num_hidden_layers == 3
    # the same block as a searched candidate: the architecture carries it, the config does not
    searched = Architecture(3, 48, 40, 6, 2, 8, layer_block=1)
    assert select(importance, searched).layers == (0, 1, 2)
    assert prune(model, searched, importance).config.to_dict() == student.config.to_dict()
    assert "layer_block" not in student.config.to_dict()


def test_layer_block_labels_keys_and_feasibility():
    teacher = Architecture(5, 48, 40, 6, 2, 8)
    arch = Architecture(3, 48, 40, 6, 2, 8, layer_block=2)
    assert arch.short() == "L3-h48-m40-q6kv2-d8-b2"
    assert Architecture.parse(arch.short()) == arch
    assert Architecture.parse("L3-h48-m40-q6kv2-d8") == Architecture(3, 48, 40, 6, 2, 8)
    with pytest.raises(MinitronError, match="is not an architecture label"):
        Architecture.parse("L3-h48")
    assert "layer_block" not in arch.as_dict() and arch.as_key()["layer_block"] == 2
    assert "layer_block" not in Architecture(3, 48, 40, 6, 2, 8).as_key(), "records read as before"
    assert Architecture.from_mapping(arch.as_key()) == arch
    assert arch.cut_problems(teacher) == []
    # 2 of 5 layers dropped: starts 0 to 3, so ranks 0 to 3 exist
    assert Architecture(3, 48, 40, 6, 2, 8, layer_block=3).cut_problems(teacher) == []
    assert "only 4 blocks" in " ".join(Architecture(3, 48, 40, 6, 2, 8, layer_block=4).cut_problems(teacher))
    full = Architecture(5, 36, 40, 6, 2, 8, layer_block=1)
    assert "needs fewer layers" in " ".join(full.cut_problems(teacher))
    assert "0 or more" in " ".join(Architecture(3, 48, 40, 6, 2, 8, layer_block=-1).problems())


def test_bad_architectures_and_families():
    model = tiny_model()
    importance = importance_of(model)
    with pytest.raises(MinitronError, match="exceeds the teacher's 48"):
        prune(model, Architecture(5, 64, 40, 4, 2, 8), importance)
    with pytest.raises(MinitronError, match="more than the teacher's 3"):
        prune(model, Architecture(5, 48, 40, 4, 1, 8), importance)
    with pytest.raises(MinitronError, match="pruning head_dim is not supported"):
        prune(model, Architecture(5, 48, 40, 6, 2, 4), importance)
    with pytest.raises(MinitronError, match="importance was estimated on"):
        prune(tiny_model(num_hidden_layers=4), TEACHER, importance)
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(MinitronError, match="supported: llama, mistral, qwen2"):
        prune(gpt2, TEACHER, importance)


def test_parse_arch(tmp_path):
    arch = parse_arch(
        "num_hidden_layers=3, hidden_size=24,intermediate_size=16,num_attention_heads=2", TEACHER
    )
    assert arch == Architecture(3, 24, 16, 2, 2, 8)  # KV heads and head_dim default to the teacher's
    path = tmp_path / "arch.json"
    path.write_text(
        '{"num_hidden_layers": 3, "hidden_size": 24, "intermediate_size": 16, "num_attention_heads": 2,'
        ' "num_key_value_heads": 1, "head_dim": 8, "params": 123, "name": "x"}'
    )
    assert parse_arch(str(path), TEACHER) == Architecture(3, 24, 16, 2, 1, 8)
    for bad, message in [
        ("layers=3", "unknown field"),
        ("num_hidden_layers=3", "missing hidden_size"),
        ("num_hidden_layers", "not key=value"),
        (str(tmp_path / "nope.json"), "cannot read"),
    ]:
        with pytest.raises(MinitronError, match=message):
            parse_arch(bad, TEACHER)


def test_depth_scores_that_are_not_finite_are_never_chosen():
    importance = importance_of(tiny_model())
    losses = importance.block_loss[2].clone()
    best = int(torch.argmin(losses))
    importance.block_loss[2] = losses.clone()
    importance.block_loss[2][best] = float("nan")  # torch.argmin would pick the NaN
    kept = choose_layers(importance, 3, "block")
    dropped = sorted(set(range(5)) - set(kept))
    finite = losses.clone()
    finite[best] = float("inf")
    start = int(torch.argmin(finite))
    assert dropped == [start, start + 1] and best != start

    importance.layer_loss = torch.tensor([float("nan"), 5.0, 1.0, 2.0, float("nan")])
    assert choose_layers(importance, 3, "layer_loss") == (0, 1, 4), "NaN losses are the worst to drop"

    importance.block_accuracy[2] = torch.tensor([0.5, float("nan"), 0.6, float("nan")])
    assert choose_layers(importance, 3, "block_accuracy") == (0, 1, 4)
    importance.block_accuracy[2] = torch.full((4,), float("nan"))
    with pytest.raises(MinitronError, match="every block-removal accuracy is NaN"):
        choose_layers(importance, 3, "block_accuracy")


def test_width_scores_that_are_not_finite_are_an_error():
    importance = importance_of(tiny_model())
    importance.neurons[1, 3] = float("nan")
    with pytest.raises(MinitronError, match="neurons importance holds NaN"):
        select(importance, VARIANTS["mlp"])
