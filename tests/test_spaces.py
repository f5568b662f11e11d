"""Every shipped space validates, every candidate is accepted by transformers, and bad space files
fail with an error naming the file and the key."""

import re
from pathlib import Path

import pytest
import yaml
from transformers import AutoConfig

from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, build_config
from search.plan.candidates import feasible, reach, space_for_budget
from search.plan.space import SPACES_DIR, load_space

SPACE_FILES = sorted(SPACES_DIR.glob("*.yaml"))


def test_the_three_spaces_exist():
    assert {p.stem for p in SPACE_FILES} >= {"smollm2-135m", "llama-3.1-8b", "mistral-nemo-12b"}


@pytest.mark.parametrize("path", SPACE_FILES, ids=lambda p: p.stem)
def test_space_validates_and_every_shape_builds(path):
    space = load_space(path)
    assert space.path == path and space.teacher_params > 0
    base = {**space.family.__dict__, **space.teacher.as_dict()}
    for arch in space.grid() + [k.arch for k in space.known]:
        config = build_config(base, arch)  # transformers' own validation runs here
        assert isinstance(config, AutoConfig.for_model(space.family.model_type).__class__)
        assert Architecture.from_mapping(config) == arch
    low, high = reach(space)
    assert 0 < low < high < space.teacher_params


def test_space_by_name():
    assert load_space("llama-3.1-8b").path == SPACES_DIR / "llama-3.1-8b.yaml"


def test_llama_space_holds_both_published_minitron_4b_shapes():
    space = load_space("llama-3.1-8b")
    names = {c.name: c for c in feasible(space, 4_500_000_000)}
    assert names["Llama-3.1-Minitron-4B-Width"].arch == Architecture(32, 3072, 9216, 32, 8, 128)
    assert names["Llama-3.1-Minitron-4B-Depth"].arch == Architecture(16, 4096, 14336, 32, 8, 128)


def test_feasible_band_and_order():
    space = load_space("smollm2-135m")
    candidates = feasible(space, 70_000_000)
    assert candidates, "the default space must have candidates at 70M"
    assert all(66_500_000 <= c.params <= 73_500_000 for c in candidates)
    assert [c.params for c in candidates] == sorted((c.params for c in candidates), reverse=True)
    assert len({c.arch for c in candidates}) == len(candidates)


def test_budget_at_or_above_teacher_is_refused():
    space = load_space("smollm2-135m")
    with pytest.raises(MinitronError, match=re.escape("not below the teacher's 134.5M")):
        feasible(space, space.teacher_params)


def test_empty_feasible_set_names_the_reach():
    with pytest.raises(MinitronError, match=r"reaches 33.04M to 127.9M parameters"):
        feasible(load_space("smollm2-135m"), 10_000_000)


# --- bad space files --------------------------------------------------------------------------

GOOD = yaml.safe_load((SPACES_DIR / "smollm2-135m.yaml").read_text())


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def edited(**changes):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ("name: [unclosed\n", "", "not valid YAML"),
        ("- just\n- a list\n", "(top level)", "expected a mapping"),
        (edited(colour="red"), "colour", "unknown key"),
        (edited(teacher__hiden_size=576), "teacher.hiden_size", "unknown key"),
        (edited(choices__hidden=[1]), "choices.hidden", "unknown key"),
        (edited(choices=KeyError), "choices", "missing"),
        (edited(teacher__vocab_size="big"), "teacher.vocab_size", "positive integer"),
        (edited(teacher__tie_word_embeddings="yes"), "teacher.tie_word_embeddings", "true or false"),
        (edited(teacher__model_type="gpt2"), "teacher.model_type", "not supported"),
        (edited(teacher__num_attention_heads=7), "teacher", "multiple of num_attention_heads"),
        (edited(teacher__num_key_value_heads=2), "teacher", "multiple of num_key_value_heads"),
        (edited(choices__hidden_size=[]), "choices.hidden_size", "non-empty list"),
        (edited(choices__hidden_size=384), "choices.hidden_size", "non-empty list"),
        (edited(choices__hidden_size=[384, 384]), "choices.hidden_size", "twice"),
        (edited(choices__hidden_size=[384, 640]), "choices.hidden_size[1]", "exceeds the teacher's 576"),
        (edited(choices__hidden_size=[384, 512]), "choices.hidden_size", "512 fits no combination"),
        (edited(choices__hidden_size=[512], choices__num_attention_heads=[9]), "choices", "no combination"),
        (edited(choices__num_attention_heads=[1.5]), "choices.num_attention_heads[0]", "positive integer"),
        # a head_dim the teacher does not have: prune would refuse it, so no candidate may hold it
        (edited(choices__head_dim=[32, 64]), "choices.head_dim", "32 fits no combination"),
        (edited(band=5), "band", "fraction between 0 and 1"),
        (edited(top_k=0), "top_k", "positive integer"),
        (edited(layer_blocks=0), "layer_blocks", "positive integer"),
        (edited(known=[{"name": "x", "num_hidden_layers": 2}]), "known[0].hidden_size", "missing"),
        (
            edited(
                known=[
                    {
                        "name": "big",
                        "num_hidden_layers": 40,
                        "hidden_size": 576,
                        "intermediate_size": 1536,
                        "num_attention_heads": 9,
                        "num_key_value_heads": 3,
                    }
                ]
            ),
            "known[0]",
            "exceeds the teacher's 30",
        ),
    ],
)
def test_bad_space_names_file_and_key(tmp_path, data, key, message):
    path = write(tmp_path, data)
    with pytest.raises(MinitronError) as info:
        load_space(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {key}") and message in text, text
    assert "\n" not in text


def test_missing_space_lists_the_shipped_ones():
    with pytest.raises(MinitronError, match=re.escape("llama-3.1-8b, mistral-nemo-12b, smollm2-135m")):
        load_space("no-such-space")


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (70_000_000, "smollm2-135m"),
        (120_000_000, "smollm2-135m"),  # beyond 0.8x the teacher, but no other space reaches it
        (4_000_000_000, "llama-3.1-8b"),
        (4_500_000_000, "llama-3.1-8b"),
        (8_000_000_000, "mistral-nemo-12b"),  # llama-8b reaches 8B, but that is not compression
    ],
)
def test_the_budget_picks_the_smallest_teacher_worth_cutting(budget, expected):
    choice = space_for_budget(budget)
    assert choice.space.name == expected
    assert choice.candidates == feasible(load_space(expected), budget)
    line = choice.line(budget, budget)
    assert f"space {expected} (teacher {choice.space.teacher_name}" in line and "--space NAME" in line


def test_a_budget_no_shipped_space_reaches_names_what_each_reaches():
    with pytest.raises(
        MinitronError,
        match=r"no shipped search space has candidates at 200M \(they reach: "
        r"smollm2-135m 33.04M to 127.9M; llama-3.1-8b 1.957B to 7.812B",
    ):
        space_for_budget(200_000_000)
