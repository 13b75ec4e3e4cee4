"""models_fetch.py against a local HTTP server serving archives built here."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from callcenter.speech.models_fetch import (
    CorruptArchive,
    FetchError,
    fetch_model,
    missing_model_parts,
)

NAME = "vosk-model-test-0.1"
ROOT = Path(__file__).resolve().parents[2]


def build_model_zip(name: str = NAME, *, layout: dict[str, bytes] | None = None) -> bytes:
    """Build a model-shaped archive; stored (not deflated) so a cut lands inside real bytes."""
    files = layout if layout is not None else model_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(f"{name}/{path}" if not path.startswith("/") else path[1:], data)
    return buffer.getvalue()


def model_files() -> dict[str, bytes]:
    return {
        "am/final.mdl": os.urandom(200_000),
        "conf/mfcc.conf": b"--use-energy=false\n",
        "conf/model.conf": b"--beam=10.0\n",
        "graph/HCLr.fst": os.urandom(50_000),
        "graph/Gr.fst": os.urandom(50_000),
        "README": b"test model\n",
    }


@dataclass
class Served:
    """What the test server serves and how it misbehaves; it records each request's Range."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_first_at: int | None = None
    ignore_range: bool = False
    ranges: list[str | None] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        served = self.server.served  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        served.ranges.append(range_header)
        body = served.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and not served.ignore_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if served.cut_first_at is not None:
            # The connection drops mid-file, once: the announced length never arrives.
            payload = payload[: served.cut_first_at]
            served.cut_first_at = None
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    served = Served()
    httpd.served = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/models/", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def fetch(url: str, dest: Path, **options: object) -> Path:
    return fetch_model(NAME, dest_dir=dest, base_url=url, timeout_s=5, **options)  # type: ignore[arg-type]


def test_downloads_checks_and_unpacks_a_model(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    files = model_files()
    served.files[f"{NAME}.zip"] = build_model_zip(layout=files)
    seen: list[tuple[int, int | None]] = []

    path = fetch(url, tmp_path, progress=lambda done, total: seen.append((done, total)))

    assert path == tmp_path / NAME
    assert missing_model_parts(path) == []
    assert (path / "am" / "final.mdl").read_bytes() == files["am/final.mdl"]
    assert sorted(os.listdir(tmp_path)) == [NAME]  # no .part, no staging folder left
    assert served.ranges == [None]
    size = len(served.files[f"{NAME}.zip"])
    assert seen[-1] == (size, size)


def test_resumes_after_the_connection_is_cut_mid_file(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    archive = build_model_zip()
    served.files[f"{NAME}.zip"] = archive
    served.cut_first_at = 123_457

    path = fetch(url, tmp_path, retries=2)

    assert served.ranges == [None, "bytes=123457-"]
    assert missing_model_parts(path) == []


def test_resumes_a_part_file_left_by_an_earlier_run(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = build_model_zip()
    served.cut_first_at = 100_000

    with pytest.raises(FetchError, match="100000 bytes kept in .*run again to resume"):
        fetch(url, tmp_path, retries=0)
    assert (tmp_path / f"{NAME}.zip.part").stat().st_size == 100_000
    assert not (tmp_path / NAME).exists()

    path = fetch(url, tmp_path)

    assert served.ranges == [None, "bytes=100000-"]
    assert missing_model_parts(path) == []


def test_a_complete_part_file_is_unpacked_without_downloading_again(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    archive = build_model_zip()
    served.files[f"{NAME}.zip"] = archive
    (tmp_path / f"{NAME}.zip.part").write_bytes(archive)

    path = fetch(url, tmp_path)

    assert served.ranges == [f"bytes={len(archive)}-"]  # answered 416: nothing left to send
    assert missing_model_parts(path) == []


def test_starts_over_when_the_server_ignores_range(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    archive = build_model_zip()
    served.files[f"{NAME}.zip"] = archive
    served.ignore_range = True
    (tmp_path / f"{NAME}.zip.part").write_bytes(archive[:5000])

    path = fetch(url, tmp_path)

    assert served.ranges == ["bytes=5000-"]
    assert missing_model_parts(path) == []


def test_refuses_a_corrupt_archive(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    archive = bytearray(build_model_zip())
    archive[len(archive) // 3] ^= 0xFF  # inside am/final.mdl's stored bytes
    served.files[f"{NAME}.zip"] = bytes(archive)

    with pytest.raises(CorruptArchive, match=r"damaged member 'vosk-model-test-0.1/am/final.mdl'"):
        fetch(url, tmp_path)

    assert os.listdir(tmp_path) == []  # nothing unpacked, and the bad download is gone


def test_refuses_something_that_is_not_a_zip(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = b"<html>Service Unavailable</html>"

    with pytest.raises(CorruptArchive, match="not a readable zip archive"):
        fetch(url, tmp_path)

    assert os.listdir(tmp_path) == []


def test_refuses_an_archive_without_the_model_layout(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = build_model_zip(layout={"README": b"not a model"})

    with pytest.raises(CorruptArchive, match=r"not a Vosk model \(missing am/final.mdl, conf/"):
        fetch(url, tmp_path)

    assert os.listdir(tmp_path) == []


def test_refuses_members_outside_the_model_folder(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = build_model_zip(layout=model_files() | {"/../evil": b"x"})

    with pytest.raises(CorruptArchive, match=r"unsafe member path '../evil'"):
        fetch(url, tmp_path)

    assert not (tmp_path.parent / "evil").exists()


def test_checks_the_sha256_when_given(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    archive = build_model_zip()
    served.files[f"{NAME}.zip"] = archive

    with pytest.raises(CorruptArchive, match="SHA-256 is"):
        fetch(url, tmp_path, sha256="0" * 64)
    path = fetch(url, tmp_path, sha256=hashlib.sha256(archive).hexdigest().upper())

    assert missing_model_parts(path) == []


def test_http_error_names_the_url(server: tuple[str, Served], tmp_path: Path) -> None:
    url, _ = server

    with pytest.raises(FetchError, match=rf"{url}{NAME}\.zip: HTTP 404"):
        fetch(url, tmp_path)


def test_a_model_already_present_is_not_downloaded_again(
    server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = build_model_zip()
    fetch(url, tmp_path)

    fetch(url, tmp_path)

    assert served.ranges == [None]


def test_refuses_a_name_that_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not a model name"):
        fetch_model("../etc", dest_dir=tmp_path)


def test_script_fetches_into_the_given_folder(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = build_model_zip()

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_models.py"), NAME, "--dest", str(tmp_path),
         "--base-url", url],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert f"VOSK_MODEL_PATH={tmp_path / NAME}" in done.stderr
    assert missing_model_parts(tmp_path / NAME) == []


def test_script_reports_a_refused_archive(server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = server
    served.files[f"{NAME}.zip"] = b"garbage"

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_models.py"), NAME, "--dest", str(tmp_path),
         "--base-url", url],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 1
    assert "error:" in done.stderr and "not a readable zip archive" in done.stderr
