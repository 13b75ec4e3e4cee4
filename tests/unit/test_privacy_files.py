"""Recording files: deleted under RECORDINGS_DIR only, dry runs touch nothing."""

from __future__ import annotations

from pathlib import Path

from callcenter.privacy.files import FileOutcome, delete_recording, recording_file


def test_deletes_the_named_file(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    assert delete_recording(tmp_path, "a.wav") is FileOutcome.DELETED
    assert not (tmp_path / "a.wav").exists()
    assert delete_recording(tmp_path, "a.wav") is FileOutcome.MISSING


def test_dry_run_only_looks(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    assert delete_recording(tmp_path, "a.wav", dry_run=True) is FileOutcome.WOULD_DELETE
    assert (tmp_path / "a.wav").exists()
    assert delete_recording(tmp_path, "b.wav", dry_run=True) is FileOutcome.MISSING


def test_only_the_base_name_counts(tmp_path: Path) -> None:
    inside = tmp_path / "monitor"
    inside.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"keep")
    assert recording_file(inside, "../secret.wav") == str(inside / "secret.wav")
    assert delete_recording(inside, "../secret.wav") is FileOutcome.MISSING
    assert delete_recording(inside, "/etc/") is FileOutcome.MISSING  # empty base name
    assert (tmp_path / "secret.wav").read_bytes() == b"keep"


def test_a_directory_is_not_deleted(tmp_path: Path) -> None:
    (tmp_path / "d.wav").mkdir()
    assert delete_recording(tmp_path, "d.wav") is FileOutcome.FAILED
    assert (tmp_path / "d.wav").is_dir()
    assert delete_recording(tmp_path, "d.wav", dry_run=True) is FileOutcome.MISSING


def test_a_recordings_directory_that_is_not_writable_fails_the_file_and_says_so(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    """A read-only RECORDINGS_DIR (a mount without write access): the file stays, the outcome
    is FAILED (the caller keeps the call's reference to it) and the error names the file.

    The tests run as root, whom file modes do not stop, so the OS's refusal is simulated at
    ``os.remove``: what is tested is our handling of it."""
    import errno
    import os

    (tmp_path / "a.wav").write_bytes(b"RIFF")

    def refuse(path: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "remove", refuse)
    with caplog.at_level("ERROR"):
        assert delete_recording(tmp_path, "a.wav") is FileOutcome.FAILED
    assert (tmp_path / "a.wav").exists()
    assert "a.wav" in caplog.text and "Permission denied" in caplog.text
