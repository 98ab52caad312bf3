"""Images as inputs: a URL (``https://`` or ``data:``), made from a URL, a file or bytes.

In a prompt an image becomes an image content part of the user message (OpenAI's
``{"type": "image_url", ...}``); the text around it stays text.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Image", "content_parts"]

# Marks an image inside formatted prompt text until the message is split into parts.
# The per-process nonce keeps text that merely looks like a marker from becoming an image.
_NONCE = secrets.token_hex(8)
_MARKER = re.compile(rf"<<sigforge-image-{_NONCE}:(\d+)>>")


class Image(BaseModel):
    """An image input. Build it with :meth:`from_url`, :meth:`from_file` or :meth:`from_bytes`."""

    model_config = ConfigDict(frozen=True)

    #: an ``http(s)://`` URL or a ``data:<mime>;base64,...`` URI
    url: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @classmethod
    def from_url(cls, url: str) -> Image:
        return cls(url=url)

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str = "image/png") -> Image:
        encoded = base64.b64encode(data).decode("ascii")
        return cls(url=f"data:{mime_type};base64,{encoded}")

    @classmethod
    def from_file(cls, path: str | Path, mime_type: str | None = None) -> Image:
        path = Path(path)
        guessed = mime_type or mimetypes.guess_type(path.name)[0]
        if guessed is None or not guessed.startswith("image/"):
            raise ValueError(f"{path}: cannot tell the image type; pass mime_type='image/...'")
        return cls.from_bytes(path.read_bytes(), guessed)

    def __str__(self) -> str:
        head = self.url if not self.url.startswith("data:") else self.url.split(",", 1)[0] + ",..."
        return f"Image({head})"


class ImageSlots:
    """Images met while formatting one message, replaced in the text by markers."""

    def __init__(self) -> None:
        self.images: list[Image] = []

    def marker(self, image: Image) -> str:
        self.images.append(image)
        return f"<<sigforge-image-{_NONCE}:{len(self.images) - 1}>>"


def content_parts(text: str, slots: ImageSlots | None) -> str | list[dict[str, Any]]:
    """``text`` as message content: a plain string, or text and image parts in order."""
    if slots is None or not slots.images:
        return text
    parts: list[dict[str, Any]] = []
    position = 0
    for match in _MARKER.finditer(text):
        if match.start() > position:
            parts.append({"type": "text", "text": text[position : match.start()]})
        image = slots.images[int(match.group(1))]
        parts.append({"type": "image_url", "image_url": {"url": image.url}})
        position = match.end()
    if position < len(text):
        parts.append({"type": "text", "text": text[position:]})
    return parts
