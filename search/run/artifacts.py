"""What the winners leave beside their checkpoints once they are trained and scored: GGUF files
for llama.cpp and greedy text continuations next to the teacher's. Both stages are cheap next to
retraining and both are redone only where their files are missing, so a resumed run finishes them.
"""

from __future__ import annotations

from pathlib import Path

from minitron.faults import kill_point
from minitron.model.teacher import Teacher, load_teacher
from search.outputs.outcomes import Samples, WinnerResult
from search.outputs.rundir import RunDir
from search.plan.settings import SearchSettings


def _finished_folders(finals: dict[str, WinnerResult]) -> dict[str, Path]:
    """Each winner's checkpoint folder, if its retraining finished (provenance is written last)."""
    folders = {}
    for trial_id, result in finals.items():
        folder = Path(result.path) if result.path else None
        if folder is not None and (folder / "provenance.json").exists():
            folders[trial_id] = folder
    return folders


def write_gguf_files(settings: SearchSettings, finals: dict[str, WinnerResult]) -> None:
    """GGUF files beside each finished winner; files already written are kept (a resumed run
    writes only the missing ones). A winner llama.cpp cannot take gets a one-line note: the
    checkpoint is the result, the GGUF file a convenience."""
    from minitron.errors import MinitronError
    from minitron.export.gguf_file import export_gguf, file_name

    for folder in _finished_folders(finals).values():
        missing = [q for q in settings.gguf if not (folder / file_name(folder, q)).exists()]
        try:
            written = export_gguf(folder, missing) if missing else []
        except MinitronError as err:
            print(f"[gguf] {folder.name}: no GGUF files: {err}", flush=True)
            continue
        for done_file in written:
            note = (
                f", {len(done_file.fallback)} matrices F16 (rows not whole blocks)"
                if done_file.fallback
                else ""
            )
            print(f"[gguf] {done_file.path.name} ({done_file.bytes / 2**20:.1f} MiB{note})", flush=True)
        kill_point("gguf")


def write_samples(
    run: RunDir, settings: SearchSettings, finals: dict[str, WinnerResult], teacher: Teacher | None
) -> None:
    """Greedy continuations of fixed prompts by the teacher and every finished winner, for the
    report and the model cards to show side by side (`samples.json`)."""
    from transformers import AutoModelForCausalLM

    from minitron.eval.samples import PROMPTS, greedy_continuations

    place = settings.teacher_placement()  # the winners beside the teacher: same device and dtype
    teacher = teacher or load_teacher(settings.teacher, **settings.teacher_options(), **place)
    texts = {"teacher": greedy_continuations(teacher.model, teacher.tokenizer)}
    for trial_id, folder in _finished_folders(finals).items():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=place["dtype"], use_safetensors=True)
        texts[trial_id] = greedy_continuations(model.to(place["device"]), teacher.tokenizer)
        del model
    Samples(tuple(PROMPTS), texts).save(run.samples)
