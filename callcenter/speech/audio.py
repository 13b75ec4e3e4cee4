"""Validate a call recording and turn it into 16-bit mono PCM for the recognizer.

This module only looks at file formats; it never decodes speech (that is ``transcribe.py``).
It accepts what Asterisk's MixMonitor writes: WAV with 16-bit or 8-bit PCM, µ-law or A-law,
mono or stereo, at 8 kHz up to 48 kHz, which it reads itself in pure Python (``audioop`` is
gone in Python 3.13). Anything else it recognises (GSM, MP3, Ogg, FLAC, other WAV codecs) is
converted by ffmpeg, run with an argument list and never through a shell.

Every check runs before any audio is read, so a bad file fails fast with a message that says
what is wrong. A header-only WAV (what MixMonitor leaves when the call was never bridged) is
not an error: it opens as a recording with no audio.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from callcenter.errors import CallcenterError

#: Longest recording accepted unless the caller says otherwise (a clinic call is minutes long;
#: a day-long file is a stuck MixMonitor, and decoding it would hold a worker for hours).
DEFAULT_MAX_DURATION_S = 4 * 3600.0
#: Sample rates handed to the recognizer as they are; Vosk resamples them to the model's rate.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
#: Rate ffmpeg converts everything else to (the rate Vosk's Russian models are trained at).
FFMPEG_SAMPLE_RATE = 16000
FFMPEG_TIMEOUT_S = 600.0
#: Recordings with more channels than this are not telephone calls.
MAX_CHANNELS = 8

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_ALAW = 0x0006
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_WAVE_CODECS = {
    0x0001: "pcm",
    0x0002: "adpcm_ms",
    0x0003: "pcm_float",
    0x0006: "pcm_alaw",
    0x0007: "pcm_mulaw",
    0x0011: "adpcm_ima",
    0x0031: "gsm_ms",
    0x0055: "mp3",
}
#: A data or RIFF size of 0xFFFFFFFF means "until the end of the file" (streamed WAV).
_SIZE_UNKNOWN = 0xFFFFFFFF
_GSM_FRAME_BYTES = 33


class AudioError(CallcenterError):
    """The file is not a recording we can turn into audio; the message says why."""


class AudioMissing(AudioError):
    """The file does not exist or cannot be read."""


class EmptyFile(AudioError):
    """The file has zero bytes."""


class NotAudio(AudioError):
    """The file is not in any audio format we know."""


class CorruptAudio(AudioError):
    """The header contradicts itself or the file."""


class TruncatedAudio(CorruptAudio):
    """The file ends before its header or its audio does."""


class UnsupportedAudio(AudioError):
    """The format is audio, but not one we can decode here."""


class AudioTooLong(AudioError):
    """The recording is longer than the configured maximum."""


@dataclass(frozen=True, slots=True)
class SourceFormat:
    """What the file holds: container, codec, channels and sample rate (0 when unknown)."""

    container: str
    codec: str
    channels: int
    sample_rate: int


class _PcmSource(Protocol):
    def chunks(self, frames: int) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class MonoPcm:
    """A validated recording as 16-bit little-endian mono PCM, read chunk by chunk."""

    path: str
    source: SourceFormat
    sample_rate: int
    frames: int
    _reader: _PcmSource

    @property
    def duration_s(self) -> float:
        """Return the length of the audio in seconds."""
        return self.frames / self.sample_rate

    @property
    def has_audio(self) -> bool:
        """Return False for a recording with no samples (a call that was never bridged)."""
        return self.frames > 0

    def chunks(self, frames: int) -> Iterator[bytes]:
        """Yield the PCM in pieces of ``frames`` samples (the last one may be shorter).

        :raises TruncatedAudio: when the file shrank after it was validated.
        """
        if frames <= 0:
            raise ValueError(f"frames must be positive, got {frames}")
        return self._reader.chunks(frames)


def open_audio(
    path: str | os.PathLike[str],
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    ffmpeg: str | None = "ffmpeg",
) -> MonoPcm:
    """Validate a recording and return it as mono PCM ready for the recognizer.

    ``ffmpeg`` is the program used for formats not read natively (None: never use it).

    :raises AudioError: (a subclass naming the problem) when the file cannot be used.
    """
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        with open(name, "rb") as f:
            head = f.read(64)
    except FileNotFoundError as exc:
        raise AudioMissing(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise NotAudio(f"{name}: is a directory, not a recording") from exc
    except OSError as exc:
        raise AudioMissing(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if size == 0:
        raise EmptyFile(f"{name}: empty file (0 bytes)")

    if head.startswith(b"RIFF"):
        if len(head) < 12:
            raise TruncatedAudio(f"{name}: truncated header ({size} bytes)")
        if head[8:12] == b"WAVE":
            return _open_wav(name, size, max_duration_s=max_duration_s, ffmpeg=ffmpeg)
    container = _sniff_container(name, head, size)
    if container is None:
        raise NotAudio(f"{name}: not a recording (unknown format, starts with {head[:8]!r})")
    return _decode_with_ffmpeg(
        name,
        SourceFormat(container, container, 0, 0),
        max_duration_s=max_duration_s,
        ffmpeg=ffmpeg,
    )


def _sniff_container(name: str, head: bytes, size: int) -> str | None:
    """Name the container ffmpeg should decode, from the first bytes; None if not audio."""
    if head.startswith(b"RF64") and head[8:12] == b"WAVE":
        return "rf64"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "mp3"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if _looks_like_raw_gsm(name, size):
        return "gsm"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """Tell whether bytes start with an MPEG audio frame header (an MP3 without ID3 tag).

    >>> _is_mpeg_audio_frame(bytes([0xFF, 0xFB, 0x90, 0x64])), _is_mpeg_audio_frame(b"RIFF")
    (True, False)
    """
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x03, (head[1] >> 1) & 0x03
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x03
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _looks_like_raw_gsm(name: str, size: int) -> bool:
    """Tell whether a file is headerless GSM 06.10 (Asterisk's ``.gsm``): 33-byte frames,
    each starting with the 0xD signature nibble."""
    if size % _GSM_FRAME_BYTES:
        return False
    with open(name, "rb") as f:
        sample = f.read(_GSM_FRAME_BYTES * 64)
    return all(b >> 4 == 0xD for b in sample[::_GSM_FRAME_BYTES])


# --- WAV ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WavFmt:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int


def _open_wav(name: str, size: int, *, max_duration_s: float, ffmpeg: str | None) -> MonoPcm:
    with open(name, "rb") as f:
        riff_size = struct.unpack("<I", f.read(12)[4:8])[0]
        fmt: _WavFmt | None = None
        pos = 12
        while True:
            header = f.read(8)
            if len(header) < 8:
                what = "no data chunk" if fmt is not None else "no fmt chunk"
                raise TruncatedAudio(f"{name}: truncated header ({what} in {size} bytes)")
            chunk_id, chunk_size = struct.unpack("<4sI", header)
            pos += 8
            if chunk_id == b"data":
                break
            if chunk_id == b"fmt ":
                # A real fmt chunk is 16 to 40 bytes; never read a lying size's worth.
                body = f.read(min(chunk_size, 4096))
                if len(body) < min(chunk_size, 16):
                    raise TruncatedAudio(f"{name}: truncated header (fmt chunk cut short)")
                fmt = _parse_fmt(name, body)
            # Chunks are padded to an even length.
            pos += chunk_size + (chunk_size & 1)
            f.seek(pos)
    if fmt is None:
        raise CorruptAudio(f"{name}: data chunk before the fmt chunk")
    data_offset = pos
    available = size - data_offset
    if chunk_size == _SIZE_UNKNOWN:
        chunk_size = available
    if chunk_size == 0:
        if available > 0 and riff_size == 0:
            # Asterisk writes zero sizes when it opens the file and the real ones when it
            # closes it: this recording is still being written, or Asterisk died first.
            raise TruncatedAudio(
                f"{name}: header not finalised ({available} bytes of audio behind a "
                "zero-size header): the recording is still being written or Asterisk "
                "stopped before closing it"
            )
        source = SourceFormat("wav", _codec_name(fmt), fmt.channels, fmt.sample_rate)
        return MonoPcm(name, source, fmt.sample_rate, 0, _BytesSource(b""))
    if chunk_size > available:
        raise TruncatedAudio(
            f"{name}: truncated: the header announces {chunk_size} bytes of audio "
            f"but only {available} follow it"
        )

    source = SourceFormat("wav", _codec_name(fmt), fmt.channels, fmt.sample_rate)
    decode = _native_decoder(fmt)
    if decode is None or not MIN_SAMPLE_RATE <= fmt.sample_rate <= MAX_SAMPLE_RATE:
        return _decode_with_ffmpeg(name, source, max_duration_s=max_duration_s, ffmpeg=ffmpeg)
    frames = chunk_size // fmt.block_align
    _check_duration(name, frames / fmt.sample_rate, max_duration_s)
    reader = _WavSource(
        name,
        offset=data_offset,
        size=frames * fmt.block_align,
        block_align=fmt.block_align,
        channels=fmt.channels,
        decode=decode,
    )
    return MonoPcm(name, source, fmt.sample_rate, frames, reader)


def _parse_fmt(name: str, body: bytes) -> _WavFmt:
    """Read a WAV fmt chunk and check that it does not contradict itself."""
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        # The real codec is the first two bytes of the SubFormat GUID (offset 24).
        if len(body) < 26:
            raise TruncatedAudio(f"{name}: truncated header (WAVE_FORMAT_EXTENSIBLE fmt chunk)")
        tag = struct.unpack("<H", body[24:26])[0]
    if channels == 0 or rate == 0 or block_align == 0:
        raise CorruptAudio(
            f"{name}: corrupt header ({channels} channels, {rate} Hz, block align {block_align})"
        )
    if channels > MAX_CHANNELS:
        raise UnsupportedAudio(f"{name}: {channels} channels (at most {MAX_CHANNELS})")
    fmt = _WavFmt(tag, channels, rate, block_align, bits)
    if tag in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_ALAW, _WAVE_FORMAT_MULAW):
        if bits == 0 or bits > 64:
            raise CorruptAudio(f"{name}: corrupt header ({bits} bits per sample)")
        if tag != _WAVE_FORMAT_PCM and bits != 8:
            raise CorruptAudio(f"{name}: corrupt header ({_codec_name(fmt)} with {bits} bits)")
        expected = channels * ((bits + 7) // 8)
        if block_align != expected:
            raise CorruptAudio(
                f"{name}: corrupt header (block align {block_align} for {channels} "
                f"channel(s) of {bits}-bit samples, expected {expected})"
            )
    return fmt


def _codec_name(fmt: _WavFmt) -> str:
    codec = _WAVE_CODECS.get(fmt.format_tag, f"0x{fmt.format_tag:04x}")
    if codec == "pcm":
        return "pcm_u8" if fmt.bits == 8 else f"pcm_s{fmt.bits}le"
    return codec


def _native_decoder(fmt: _WavFmt) -> Callable[[bytes], bytes] | None:
    """Return the pure-Python decoder to 16-bit PCM for this format, or None (use ffmpeg)."""
    if fmt.format_tag == _WAVE_FORMAT_PCM and fmt.bits == 16:
        return bytes
    if fmt.format_tag == _WAVE_FORMAT_PCM and fmt.bits == 8:
        return decode_u8
    if fmt.format_tag == _WAVE_FORMAT_MULAW:
        return decode_ulaw
    if fmt.format_tag == _WAVE_FORMAT_ALAW:
        return decode_alaw
    return None


class _WavSource:
    """Reads the data chunk lazily, so a long recording is never all in memory."""

    def __init__(
        self,
        path: str,
        *,
        offset: int,
        size: int,
        block_align: int,
        channels: int,
        decode: Callable[[bytes], bytes],
    ) -> None:
        self._path = path
        self._offset = offset
        self._size = size
        self._block_align = block_align
        self._channels = channels
        self._decode = decode

    def chunks(self, frames: int) -> Iterator[bytes]:
        step = frames * self._block_align
        remaining = self._size
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            while remaining > 0:
                raw = f.read(min(step, remaining))
                if len(raw) < min(step, remaining):
                    raise TruncatedAudio(f"{self._path}: the file shrank while it was read")
                remaining -= len(raw)
                pcm = self._decode(raw)
                yield downmix_to_mono(pcm, self._channels) if self._channels > 1 else pcm


class _BytesSource:
    def __init__(self, pcm: bytes) -> None:
        self._pcm = pcm

    def chunks(self, frames: int) -> Iterator[bytes]:
        step = frames * 2
        for start in range(0, len(self._pcm), step):
            yield self._pcm[start : start + step]


def _check_duration(name: str, duration_s: float, max_duration_s: float) -> None:
    if duration_s > max_duration_s:
        raise AudioTooLong(
            f"{name}: {duration_s:.1f} s of audio, longer than the maximum of {max_duration_s:g} s"
        )


# --- ffmpeg ---------------------------------------------------------------------------------


def _decode_with_ffmpeg(
    name: str, source: SourceFormat, *, max_duration_s: float, ffmpeg: str | None
) -> MonoPcm:
    """Convert a format we do not read ourselves to mono PCM at FFMPEG_SAMPLE_RATE."""
    what = f"{source.container}/{source.codec}" if source.container == "wav" else source.container
    program = shutil.which(ffmpeg) if ffmpeg else None
    if program is None:
        raise UnsupportedAudio(
            f"{name}: {what} audio needs ffmpeg to decode, and ffmpeg is not installed "
            "(apt-get install ffmpeg)"
        )
    command = [
        program,
        *("-nostdin", "-hide_banner", "-loglevel", "error"),
        # "file:" keeps a name such as "pipe:1" or "http://…" from being read as a protocol.
        *("-i", "file:" + str(Path(name).resolve())),
        *("-map", "0:a:0", "-vn"),
        # One second past the limit is enough to tell "too long" without decoding it all.
        *("-t", f"{max_duration_s + 1:.3f}"),
        *("-ac", "1", "-ar", str(FFMPEG_SAMPLE_RATE), "-acodec", "pcm_s16le", "-f", "s16le"),
        "pipe:1",
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnsupportedAudio(
            f"{name}: ffmpeg did not finish decoding {what} in {FFMPEG_TIMEOUT_S:g} s"
        ) from exc
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise NotAudio(f"{name}: not a readable {what} recording (ffmpeg: {reason})")
    pcm = done.stdout[: len(done.stdout) - len(done.stdout) % 2]
    frames = len(pcm) // 2
    _check_duration(name, frames / FFMPEG_SAMPLE_RATE, max_duration_s)
    return MonoPcm(name, source, FFMPEG_SAMPLE_RATE, frames, _BytesSource(pcm))


# --- sample conversions (pure, table-driven) -------------------------------------------------


def _ulaw_sample(code: int) -> int:
    """Decode one G.711 µ-law byte to a linear sample (ITU-T G.711, as in Sun's g711.c)."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def _alaw_sample(code: int) -> int:
    """Decode one G.711 A-law byte to a linear sample (ITU-T G.711, as in Sun's g711.c)."""
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    magnitude = ((code & 0x0F) << 4) + 8
    if exponent:
        magnitude = (magnitude + 0x100) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


def _table(sample: Callable[[int], int]) -> list[bytes]:
    return [struct.pack("<h", sample(code)) for code in range(256)]


_ULAW = _table(_ulaw_sample)
_ALAW = _table(_alaw_sample)
_U8 = _table(lambda code: (code - 128) << 8)


def decode_ulaw(data: bytes) -> bytes:
    """Decode G.711 µ-law bytes to 16-bit little-endian PCM.

    >>> struct.unpack("<4h", decode_ulaw(bytes([0x00, 0x80, 0xFF, 0x7F])))
    (-32124, 32124, 0, 0)
    """
    return b"".join(map(_ULAW.__getitem__, data))


def decode_alaw(data: bytes) -> bytes:
    """Decode G.711 A-law bytes to 16-bit little-endian PCM.

    >>> struct.unpack("<4h", decode_alaw(bytes([0x2A, 0xAA, 0x55, 0xD5])))
    (-32256, 32256, -8, 8)
    """
    return b"".join(map(_ALAW.__getitem__, data))


def decode_u8(data: bytes) -> bytes:
    """Decode unsigned 8-bit PCM (WAV's 8-bit format) to 16-bit little-endian PCM.

    >>> struct.unpack("<3h", decode_u8(bytes([0, 128, 255])))
    (-32768, 0, 32512)
    """
    return b"".join(map(_U8.__getitem__, data))


def downmix_to_mono(pcm: bytes, channels: int) -> bytes:
    """Average interleaved 16-bit little-endian channels into one.

    Averaging never clips; the lower level costs nothing, as the recognizer normalises it.

    >>> struct.unpack("<2h", downmix_to_mono(struct.pack("<4h", 100, 200, -3, -5), 2))
    (150, -4)
    """
    samples = array("h", pcm)
    if channels == 2:
        mixed = array("h", map(_average2, samples[0::2], samples[1::2]))
    else:
        columns = [samples[c::channels] for c in range(channels)]
        mixed = array("h", (sum(frame) // channels for frame in zip(*columns, strict=True)))
    return mixed.tobytes()


def _average2(left: int, right: int) -> int:
    return (left + right) >> 1
