"""HighLevel's media library: where a copied recording is stored (`POST /medias/upload-file`),
and where an upload whose answer was lost is looked for (`GET /medias/files`, by name).

HighLevel takes no idempotency key here either, so an upload is named after its content's
sha256: the name says which bytes it holds, and a lost answer is settled by looking the name up
before anything is sent again, as an uncertain call is settled by reading its conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from importer.api.client import Upload, Verdict, request
from importer.api.session import ApiSession

PAGE: Final = 100  # files asked for per look-up; a name matches very few


@dataclass(frozen=True)
class Stored:
    """Where an upload ended: its `url` in HighLevel's storage, or `uncertain` (the answer was
    lost: it may be stored), or `error` (refused, or the run stopped)."""

    url: str = ""
    file_id: str = ""
    uncertain: bool = False
    stopped: bool = False
    error: str = ""
    http_status: int | None = None


class MediaLibrary:
    """A location's media library, through the location's session (its limiter and budget)."""

    def __init__(self, session: ApiSession, location_id: str) -> None:
        self.session = session
        self.location_id = location_id

    async def upload(
        self, path: Path, name: str, content_type: str, before_send: Callable[[], None]
    ) -> Stored:
        """One upload; `before_send` runs before each attempt leaves (the journal records it)."""
        result = await self.session.call(
            request("media upload", upload=Upload(path, name, content_type)),
            before_send=before_send,
        )
        answer = result.answer
        if result.verdict is None:
            return Stored(stopped=True, error=result.error, http_status=result.http_status)
        if result.verdict is Verdict.CREATED and answer is not None:
            url, file_id = _stored(answer.body)
            if url:
                return Stored(url, file_id)
            return Stored(uncertain=True, error="the upload's answer has no url")
        if result.verdict is Verdict.UNCERTAIN:
            return Stored(uncertain=True, error=result.error, http_status=result.http_status)
        return Stored(
            error=_refusal(result.error, result.http_status), http_status=result.http_status
        )

    async def find(self, name: str) -> Stored:
        """The file stored under `name`, if any: `url` empty when the library has none (every
        page read); `error` when it could not be read."""
        offset = 0
        while True:
            params = {
                "altType": "location",
                "altId": self.location_id,
                "type": "file",
                "sortBy": "createdAt",
                "sortOrder": "desc",
                "query": name,
                "limit": str(PAGE),
                "offset": str(offset),
            }
            result = await self.session.call(request("media list", params=params))
            if result.verdict is not Verdict.CREATED or result.answer is None:
                why = result.error or "the media library could not be read"
                return Stored(stopped=result.verdict is None, error=why)
            files = _files(result.answer.body)
            for item in files:
                if item.get("name") == name and item.get("url"):
                    return Stored(str(item["url"]), str(item.get("_id") or item.get("id") or ""))
            if len(files) < PAGE:
                return Stored()
            offset += PAGE


def _stored(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("url") or ""), str(body.get("fileId") or "")


def _files(body: Any) -> list[dict[str, Any]]:
    files = body.get("files") if isinstance(body, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


_MEANING: Final = {
    413: "HighLevel refused it as too large",
    415: "HighLevel refused its type",
}


def _refusal(error: str, status: int | None) -> str:
    meaning = _MEANING.get(status or 0)
    return f"{meaning} ({error})" if meaning else f"HighLevel refused the upload ({error})"
