"""Download, check and unpack Vosk's Russian models into ``models/`` (standard library only).

The archive is downloaded to ``<name>.zip.part`` and resumed with an HTTP Range request when
the connection breaks (within a run, and on the next run). It is unpacked only when it is
complete: the size the server announced, the SHA-256 when one is known or given, every
member's CRC (``ZipFile.testzip``) and the layout of a Vosk model all have to match, or the
archive is refused and deleted. Unpacking goes to a temporary folder renamed into place, so
``models/<name>/`` is either absent or whole.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

from callcenter.errors import CallcenterError

BASE_URL = "https://alphacephei.com/vosk/models/"
DEFAULT_DEST = Path("models")
_CHUNK = 1 << 20
_USER_AGENT = "callcenter-fetch-models/1"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model we recommend, with what we know about its archive."""

    name: str
    size_text: str
    about: str
    # Only what the vendor publishes or we measured; None means "not known", never a guess.
    sha256: str | None = None


KNOWN_MODELS = {
    "small": KnownModel(
        "vosk-model-small-ru-0.22",
        "about 45 MB",
        "fast, little RAM; the default for a clinic server",
    ),
    "big": KnownModel(
        "vosk-model-ru-0.42",
        "about 1.8 GB",
        "more accurate, needs several GB of RAM and is several times slower",
    ),
}
DEFAULT_MODEL = "small"


class FetchError(CallcenterError):
    """The model could not be downloaded."""


class CorruptArchive(FetchError):
    """The downloaded archive is damaged, incomplete or not a Vosk model."""


#: Progress callback: bytes on disk so far, total bytes when the server said.
Progress = Callable[[int, int | None], None]


def missing_model_parts(model_dir: str | os.PathLike[str]) -> list[str]:
    """Return what a Vosk model folder lacks (empty when it looks like a model).

    A model has ``am/final.mdl``, ``conf/mfcc.conf``, ``conf/model.conf`` and a ``graph/``
    folder with the decoding graph (``HCLG.fst``, or ``HCLr.fst`` + ``Gr.fst``).
    """
    root = Path(model_dir)
    missing = [
        part
        for part in ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
        if not (root / part).is_file()
    ]
    graph = root / "graph"
    if not graph.is_dir() or not any(graph.glob("*.fst")):
        missing.append("graph/*.fst")
    return missing


def fetch_model(
    name: str,
    *,
    dest_dir: str | os.PathLike[str] = DEFAULT_DEST,
    base_url: str = BASE_URL,
    sha256: str | None = None,
    retries: int = 5,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Make sure ``dest_dir/name`` holds the model, downloading it if needed; return its path.

    :raises FetchError: when the download fails after ``retries`` resumed attempts.
    :raises CorruptArchive: when the archive is refused (it is deleted).
    """
    if not _MODEL_NAME.fullmatch(name):
        raise FetchError(f"{name!r} is not a model name (letters, digits, '.', '-', '_')")
    dest = Path(dest_dir)
    target = dest / name
    if target.is_dir() and not missing_model_parts(target) and not force:
        return target
    known = next((m for m in KNOWN_MODELS.values() if m.name == name), None)
    expected_sha256 = (sha256 or (known.sha256 if known else None) or "").lower() or None
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{name}.zip.part"
    url = base_url.rstrip("/") + f"/{name}.zip"

    total = download(url, part, retries=retries, timeout_s=timeout_s, progress=progress)
    try:
        check_archive(part, name=name, size=total, sha256=expected_sha256)
        unpack_model(part, dest=dest, name=name)
    except CorruptArchive:
        # Resuming a damaged file would only damage it further: the next run starts afresh.
        part.unlink(missing_ok=True)
        raise
    part.unlink()
    return target


def download(
    url: str,
    part: Path,
    *,
    retries: int = 5,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
) -> int:
    """Download ``url`` into ``part``, resuming what is already there; return the total size.

    :raises FetchError: when the server refuses, or the connection keeps breaking.
    """
    attempt = 0
    while True:
        try:
            return _download_once(url, part, timeout_s=timeout_s, progress=progress)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt >= retries:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            attempt += 1
            time.sleep(min(0.5 * 2 ** (attempt - 1), 10.0))
        except (OSError, http.client.HTTPException) as exc:
            # URLError, timeouts, resets and IncompleteRead: keep the bytes, resume from them.
            attempt += 1
            have = part.stat().st_size if part.exists() else 0
            if attempt > retries:
                raise FetchError(
                    f"{url}: download interrupted ({exc}); {have} bytes kept in {part}, "
                    "run again to resume"
                ) from exc
            time.sleep(min(0.5 * 2 ** (attempt - 1), 10.0))


def _download_once(url: str, part: Path, *, timeout_s: float, progress: Progress | None) -> int:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()  # an HTTPError holds the connection open until closed
        if exc.code != 416 or not have:
            raise
        # Range not satisfiable: what we have is the whole file, or more than it.
        if _total_from_content_range(exc.headers.get("Content-Range")) == have:
            return have
        part.unlink()
        return _download_once(url, part, timeout_s=timeout_s, progress=progress)
    with response:
        if have and response.status == 206:
            start, total = _parse_content_range(url, response.headers.get("Content-Range"))
            if start != have:
                raise FetchError(f"{url}: asked to resume at byte {have}, got byte {start}")
            mode = "ab"
        else:
            # A server that ignores Range sends the whole file again.
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length") or ""
            if not length.isdigit():
                raise FetchError(f"{url}: the server did not say how big the file is")
            total = int(length)
        with part.open(mode) as f:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                f.write(block)
                have += len(block)
                if progress is not None:
                    progress(have, total)
            f.flush()
            os.fsync(f.fileno())
    if have < total:
        # urllib may read a short body without complaint; it is a cut connection all the same.
        raise http.client.IncompleteRead(b"", total - have)
    if have > total:
        part.unlink()
        raise FetchError(f"{url}: the server sent {have} bytes after announcing {total}")
    return total


def _parse_content_range(url: str, value: str | None) -> tuple[int, int]:
    """Read ``bytes START-END/TOTAL``.

    >>> _parse_content_range("u", "bytes 100-199/200")
    (100, 200)
    """
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        start = span.partition("-")[0]
        if unit != "bytes":
            raise ValueError(unit)
        return int(start), int(total)
    except ValueError as exc:
        raise FetchError(f"{url}: unreadable Content-Range {value!r}") from exc


def _total_from_content_range(value: str | None) -> int | None:
    """Read the total of ``bytes */TOTAL`` (a 416 answer).

    >>> _total_from_content_range("bytes */4096"), _total_from_content_range(None)
    (4096, None)
    """
    total = (value or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


def check_archive(part: Path, *, name: str, size: int | None, sha256: str | None) -> None:
    """Refuse an archive that is not exactly the announced, intact Vosk model.

    :raises CorruptArchive: naming the first problem found.
    """
    actual = part.stat().st_size
    if size is not None and actual != size:
        raise CorruptArchive(f"{part}: {actual} bytes, the server announced {size}")
    if sha256 is not None:
        digest = _sha256(part)
        if digest != sha256:
            raise CorruptArchive(f"{part}: SHA-256 is {digest}, expected {sha256}")
    try:
        with zipfile.ZipFile(part) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CorruptArchive(f"{part}: not a readable zip archive ({exc})") from exc
    if bad is not None:
        raise CorruptArchive(f"{part}: damaged member {bad!r} (CRC mismatch)")
    for member in names:
        pure = PurePosixPath(member)
        if pure.is_absolute() or ".." in pure.parts or "\\" in member:
            raise CorruptArchive(f"{part}: unsafe member path {member!r}")
        if pure.parts[0] != name:
            raise CorruptArchive(f"{part}: member {member!r} is outside the folder {name}/")
    members = set(names)
    missing = [
        p
        for p in ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
        if f"{name}/{p}" not in members
    ]
    if not any(m.startswith(f"{name}/graph/") and m.endswith(".fst") for m in members):
        missing.append("graph/*.fst")
    if missing:
        raise CorruptArchive(f"{part}: not a Vosk model (missing {', '.join(missing)})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_model(part: Path, *, dest: Path, name: str) -> Path:
    """Unpack a checked archive to ``dest/name`` through a temporary folder."""
    staging = dest / f".{name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(part) as archive:
        archive.extractall(staging)
    target = dest / name
    if target.exists():
        shutil.rmtree(target)
    (staging / name).rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, err: TextIO | None = None) -> int:
    """Run ``scripts/fetch_models.py``; return the exit status."""
    err = sys.stderr if err is None else err
    parser = argparse.ArgumentParser(
        prog="fetch_models.py",
        description="Download a Vosk Russian model into models/ and check it.",
        epilog="\n".join(
            f"  {key}: {m.name} ({m.size_text}): {m.about}" for key, m in KNOWN_MODELS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"small, big, or a full model name (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--dest", default=str(DEFAULT_DEST), help="folder to unpack into")
    parser.add_argument("--sha256", help="expected SHA-256 of the zip archive")
    parser.add_argument("--base-url", default=BASE_URL, help="where <name>.zip is served")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args(argv)

    name = KNOWN_MODELS[args.model].name if args.model in KNOWN_MODELS else args.model
    bar = _ByteProgress(err) if _isatty(err) else None
    try:
        path = fetch_model(
            name,
            dest_dir=args.dest,
            base_url=args.base_url,
            sha256=args.sha256,
            progress=bar,
            force=args.force,
        )
    except FetchError as exc:
        if bar is not None:
            bar.close()
        err.write(f"error: {exc}\n")
        return 1
    if bar is not None:
        bar.close()
    err.write(f"{name} is ready in {path}\nset VOSK_MODEL_PATH={path}\n")
    return 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ByteProgress:
    """``[#####-----]  12.0/45.0 MB`` redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return
        self._last = now
        filled = self._width * done // total if total else 0
        bar = "#" * filled + "-" * (self._width - filled)
        of = f"/{total / 1e6:.1f}" if total else ""
        self._stream.write(f"\r[{bar}] {done / 1e6:6.1f}{of} MB")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._drawn = False
