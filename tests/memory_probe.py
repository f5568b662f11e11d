"""Peak memory of a real probe, measured in a fresh process (run by tests/test_memory.py).

    python -m tests.memory_probe LAYERS BATCH {bf16,fp32}

Cuts a student of the embedded teacher's full width and LAYERS layers straight from its checkpoint,
probes it for two steps on random top-64 targets, and prints JSON: the estimate and the measured
peak of anonymous resident memory above what the process held before the student existed (sampled
every 2 ms; anonymous so that the memory-mapped checkpoint's page cache does not count). A fresh
process, because memory freed by earlier work is reused without raising the resident size.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import torch


def _anon() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def main() -> None:
    from minitron.distill.probe import ProbeConfig, probe
    from minitron.distill.targets import TeacherTargets
    from minitron.model.architecture import Architecture, Family
    from minitron.model.lazy import cut_from_checkpoint
    from minitron.model.memory import training_memory
    from minitron.model.surgery import full_selection
    from minitron.model.teacher import embedded_teacher_dir, local_config
    from minitron.runtime import Placement

    layers, batch, bf16 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "bf16"
    folder = embedded_teacher_dir("smollm2-135m", offline=True)
    config = local_config("smollm2-135m")
    assert config is not None
    teacher = Architecture.from_mapping(config)
    family = Family.from_config(config)
    arch = Architecture(**{**teacher.as_dict(), "num_hidden_layers": layers})
    seq_len, k, steps = 256, 64, 2
    generator = torch.Generator().manual_seed(0)
    sequences = batch * steps
    targets = TeacherTargets(
        input_ids=torch.randint(0, family.vocab_size, (sequences, seq_len), generator=generator),
        values=torch.randn(sequences, seq_len, k, generator=generator),
        indices=torch.randint(0, family.vocab_size, (sequences, seq_len, k), generator=generator).int(),
        meta={},
    )
    validation = targets.input_ids[:1].clone()
    torch.set_num_threads(2)
    peak, running = [0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _anon())
            time.sleep(0.002)

    base = _anon()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    student = cut_from_checkpoint(folder, arch, full_selection(teacher, tuple(range(layers))), torch.float32)
    cfg = ProbeConfig(tokens=sequences * seq_len, batch_size=batch, rungs=1, placement=Placement(bf16=bf16))
    probe(student, targets, cfg, validation, eval_batch_size=1)
    running[0] = False
    sampler.join()
    estimate = training_memory(family, arch, batch, seq_len, bf16)
    print(json.dumps({"measured": peak[0] - base, "estimate": estimate.total, "arch": arch.short()}))


if __name__ == "__main__":
    main()
