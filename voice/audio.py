"""Telephony audio at the edges: 8 kHz G.711 µ-law, 20 ms frames; 16-bit PCM inside the pipeline.

µ-law is done with numpy tables because `audioop` is deprecated in 3.11 and removed in 3.13.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_S = FRAME_MS / 1000
FRAME_BYTES_PCM = FRAME_SAMPLES * 2
FRAME_BYTES_ULAW = FRAME_SAMPLES
ULAW_SILENCE = b"\xff"

_BIAS = 0x84


def _build_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> np.ndarray:
    """µ-law code for every 16-bit sample value (index = sample + 32768), as G.711 does it on 14 bits."""
    samples = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), 8159) + (_BIAS >> 2)
    segment = np.maximum(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0)
    code = np.where(segment > 7, 0x7F, (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8)


_DECODE = _build_decode_table()
_ENCODE = _build_encode_table()


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    return _DECODE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32) + 32768
    return _ENCODE[samples].tobytes()


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), src_rate, dst_rate, quality="HQ")


def level_dbfs(pcm: bytes) -> float:
    samples = pcm_to_float(pcm)
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20.0 * np.log10(max(rms, 1e-6))


def split_frames(data: bytes, frame_bytes: int, pad: bytes = b"\x00") -> list[bytes]:
    """Whole frames; the last one padded (µ-law silence is 0xFF, PCM silence 0x00)."""
    frames = [data[i:i + frame_bytes] for i in range(0, len(data), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + pad * (frame_bytes - len(frames[-1]))
    return frames


def wav_bytes(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def read_wav_8k(path: str) -> bytes:
    """A mono/stereo 16-bit WAV file of any rate as 8 kHz mono 16-bit PCM."""
    with wave.open(path, "rb") as src:
        rate, channels, width = src.getframerate(), src.getnchannels(), src.getsampwidth()
        raw = src.readframes(src.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit WAV is supported, got {8 * width}-bit")
    samples = np.frombuffer(raw, dtype=np.int16).reshape(-1, channels).mean(axis=1) / 32768.0
    return float_to_pcm(resample(samples.astype(np.float32), rate, SAMPLE_RATE))
