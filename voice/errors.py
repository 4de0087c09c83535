"""One error type per pipeline stage, each with a code for the call record (as Home Assistant's assist_pipeline).

Whatever a stage's engine raised is wrapped at the stage boundary, so the session has one way out for all of
them: apologise and end the call (voice/session.py `_fail`).
"""

from __future__ import annotations

from typing import ClassVar


class StageError(Exception):
    stage: ClassVar[str] = "pipeline"
    default_code: ClassVar[str] = "pipeline_failed"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        self.code = code or self.default_code
        super().__init__(message or self.code)


class AsrError(StageError):
    stage = "asr"
    default_code = "asr_failed"


class DialogueError(StageError):
    stage = "dialogue"
    default_code = "dialogue_failed"


class TtsError(StageError):
    stage = "tts"
    default_code = "tts_failed"
