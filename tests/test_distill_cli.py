"""`python -m minitron distill` end to end: killed mid-run (in the middle of a step's gradient
accumulation) and resumed equals an uninterrupted run."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from minitron import codec
from minitron.commands.distill import main as distill_main
from tests.conftest import run_module
from tests.tiny import tiny_model

ARGS = [
    "--tokens",
    "640",
    "--seq-len",
    "32",
    "--batch-size",
    "2",
    "--eval-every",
    "4",
    "--eval-sequences",
    "2",
    "--checkpoint-every",
    "3",
    "--lr",
    "1e-3",
    "--data",  # one corpus: the default `mix` would draw the tiny teacher's own samples first
    "wiki-en",
]


@pytest.fixture(scope="module")
def student(tiny_world):
    """A smaller student (1 layer) saved beside the tiny teacher."""
    root, _ = tiny_world
    folder = root / "student"
    if not folder.exists():
        teacher = AutoModelForCausalLM.from_pretrained(root / "teacher")
        model = tiny_model(vocab_size=teacher.config.vocab_size, num_hidden_layers=1, seed=5)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(root / "teacher").save_pretrained(folder)
    return folder


def distill(env, root, student, out, *extra):
    return run_module(
        "minitron",
        "distill",
        "--student",
        str(student),
        "--teacher",
        str(root / "teacher"),
        "--out",
        str(out),
        *ARGS,
        *extra,
        env=env,
    )


def test_kill_and_resume_gives_the_same_model(tiny_world, student, tmp_path):
    root, env = tiny_world
    # Steps of two micro-batches of one sequence each (gradients accumulated)
    micro = ("--micro-batch", "1")
    straight = distill(env, root, student, tmp_path / "straight", *micro)
    assert straight.returncode == 0, straight.stderr
    assert "validation loss before" in straight.stdout

    # SIGKILL during step 8, after the first micro-batch's backward (its gradients half
    # accumulated); the last checkpoint is step 6's.
    out = tmp_path / "resumed"
    killed = distill({**env, "MINITRON_KILL_MID_STEP": "8"}, root, student, out, *micro)
    assert killed.returncode == -9, killed.stderr
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and not (out / "provenance.json").exists()
    resumed = distill(env, root, student, out, *micro)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "at step 6 of 10" in resumed.stdout

    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    pa = json.loads((tmp_path / "straight" / "provenance.json").read_text())
    pb = json.loads((tmp_path / "resumed" / "provenance.json").read_text())
    assert [h["val_loss"] for h in pa["history"]] == pytest.approx([h["val_loss"] for h in pb["history"]])
    assert pa["tokens_trained"] == 640 and pa["job"] == pb["job"]
    assert not (tmp_path / "resumed" / "checkpoint").exists()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "resumed")  # plain transformers loads it
    assert model.config.num_hidden_layers == 1
    assert AutoTokenizer.from_pretrained(tmp_path / "resumed")("12345")["input_ids"]


def test_finished_and_foreign_outputs_are_refused(tiny_world, student, tmp_path, in_process):
    root, env = tiny_world

    def refused(out, *extra, student=student):  # these fail before training: run in this process
        args = ["--student", str(student), "--teacher", str(root / "teacher"), "--out", str(out)]
        return in_process(distill_main, *args, *ARGS, *extra, env=env)

    assert distill(env, root, student, tmp_path / "done").returncode == 0
    again = refused(tmp_path / "done")
    assert again.returncode == 2 and "already holds a finished model" in again.stderr
    # --overwrite replaces the finished model only once what replaces it is known to load
    broken = refused(tmp_path / "done", "--overwrite", student=tmp_path / "no-such-student")
    assert broken.returncode == 2 and "no-such-student" in broken.stderr
    assert (tmp_path / "done" / "provenance.json").exists(), "the finished model is still there"

    killed = distill({**env, "MINITRON_KILL_AFTER_STEP": "3"}, root, student, tmp_path / "other")
    assert killed.returncode == -9
    different = refused(tmp_path / "other", "--seed", "1")
    assert different.returncode == 2 and "checkpoint of a different job" in different.stderr

    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    foreign = refused(tmp_path / "foreign")
    assert foreign.returncode == 2 and "is not a checkpoint of this command" in foreign.stderr
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    # counts of the schedule that are not positive: one line before anything loads or is written
    for flag in ("--batch-size", "--test-sequences", "--eval-every"):
        zero = refused(tmp_path / "zero", flag, "0")
        assert zero.returncode == 2 and f"{flag} must be a positive whole number, got 0" in zero.stderr
        assert "Traceback" not in zero.stderr and not (tmp_path / "zero").exists()


def test_teacher_correction_fine_tunes_with_cross_entropy_only(tiny_world, tmp_path):
    root, env = tiny_world
    result = run_module(
        "minitron",
        "correct",
        "--teacher",
        str(root / "teacher"),
        "--tokens",
        "256",
        "--out",
        str(tmp_path / "corrected"),
        "--seq-len",
        "32",
        "--batch-size",
        "2",
        "--eval-sequences",
        "2",
        "--eval-every",
        "2",
        "--data",
        "wiki-en",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "corrected" / "provenance.json").read_text())
    assert record["retrain"]["weights"] == {
        "kd": 0.0,
        "ce": 1.0,
        "temperature": 1.0,
        "head": "vocabulary",
    }
    assert record["teacher"] == "" and record["tokens_trained"] == 256
    history = record["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"], "fine-tuning on the corpus lowers its loss"
    corrected = AutoModelForCausalLM.from_pretrained(tmp_path / "corrected")
    original = AutoModelForCausalLM.from_pretrained(root / "teacher")
    assert corrected.config.num_hidden_layers == original.config.num_hidden_layers
    assert not torch.equal(corrected.model.norm.weight, original.model.norm.weight)


def test_retraining_on_cached_full_targets_equals_the_teacher_online(
    tiny_world, student, tmp_path, wiki_tokens
):
    """The two target sources of the one loop: with k = vocabulary the cached targets are the
    teacher's whole distribution on the same sequences in the same order, so the runs agree (to
    float32 reordering: one computes the teacher's logits per batch, the other in one pass)."""
    from minitron.data.tokens import pack
    from minitron.distill.retrain import RetrainConfig, retrain
    from minitron.distill.sources import training_windows
    from minitron.distill.targets import compute_targets
    from minitron.runtime import Placement

    root, _ = tiny_world
    teacher = AutoModelForCausalLM.from_pretrained(root / "teacher")
    tokenizer = AutoTokenizer.from_pretrained(student)
    cfg = RetrainConfig(
        tokens=6 * 2 * 32, seq_len=32, batch_size=2, lr=1e-3, eval_every=3, eval_sequences=2,
        test_sequences=2, checkpoint_every=0, placement=Placement(bf16=False),
    )  # fmt: skip
    ids = training_windows(pack(wiki_tokens.train, 32), cfg.steps * cfg.batch_size, cfg.seed)
    targets = compute_targets(teacher, ids, k=teacher.config.vocab_size, progress=False, meta={"k": "all"})
    runs = {}
    for name, kwargs in {
        "online": {"teacher": teacher},
        "cached": {"teacher": None, "targets": targets},
    }.items():
        model = AutoModelForCausalLM.from_pretrained(student)
        runs[name] = retrain(
            model,
            tokens=wiki_tokens,
            cfg=cfg,
            out=tmp_path / name,
            tokenizer=tokenizer,
            progress=False,
            **kwargs,
        )
    online, cached = runs["online"], runs["cached"]
    assert [h.step for h in online.history] == [0, 3, 6]
    assert [h.val_loss for h in cached.history] == pytest.approx(
        [h.val_loss for h in online.history], rel=1e-5
    )
    assert cached.test_loss == pytest.approx(online.test_loss, rel=1e-5)
    assert online.history[-1].val_loss < online.history[0].val_loss


def _lockstep_students(root, tokenizer_dir, tmp_path):
    """Two different students of the tiny teacher, saved, so each arm loads the same weights."""
    teacher = AutoModelForCausalLM.from_pretrained(root / "teacher")
    vocab = teacher.config.vocab_size
    folders = []
    for name, overrides in {
        "a": {"num_hidden_layers": 1, "seed": 5},
        "b": {"intermediate_size": 24, "seed": 7},
    }.items():
        folder = tmp_path / f"student-{name}"
        tiny_model(vocab_size=vocab, **overrides).save_pretrained(folder)
        folders.append(folder)
    return teacher, folders


def _teacher_calls(teacher):
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_retraining_in_lockstep_equals_retraining_each_alone(tiny_world, student, tmp_path, wiki_tokens):
    """Two students on one teacher pass per step end with the weights, histories and test losses
    they reach alone, to the bit, and the teacher runs once per step instead of once per student
    per step; one student starts from a later checkpoint (an interrupted earlier run), so the two
    stand at different steps until they meet."""
    from minitron.distill.retrain import RetrainConfig, Trainee, retrain, retrain_together
    from minitron.runtime import Placement

    root, _ = tiny_world
    tokenizer = AutoTokenizer.from_pretrained(student)
    teacher, folders = _lockstep_students(root, student, tmp_path)
    cfg = RetrainConfig(
        tokens=6 * 2 * 32, seq_len=32, batch_size=2, lr=1e-3, eval_every=3, eval_sequences=2,
        test_sequences=2, checkpoint_every=2, placement=Placement(bf16=False),
    )  # fmt: skip
    calls = _teacher_calls(teacher)
    alone = [
        retrain(
            AutoModelForCausalLM.from_pretrained(f),
            teacher,
            wiki_tokens,
            cfg,
            tmp_path / f"alone-{i}",
            tokenizer,
            progress=False,
        )
        for i, f in enumerate(folders)
    ]
    assert len(calls) == 2 * cfg.steps

    class Interrupt(Exception):
        pass

    def interrupt(record):
        if record.step >= 3:  # after the checkpoint of step 2, before that of step 4
            raise Interrupt

    first = AutoModelForCausalLM.from_pretrained(folders[0])
    with pytest.raises(Interrupt):
        retrain(first, teacher, wiki_tokens, cfg, tmp_path / "together-0", tokenizer, callback=interrupt)
    assert json.loads((tmp_path / "together-0" / "checkpoint" / "state.json").read_text())["step"] == 2
    calls.clear()
    trainees = [
        Trainee(AutoModelForCausalLM.from_pretrained(f), tmp_path / f"together-{i}")
        for i, f in enumerate(folders)
    ]
    together = retrain_together(trainees, teacher, wiki_tokens, cfg, tokenizer)
    assert len(calls) == cfg.steps  # the second student's steps 0 and 1 alone, then one pass for both
    for one, both in zip(alone, together, strict=True):
        assert not isinstance(both, Exception)
        # the training loss between validations is averaged over this session's steps only
        assert [h.val_loss for h in both.history] == [h.val_loss for h in one.history]
        assert both.test_loss == one.test_loss
        assert both.provenance.job == one.provenance.job
        a, b = load_file(one.out / "model.safetensors"), load_file(both.out / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert together[0].provenance.resumed_at_step == 2
    assert codec.dumps(together[1].history) == codec.dumps(alone[1].history)  # NaN: the first train loss
    assert not (tmp_path / "together-0" / "checkpoint").exists()


def test_a_student_that_fails_in_lockstep_leaves_the_others_to_finish(
    tiny_world, student, tmp_path, wiki_tokens
):
    from minitron.distill.retrain import RetrainConfig, Trainee, retrain, retrain_together
    from minitron.runtime import Placement

    root, _ = tiny_world
    tokenizer = AutoTokenizer.from_pretrained(student)
    teacher, folders = _lockstep_students(root, student, tmp_path)
    cfg = RetrainConfig(
        tokens=4 * 2 * 32, seq_len=32, batch_size=2, eval_every=2, eval_sequences=2, test_sequences=2,
        checkpoint_every=0, placement=Placement(bf16=False),
    )  # fmt: skip
    wrong = tiny_model(vocab_size=teacher.config.vocab_size - 1, num_hidden_layers=1)  # logits do not match
    right = AutoModelForCausalLM.from_pretrained(folders[1])
    trainees = [Trainee(wrong, tmp_path / "wrong"), Trainee(right, tmp_path / "b")]
    results = retrain_together(trainees, teacher, wiki_tokens, cfg, tokenizer)
    assert isinstance(results[0], Exception) and not (tmp_path / "wrong" / "provenance.json").exists()
    again = AutoModelForCausalLM.from_pretrained(folders[1])
    alone = retrain(again, teacher, wiki_tokens, cfg, tmp_path / "alone", tokenizer, progress=False)
    assert not isinstance(results[1], Exception)
    assert results[1].test_loss == alone.test_loss
    assert codec.dumps(results[1].history) == codec.dumps(alone.history)
