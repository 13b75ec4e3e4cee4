"""audio.py: what MixMonitor writes is accepted, everything else is refused with a clear error."""

from __future__ import annotations

import os
import subprocess
from array import array
from pathlib import Path

import pytest

from callcenter.speech.audio import (
    AudioMissing,
    AudioTooLong,
    CorruptAudio,
    EmptyFile,
    MonoPcm,
    NotAudio,
    TruncatedAudio,
    UnsupportedAudio,
    open_audio,
)
from tests.speech.conftest import (
    RECORDING_DURATIONS_S,
    SHORTEST,
    WAVE_FORMAT_EXTENSIBLE,
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    interleave,
    read_pcm,
    wav_header,
    write_pcm_wav,
)


def read_all(audio: MonoPcm, frames: int = 4000) -> bytes:
    return b"".join(audio.chunks(frames))


@pytest.fixture(scope="module")
def shortest_pcm(recordings: dict[str, Path]) -> bytes:
    return read_pcm(recordings[SHORTEST])[0]


# --- what MixMonitor writes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDING_DURATIONS_S))
def test_mixmonitor_recording_opens_as_its_own_pcm(recordings: dict[str, Path], name: str) -> None:
    audio = open_audio(recordings[name])

    pcm, rate = read_pcm(recordings[name])
    assert (audio.source.container, audio.source.codec) == ("wav", "pcm_s16le")
    assert audio.sample_rate == rate == 8000
    assert audio.frames == len(pcm) // 2
    assert audio.duration_s == pytest.approx(RECORDING_DURATIONS_S[name], abs=0.1)
    assert read_all(audio) == pcm


def test_chunks_have_the_asked_number_of_frames(recordings: dict[str, Path]) -> None:
    audio = open_audio(recordings[SHORTEST])

    sizes = [len(c) for c in audio.chunks(4000)]

    assert all(size == 8000 for size in sizes[:-1])
    assert 0 < sizes[-1] <= 8000
    assert sum(sizes) == audio.frames * 2


@pytest.mark.parametrize("name", ["mulaw", "alaw", "stereo", "16k", "48k"])
def test_variant_is_accepted_with_the_same_duration(
    variants: dict[str, Path], recordings: dict[str, Path], name: str
) -> None:
    original = open_audio(recordings[SHORTEST])

    audio = open_audio(variants[name])

    assert audio.duration_s == pytest.approx(original.duration_s, abs=1e-9)
    assert len(read_all(audio)) == audio.frames * 2


@pytest.mark.parametrize(("name", "codec"), [("mulaw", "pcm_mulaw"), ("alaw", "pcm_alaw")])
def test_g711_decodes_close_to_the_original(
    variants: dict[str, Path], shortest_pcm: bytes, name: str, codec: str
) -> None:
    audio = open_audio(variants[name])

    decoded = array("h", read_all(audio))
    original = array("h", shortest_pcm)
    assert audio.source.codec == codec
    assert audio.sample_rate == 8000
    assert len(decoded) == len(original)
    # G.711 keeps about 4 significant bits per segment: the error stays within 1/16 of the value.
    assert all(abs(d - o) <= abs(o) / 16 + 16 for d, o in zip(decoded, original, strict=True))


def test_stereo_with_both_parties_alike_downmixes_to_the_original(
    variants: dict[str, Path], shortest_pcm: bytes
) -> None:
    audio = open_audio(variants["stereo"])

    assert audio.source.channels == 2
    assert read_all(audio, frames=333) == shortest_pcm


def test_stereo_downmix_averages_the_two_channels(tmp_path: Path, shortest_pcm: bytes) -> None:
    silence = bytes(len(shortest_pcm))
    path = write_pcm_wav(
        tmp_path / "d.wav", interleave(shortest_pcm, silence), rate=8000, channels=2
    )

    mixed = array("h", read_all(open_audio(path)))

    assert mixed.tolist() == [s >> 1 for s in array("h", shortest_pcm)]


@pytest.mark.parametrize(("name", "rate"), [("16k", 16000), ("48k", 48000)])
def test_wideband_is_passed_at_its_own_rate(
    variants: dict[str, Path], name: str, rate: int
) -> None:
    audio = open_audio(variants[name])

    assert audio.sample_rate == rate
    assert audio.source.sample_rate == rate


def test_8_bit_pcm_is_accepted(tmp_path: Path) -> None:
    data = bytes([0, 128, 255, 128])
    path = tmp_path / "u8.wav"
    path.write_bytes(
        wav_header(tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=8, data_size=4) + data
    )

    audio = open_audio(path)

    assert audio.source.codec == "pcm_u8"
    assert array("h", read_all(audio)).tolist() == [-32768, 0, 32512, 0]


def test_extensible_header_and_extra_chunks_are_understood(
    tmp_path: Path, shortest_pcm: bytes
) -> None:
    # An odd-sized LIST chunk is padded to an even length before the data chunk.
    extra = b"LIST" + (5).to_bytes(4, "little") + b"INFOx" + b"\x00"
    header = wav_header(
        tag=WAVE_FORMAT_EXTENSIBLE,
        channels=1,
        rate=8000,
        bits=16,
        data_size=len(shortest_pcm),
        extra_chunks=extra,
        subformat=WAVE_FORMAT_PCM,
    )
    path = tmp_path / "ext.wav"
    path.write_bytes(header + shortest_pcm + b"LIST\x00\x00\x00\x00")

    audio = open_audio(path)

    assert audio.source.codec == "pcm_s16le"
    assert read_all(audio) == shortest_pcm


def test_header_only_wav_is_no_audio_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "never-bridged.wav"
    path.write_bytes(wav_header(tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=16, data_size=0))
    assert path.stat().st_size == 44

    audio = open_audio(path)

    assert not audio.has_audio
    assert (audio.frames, audio.duration_s) == (0, 0.0)
    assert read_all(audio) == b""


def test_streamed_wav_without_sizes_reads_to_the_end(tmp_path: Path, shortest_pcm: bytes) -> None:
    # What `ffmpeg -f wav pipe:` writes: both sizes 0xFFFFFFFF.
    header = wav_header(
        tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=16, data_size=0xFFFFFFFF,
        riff_size=0xFFFFFFFF,
    )  # fmt: skip
    path = tmp_path / "streamed.wav"
    path.write_bytes(header + shortest_pcm)

    assert read_all(open_audio(path)) == shortest_pcm


# --- bad input ----------------------------------------------------------------------------------


def test_garbage_named_wav_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n" * 7)

    with pytest.raises(NotAudio, match=r"garbage\.wav: not a recording"):
        open_audio(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()

    with pytest.raises(EmptyFile, match=r"empty\.wav: empty file \(0 bytes\)"):
        open_audio(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioMissing, match="no such file"):
        open_audio(tmp_path / "gone.wav")


def test_directory_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(NotAudio, match="is a directory"):
        open_audio(tmp_path)


@pytest.mark.parametrize("keep", [4, 11, 20, 36, 40])
def test_truncated_header_is_refused(
    recordings: dict[str, Path], tmp_path: Path, keep: int
) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(recordings[SHORTEST].read_bytes()[:keep])

    with pytest.raises(TruncatedAudio, match="truncated header"):
        open_audio(path)


def test_data_size_larger_than_the_file_is_refused(
    recordings: dict[str, Path], tmp_path: Path
) -> None:
    whole = recordings[SHORTEST].read_bytes()
    path = tmp_path / "cut-data.wav"
    path.write_bytes(whole[:10_044])

    with pytest.raises(TruncatedAudio, match=r"announces 141440 bytes of audio but only 10000"):
        open_audio(path)


def test_unfinished_mixmonitor_header_is_refused(tmp_path: Path, shortest_pcm: bytes) -> None:
    # Asterisk writes zero sizes on open and the real ones on close.
    header = wav_header(
        tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=16, data_size=0, riff_size=0
    )
    path = tmp_path / "still-recording.wav"
    path.write_bytes(header + shortest_pcm)

    with pytest.raises(TruncatedAudio, match="still being written"):
        open_audio(path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"block_align": 3}, "block align 3"),
        ({"channels": 0}, "0 channels"),
        ({"rate": 0}, "0 Hz"),
        ({"bits": 0, "block_align": 2}, "0 bits per sample"),
        ({"tag": WAVE_FORMAT_MULAW, "bits": 16}, "pcm_mulaw with 16 bits"),
    ],
)
def test_header_with_a_wrong_format_is_refused(
    tmp_path: Path, shortest_pcm: bytes, fields: dict[str, int], message: str
) -> None:
    spec = {"tag": WAVE_FORMAT_PCM, "channels": 1, "rate": 8000, "bits": 16} | fields
    path = tmp_path / "lying.wav"
    path.write_bytes(wav_header(**spec, data_size=len(shortest_pcm)) + shortest_pcm)

    with pytest.raises(CorruptAudio, match=message):
        open_audio(path)


def test_unknown_codec_without_ffmpeg_is_unsupported(tmp_path: Path, shortest_pcm: bytes) -> None:
    path = tmp_path / "odd-codec.wav"
    header = wav_header(tag=0x7777, channels=1, rate=8000, bits=16, data_size=len(shortest_pcm))
    path.write_bytes(header + shortest_pcm)

    with pytest.raises(UnsupportedAudio, match=r"wav/0x7777 audio needs ffmpeg"):
        open_audio(path, ffmpeg=None)


def test_recording_over_the_maximum_length_is_refused(recordings: dict[str, Path]) -> None:
    with pytest.raises(AudioTooLong, match=r"8\.8 s of audio, longer than the maximum of 5 s"):
        open_audio(recordings[SHORTEST], max_duration_s=5)

    assert open_audio(recordings[SHORTEST], max_duration_s=8.84).frames == 70720


# --- through ffmpeg -----------------------------------------------------------------------------


def convert(ffmpeg: str, source: Path, target: Path, *codec: str) -> Path:
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)],
        check=True,
    )
    return target


@pytest.mark.parametrize(
    ("suffix", "codec", "container"),
    [
        (".gsm", ["-c:a", "libgsm", "-f", "gsm"], "gsm"),
        (".WAV", ["-c:a", "libgsm_ms"], "wav"),
        (".mp3", ["-c:a", "libmp3lame"], "mp3"),
    ],
)
def test_gsm_and_mp3_are_decoded_by_ffmpeg(
    ffmpeg: str,
    recordings: dict[str, Path],
    tmp_path: Path,
    suffix: str,
    codec: list[str],
    container: str,
) -> None:
    path = convert(ffmpeg, recordings[SHORTEST], tmp_path / f"call{suffix}", *codec)

    audio = open_audio(path)

    assert audio.source.container == container
    assert audio.sample_rate == 16000
    assert audio.duration_s == pytest.approx(8.84, abs=0.1)
    assert len(read_all(audio)) == audio.frames * 2


def test_wav_rate_outside_the_native_range_is_resampled_by_ffmpeg(
    ffmpeg: str, recordings: dict[str, Path], tmp_path: Path
) -> None:
    path = convert(ffmpeg, recordings[SHORTEST], tmp_path / "96k.wav", "-ar", "96000")

    audio = open_audio(path)

    assert (audio.source.sample_rate, audio.sample_rate) == (96000, 16000)
    assert audio.duration_s == pytest.approx(8.84, abs=0.01)


def test_file_name_is_never_read_by_a_shell(
    ffmpeg: str, recordings: dict[str, Path], tmp_path: Path
) -> None:
    name = "$(touch pwned); `touch pwned2` | pipe:1 -y.mp3"
    path = convert(ffmpeg, recordings[SHORTEST], tmp_path / "call.mp3", "-c:a", "libmp3lame")
    path = path.rename(tmp_path / name)

    audio = open_audio(path)

    assert audio.duration_s == pytest.approx(8.84, abs=0.1)
    assert sorted(os.listdir(tmp_path)) == [name]
    assert not Path("pwned").exists()


def test_broken_mp3_reports_what_ffmpeg_said(ffmpeg: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"ID3" + bytes(200))

    with pytest.raises(NotAudio, match=r"broken\.mp3: not a readable mp3 recording \(ffmpeg: "):
        open_audio(path)


def test_ffmpeg_decoded_audio_over_the_maximum_is_refused(
    ffmpeg: str, recordings: dict[str, Path], tmp_path: Path
) -> None:
    path = convert(
        ffmpeg, recordings[SHORTEST], tmp_path / "call.gsm", "-c:a", "libgsm", "-f", "gsm"
    )

    with pytest.raises(AudioTooLong, match="longer than the maximum of 3 s"):
        open_audio(path, max_duration_s=3)


def test_mp3_without_ffmpeg_names_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "call.mp3"
    path.write_bytes(b"ID3" + bytes(200))

    with pytest.raises(UnsupportedAudio, match=r"mp3 audio needs ffmpeg.*apt-get install ffmpeg"):
        open_audio(path, ffmpeg=str(tmp_path / "no-such-ffmpeg"))
