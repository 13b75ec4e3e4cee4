"""Decode a recording into words with Vosk.

One ``Model`` per process (it takes seconds and hundreds of MB to load) and one
``KaldiRecognizer`` per file, fed in chunks with the documented
``AcceptWaveform``/``Result``/``FinalResult`` loop, keeping every segment. Decoding is slow
CPU work: call these functions from a worker process or an executor, never from an event loop
or a web request. ``transcribe_file`` is a plain top-level function with picklable arguments
and result, ready for ``ProcessPoolExecutor.map``. A file decodes to the same transcript every
time (see ``_restart_dither_noise``), provided a process decodes one file at a time.

Reading and checking the file is ``audio.py``'s job; this module only decodes.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import vosk

from callcenter.errors import ConfigError
from callcenter.speech.audio import DEFAULT_MAX_DURATION_S, AudioError, MonoPcm, open_audio
from callcenter.speech.models_fetch import missing_model_parts

log = logging.getLogger(__name__)

#: Frames per AcceptWaveform call: the figure of vosk-api's own examples. Vosk closes a
#: segment only between calls, so the chunk size shapes the segments (and the words).
CHUNK_FRAMES = 4000

_FETCH_HINT = (
    "download a Russian model with `python scripts/fetch_models.py` (see models/README.md) "
    "and point VOSK_MODEL_PATH (or --model) at its folder"
)


class ModelNotFound(ConfigError):
    """The Vosk model folder is missing or is not a Vosk model."""


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word, with its start and end in seconds and Vosk's confidence (0–1)."""

    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """The words of one recording; no words and ``duration_s == 0`` mean "no audio"."""

    text: str
    duration_s: float
    words: tuple[Word, ...]

    @property
    def has_audio(self) -> bool:
        """Return False for a recording without audio (a call that was never bridged)."""
        return self.duration_s > 0

    def to_json(self) -> dict[str, Any]:
        """Return the transcript as the JSON object of the command-line contract."""
        return {
            "text": self.text,
            "duration_s": self.duration_s,
            "words": [
                {"word": w.word, "start": w.start, "end": w.end, "conf": w.conf} for w in self.words
            ],
        }


@dataclass(frozen=True, slots=True)
class TranscribeError:
    """Why one file could not be transcribed (a result, not an exception: the batch goes on)."""

    file: str
    error: str


_model_lock = threading.Lock()
_model: tuple[str, vosk.Model] | None = None


def load_model(model_path: str | os.PathLike[str]) -> vosk.Model:
    """Return this process's Vosk model, loading it on first use.

    The process keeps one model: asking for another path replaces it.

    :raises ModelNotFound: when the folder is missing or is not a Vosk model.
    """
    global _model
    path = os.path.realpath(model_path)
    with _model_lock:
        if _model is not None and _model[0] == path:
            return _model[1]
        if not os.path.isdir(path):
            raise ModelNotFound(f"Vosk model not found at {os.fspath(model_path)!r}: {_FETCH_HINT}")
        missing = missing_model_parts(path)
        if missing:
            raise ModelNotFound(
                f"{os.fspath(model_path)!r} is not a Vosk model (missing {', '.join(missing)}): "
                f"{_FETCH_HINT}"
            )
        # Kaldi logs every loading step to stderr otherwise.
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(path)
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelNotFound(
                f"Vosk could not load the model at {os.fspath(model_path)!r} "
                f"(damaged or incompatible files?): {_FETCH_HINT}"
            ) from exc
        _model = (path, model)
        return model


def transcribe_audio(audio: MonoPcm, model: vosk.Model) -> Transcript:
    """Decode validated audio with a fresh recognizer, keeping every segment's words.

    :raises AudioError: when the file changes under us while it is read.
    """
    if not audio.has_audio:
        return Transcript(text="", duration_s=0.0, words=())
    _restart_dither_noise()
    recognizer = vosk.KaldiRecognizer(model, float(audio.sample_rate))
    recognizer.SetWords(True)
    segments = []
    for chunk in audio.chunks(CHUNK_FRAMES):
        if recognizer.AcceptWaveform(chunk):
            # A segment ends at each pause; Result() hands it over and forgets it, so a loop
            # keeping only FinalResult() would lose all but the last one.
            segments.append(recognizer.Result())
    segments.append(recognizer.FinalResult())
    return _build_transcript(segments, duration_s=round(audio.duration_s, 3))


def _restart_dither_noise() -> None:
    """Restart the C library's ``rand()`` sequence, which Kaldi's dither draws from.

    Kaldi adds random noise to every frame (``--dither``, on in Vosk's models) from the
    process-wide ``rand()``, so a file's words depended on what the process decoded before
    it. Seeding it as a fresh process starts (``srand(1)``) makes a file decode the same way
    every time, in any worker, as long as one file at a time is decoded per process.
    """
    srand = _c_srand()
    if srand is not None:
        srand(1)


@functools.cache
def _c_srand() -> Any:
    try:
        # The C library the process, and libvosk with it, is linked against.
        return ctypes.CDLL(None).srand
    except (OSError, TypeError, AttributeError):  # pragma: no cover - no dlopen(NULL) (Windows)
        return None


def _build_transcript(segments: Iterable[str], *, duration_s: float) -> Transcript:
    """Join Vosk's JSON segments into one transcript.

    >>> segment = '{"result": [{"conf": 1.0, "end": 0.5, "start": 0.2, "word": "да"}], '
    >>> _build_transcript([segment + '"text": "да"}', '{"text": ""}'], duration_s=1.0)
    Transcript(text='да', duration_s=1.0, words=(Word(word='да', start=0.2, end=0.5, conf=1.0),))
    """
    texts: list[str] = []
    words: list[Word] = []
    for raw in segments:
        segment = json.loads(raw)
        if segment.get("text"):
            texts.append(segment["text"])
        words.extend(
            Word(word=w["word"], start=w["start"], end=w["end"], conf=w["conf"])
            for w in segment.get("result", ())
        )
    return Transcript(text=" ".join(texts), duration_s=duration_s, words=tuple(words))


def transcribe_path(
    path: str | os.PathLike[str],
    *,
    model_path: str | os.PathLike[str],
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> Transcript:
    """Validate and decode one recording with this process's model.

    :raises ModelNotFound: when the model cannot be loaded.
    :raises AudioError: when the file is not a usable recording.
    """
    model = load_model(model_path)
    return transcribe_audio(open_audio(path, max_duration_s=max_duration_s), model)


def transcribe_file(
    path: str,
    model_path: str,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> Transcript | TranscribeError:
    """Transcribe one recording, returning bad input as a TranscribeError value.

    Meant for worker processes (``ProcessPoolExecutor.map(transcribe_file, paths, ...)``).
    A missing model is a deployment error, not bad input: it raises.

    :raises ModelNotFound: when the model cannot be loaded.
    """
    try:
        return transcribe_path(path, model_path=model_path, max_duration_s=max_duration_s)
    except AudioError as exc:
        log.warning("cannot transcribe %s: %s", path, exc)
        return TranscribeError(file=path, error=str(exc))


def run_transcribe_command(
    paths: Sequence[str],
    *,
    model_path: str,
    out: TextIO,
    err: TextIO,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> int:
    """Print one JSON line per file (transcript or error); return the exit status.

    A line is ``{"file", "text", "duration_s", "words"}`` (plus ``"no_audio": true`` for a
    recording without audio) or ``{"file", "error"}``. The status is 0 when every file was
    transcribed (a recording without audio counts), 1 when some file was bad, 2 when the
    model cannot be loaded (then nothing is printed on ``out``).
    """
    try:
        load_model(model_path)
    except ModelNotFound as exc:
        err.write(f"error: {exc}\n")
        return 2
    progress = _ProgressBar(len(paths), err) if len(paths) > 1 and _isatty(err) else None
    status = 0
    for done, path in enumerate(paths):
        if progress is not None:
            progress.show(done, path)
        result = transcribe_file(path, model_path, max_duration_s)
        if isinstance(result, TranscribeError):
            line: dict[str, Any] = {"file": path, "error": result.error}
            status = 1
        else:
            line = {"file": path, **result.to_json()}
            if not result.has_audio:
                line["no_audio"] = True
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        out.flush()
    if progress is not None:
        progress.close()
    return status


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or bare stream
        return False


class _ProgressBar:
    """``[#####-----] 3/10 name`` redrawn in place on a terminal."""

    def __init__(self, total: int, stream: TextIO, width: int = 24) -> None:
        self._total = total
        self._stream = stream
        self._width = width

    def show(self, done: int, label: str) -> None:
        filled = self._width * done // self._total
        bar = f"[{'#' * filled}{'-' * (self._width - filled)}] {done}/{self._total} "
        room = max(shutil.get_terminal_size().columns - len(bar) - 1, 0)
        name = os.path.basename(label)
        if len(name) > room:
            name = "…" + name[-room + 1 :] if room > 1 else ""
        # \r returns to the start of the line; \x1b[K clears what a longer name left behind.
        self._stream.write(f"\r{bar}{name}\x1b[K")
        self._stream.flush()

    def close(self) -> None:
        self.show(self._total, "done")
        self._stream.write("\n")
        self._stream.flush()
