"""Importance estimation: aggregation, determinism, save/load, depth scores."""

import pytest
import torch

from minitron.errors import MinitronError
from minitron.importance.depth import estimate_depth
from minitron.importance.scores import Importance, ImportanceConfig
from minitron.importance.selection import choose_layers
from minitron.importance.width import _Reducer, estimate_width_importance
from minitron.model.surgery import layer_view
from tests.tiny import tiny_batches, tiny_model

CFG = ImportanceConfig(num_samples=8, seq_len=16, batch_size=3, depth_samples=4, bf16=False)


def estimate(model, cfg=CFG, blocks=(1, 2, 3)):
    sequences = tiny_batches()
    importance = estimate_width_importance(model, sequences, cfg, progress=False)
    estimate_depth(model, sequences[: cfg.depth_samples], importance, blocks, progress=False, bf16=cfg.bf16)
    return importance


@pytest.mark.parametrize("seq", ["mean", "l2", "var"])
@pytest.mark.parametrize("batch", ["mean", "l2", "var"])
def test_reductions_match_a_direct_computation(seq, batch):
    x = torch.rand(7, 5, 3)
    reducer = _Reducer(ImportanceConfig(seq_reduction=seq, batch_reduction=batch))
    reducer.add(x[:4])
    reducer.add(x[4:])  # streaming over two batches gives the same as all at once
    per_seq = {"mean": x.mean(1), "l2": x.norm(dim=1), "var": x.var(1, unbiased=False)}[seq]
    expected = {"mean": per_seq.mean(0), "l2": per_seq.norm(dim=0), "var": per_seq.var(0, unbiased=False)}[
        batch
    ]
    torch.testing.assert_close(reducer.result(), expected)


def test_default_reduction_is_the_papers_best():
    cfg = ImportanceConfig()
    assert (cfg.seq_reduction, cfg.batch_reduction) == ("mean", "l2")
    with pytest.raises(MinitronError, match="mean, l2 or var"):
        ImportanceConfig(seq_reduction="max")


def test_shapes_and_hooks_leave_the_model_unchanged():
    model = tiny_model()
    ids = tiny_batches(2)
    with torch.no_grad():
        before = model(ids).logits
    importance = estimate(model)
    with torch.no_grad():
        after = model(ids).logits
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert importance.heads.shape == (5, 6) and importance.kv_groups().shape == (5, 2)
    assert importance.neurons.shape == (5, 40) and importance.channels.shape == (48,)
    assert importance.block_importance.shape == (5,) and importance.layer_loss.shape == (5,)
    assert importance.block_loss[2].shape == (4,) and importance.block_loss[3].shape == (3,)
    assert all(t.dtype == torch.float32 for t in (importance.heads, importance.neurons, importance.channels))
    assert (importance.heads >= 0).all() and (importance.neurons >= 0).all()
    torch.testing.assert_close(importance.kv_groups(), importance.heads.reshape(5, 2, 3).sum(-1))


def test_head_scores_are_the_norms_of_the_o_proj_input():
    """Cross-check the hook against an explicit computation of one layer's head outputs."""
    model = tiny_model()
    sequences = tiny_batches(4)
    captured = []
    handle = model.model.layers[2].self_attn.o_proj.register_forward_pre_hook(
        lambda m, a: captured.append(a[0])
    )
    with torch.no_grad():
        model(sequences)
    handle.remove()
    per_head = captured[0].reshape(4, 16, 6, 8).norm(dim=-1)  # [batch, seq, heads]
    expected = per_head.mean(1).norm(dim=0)  # mean over the sequence, L2 over the batch
    importance = estimate_width_importance(
        model, sequences, ImportanceConfig(batch_size=4, bf16=False), progress=False
    )
    torch.testing.assert_close(importance.heads[2], expected)


def test_importance_is_deterministic_and_round_trips(tmp_path):
    model = tiny_model()
    first, second = estimate(model), estimate(model)
    for name in ("heads", "neurons", "channels", "block_importance", "layer_loss"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    first.save(tmp_path / "imp")
    loaded = Importance.load(tmp_path / "imp")
    assert loaded.architecture == first.architecture
    for name in ("heads", "neurons", "channels", "block_importance", "layer_loss"):
        assert torch.equal(getattr(loaded, name), getattr(first, name)), name
    assert loaded.block_loss.keys() == first.block_loss.keys()
    assert all(torch.equal(loaded.block_loss[k], first.block_loss[k]) for k in first.block_loss)
    assert loaded.meta["calibration"]["seq_reduction"] == "mean"
    first.save(tmp_path / "imp")  # overwriting an existing folder works and leaves no staging folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imp"]


def test_depth_losses_are_loss_increases_of_layer_views():
    model = tiny_model()
    importance = estimate(model)
    sequences = tiny_batches()[:4]
    from minitron.eval.loss import validation_loss

    base = validation_loss(model, sequences, progress=False).loss
    # The estimate starts from cached hidden states, the reference runs the whole view: two float32
    # computations of a loss of ~5 nats, which differ by ~1e-6 (more on some CPUs); a wrong layer
    # or block changes it by 0.1 or more.
    without_1 = validation_loss(layer_view(model, (0, 2, 3, 4)), sequences, progress=False).loss
    assert importance.layer_loss[1].item() == pytest.approx(without_1 - base, abs=1e-4)
    without_23 = validation_loss(layer_view(model, (0, 1, 4)), sequences, progress=False).loss
    assert importance.block_loss[2][2].item() == pytest.approx(without_23 - base, abs=1e-4)


def test_shortlisted_depth_evaluates_the_closest_blocks_then_walks_downhill():
    model = tiny_model(num_hidden_layers=8)
    sequences = tiny_batches()[:4]
    every = estimate_width_importance(model, sequences, CFG, progress=False)
    estimate_depth(model, sequences, every, (1, 3), progress=False, bf16=False)
    short = estimate_width_importance(model, sequences, CFG, progress=False)
    estimate_depth(model, sequences, short, (1, 3), progress=False, bf16=False, shortlist=1)

    # the angle between each 3-layer block's input and output, straight from the model's layers
    states: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _m, _a, out: states.append(out)) for layer in model.model.layers
    ]
    with torch.no_grad():
        embedded = model.model.embed_tokens(sequences)
        model(input_ids=sequences)
    for hook in hooks:
        hook.remove()
    states = [embedded] + [s[0] if isinstance(s, tuple) else s for s in states]
    unit = [torch.nn.functional.normalize(h, dim=-1) for h in states]
    angle = torch.stack([torch.arccos((unit[s] * unit[s + 3]).sum(-1).clamp(-1, 1)).mean() for s in range(6)])

    losses = short.block_loss[3]
    measured = ~losses.isnan()
    assert bool(measured[int(torch.argmin(angle))]), "the block of least angular distance is evaluated first"
    assert 1 <= int(measured.sum()) < 6, "not every start is evaluated"
    torch.testing.assert_close(losses[measured], every.block_loss[3][measured])
    best = int(torch.argmin(torch.nan_to_num(losses, nan=float("inf"))))
    for neighbour in (best - 1, best + 1):  # the chosen block is a local minimum of what was measured
        if 0 <= neighbour < 6:
            assert bool(measured[neighbour]) and losses[neighbour] >= losses[best]
    torch.testing.assert_close(short.layer_loss, every.layer_loss)  # per-layer losses stay complete
    assert not short.layer_loss.isnan().any()
    assert choose_layers(short, keep=5) == tuple(i for i in range(8) if not best <= i < best + 3)


def test_layer_view_shares_the_teachers_weights():
    model = tiny_model()
    view = layer_view(model, (0, 3))
    assert (
        view.model.layers[1].mlp.up_proj.weight.data_ptr()
        == model.model.layers[3].mlp.up_proj.weight.data_ptr()
    )
    assert view.config.num_hidden_layers == 2 and model.config.num_hidden_layers == 5


def test_importance_for_caches_and_extends(tmp_path, monkeypatch):
    import numpy as np

    import minitron.importance.cache as calibrate
    from minitron.data.tokens import TokenizedCorpus

    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path))
    stream = np.random.default_rng(0).integers(0, 97, 400).astype(np.uint32)
    tokens = TokenizedCorpus(
        train=stream, validation=stream, calibration=stream, test=stream, eos_token_id=0, key="synthetic"
    )
    model = tiny_model()
    first = calibrate.importance_for(model, tokens, CFG, block_sizes=[2], progress=False)
    assert set(first.block_loss) == {2} and first.layer_loss is None, "per-layer losses only when asked"
    first = calibrate.importance_for(model, tokens, CFG, block_sizes=[1, 2], progress=False)
    assert first.layer_loss is not None
    assert first.meta["teacher_fingerprint"] and first.meta["tokens"] == "synthetic"

    def fail(*args, **kwargs):
        raise AssertionError("recomputed width importance")

    monkeypatch.setattr(calibrate, "estimate_width_importance", fail)
    second = calibrate.importance_for(model, tokens, CFG, block_sizes=[2, 3], progress=False)
    assert torch.equal(second.heads, first.heads) and set(second.block_loss) == {2, 3}
    third = calibrate.importance_for(model, tokens, CFG, block_sizes=[3], progress=False)
    assert torch.equal(third.block_loss[3], second.block_loss[3])
    assert len(list((tmp_path / "importance").iterdir())) == 1

    other = tiny_model(seed=1)  # another teacher gets its own scores
    assert calibrate.importance_dir(
        calibrate.model_fingerprint(other), tokens, CFG
    ) != calibrate.importance_dir(calibrate.model_fingerprint(model), tokens, CFG)
    with pytest.raises(MinitronError, match=r"the calibration split holds 400 tokens \(25 sequences of 16\)"):
        calibrate.importance_for(model, tokens, ImportanceConfig(num_samples=64, seq_len=16), progress=False)
