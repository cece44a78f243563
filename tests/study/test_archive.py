"""Zip safety: zip-slip names, links, encryption and bombs are refused before inflating."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest
from studykit import make_dataset, save

from radloop.errors import CorruptFileError, FileTooLargeError, UnsafeArchiveError
from radloop.study import IngestLimits, load_studies, load_study


def _dicom_bytes(tmp_path: Path, instance: int = 1) -> bytes:
    return save(make_dataset(instance=instance), tmp_path / "src" / f"{instance}.dcm").read_bytes()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:\\evil.dcm", "..\\evil.dcm"]
)
def test_path_traversal_names_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "study.zip", {"ok.dcm": _dicom_bytes(tmp_path), name: b"x"})
    before = _tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="expected member names relative to the archive"):
        load_studies(archive)
    assert _tree(tmp_path) == before
    assert not (tmp_path / "evil.dcm").exists()


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="expected regular files only, got a symbolic"):
        load_studies(archive)


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "study.zip", {"a.dcm": b"ciphertext"})
    data = bytearray(archive.read_bytes())
    # General purpose bit 0 = encrypted (APPNOTE.TXT 4.4.4), in both headers; zipfile's
    # writer clears it, so it is set here by hand.
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match="expected unencrypted members"):
        load_studies(archive)


def test_a_decompression_bomb_is_refused_from_its_declared_ratio(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"bomb.dcm": bytes(20 * 1024 * 1024)})
    with pytest.raises(UnsafeArchiveError, match=r"compression ratio of at most 100:1.*bomb"):
        load_studies(archive)


def test_many_small_members_are_caught_by_the_overall_ratio(tmp_path: Path) -> None:
    members = {f"{i}.dcm": bytes(60 * 1024) for i in range(40)}
    archive = _zip(tmp_path / "bombs.zip", members)
    with pytest.raises(UnsafeArchiveError, match="overall compression ratio of at most 100:1"):
        load_studies(archive)


def _patch_declared_size(archive: Path, new_size: int) -> None:
    """Make both headers understate the member's inflated size (APPNOTE.TXT 4.3.7, 4.3.12)."""
    data = bytearray(archive.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, new_size)
    struct.pack_into("<I", data, central + 24, new_size)
    archive.write_bytes(bytes(data))


def test_a_member_that_inflates_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", {"a.dcm": _dicom_bytes(tmp_path)})
    _patch_declared_size(archive, 100)
    with pytest.raises(UnsafeArchiveError, match="to inflate to its declared size and checksum"):
        load_studies(archive)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"{i}.dcm": b"x" for i in range(3)})
    with pytest.raises(UnsafeArchiveError, match="expected at most 2 members, got 3 members"):
        load_studies(archive, limits=IngestLimits(max_archive_members=2))


def test_members_over_the_file_limit_are_refused_before_inflating(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", {"a.dcm": _dicom_bytes(tmp_path)})
    with pytest.raises(FileTooLargeError, match=r"members of at most 500 bytes, got 'a\.dcm'"):
        load_studies(archive, limits=IngestLimits(max_file_bytes=500))


def test_a_damaged_zip_is_a_corrupt_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(CorruptFileError, match=r"broken\.zip: expected a readable zip archive"):
        load_studies(broken)


def test_a_bad_member_is_named_inside_its_archive(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "study.zip", {"a.dcm": _dicom_bytes(tmp_path), "b.txt": b"hi"})
    with pytest.raises(ValueError, match=r"study\.zip/b\.txt: expected a DICOM, PNG or JPEG"):
        load_studies(archive)


def test_zip_members_are_read_in_memory_without_extracting(tmp_path: Path) -> None:
    members = {"x/1.dcm": _dicom_bytes(tmp_path, 1), "x/2.dcm": _dicom_bytes(tmp_path, 2)}
    archive = _zip(tmp_path / "study.zip", members)
    before = _tree(tmp_path)
    assert len(load_study(archive).images) == 2
    assert _tree(tmp_path) == before
