"""Recordings: the pure parts (folder matching, where credentials go, what the sidecar says),
the source's answers (respx: retried or the row's error), and the upload request itself."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from importer.api.client import LeadConnectorClient, Verdict, request
from importer.api.media import MediaLibrary, Stored
from importer.config import RecordingOptions, Secret
from importer.run import recordings
from importer.run.recordings import RecordingCopier, RecordingError, Tally, _index_folder
from importer.state.journal import Journal, Recording


def test_folder_matches_a_unique_id_by_name_or_by_freepbx_tail(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "1741601700.11.wav").write_bytes(b"x")
    (tmp_path / "a" / "out-5035550142-101-20250310-101500-1741601800.12.wav").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    index = _index_folder(tmp_path)
    assert [p.name for p in index["1741601700.11"]] == ["1741601700.11.wav"]
    assert index["1741601800.12"][0].parent.name == "a"
    assert not any("notes" in k for k in index)


def test_two_files_for_one_call_are_an_error_never_a_guess(tmp_path: Path) -> None:
    (tmp_path / "1741601700.11.wav").write_bytes(b"x")
    (tmp_path / "in-101-1741601700.11.wav").write_bytes(b"y")
    copier = _copier(tmp_path, RecordingOptions("copy", directory=tmp_path))
    found = copier._in_folder("1741601700.11")
    assert isinstance(found, str) and "2 files match" in found


def _copier(tmp_path: Path, options: RecordingOptions) -> RecordingCopier:
    journal = Journal(tmp_path / "j.sqlite")
    library = MediaLibrary(None, "loc")  # type: ignore[arg-type]
    return RecordingCopier(options, library, journal)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.mp3", True),
        ("http://127.0.0.1:8930/source/RE1.mp3", True),
        ("http://pbx.example.net/monitor/RE1.wav", False),  # plain HTTP across a network
    ],
)
def test_source_credentials_go_only_over_https_or_to_this_machine(
    tmp_path: Path, url: str, sent: bool
) -> None:
    copier = _copier(tmp_path, RecordingOptions("copy", basic_auth=Secret("AC1:tok")))
    headers = copier._credentials(url)
    expected = "Basic " + base64.b64encode(b"AC1:tok").decode()
    assert headers == ({"Authorization": expected} if sent else {})


@respx.mock
def test_a_source_error_is_retried_and_a_404_is_the_rows_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recordings, "backoff", lambda tries: 0.0)
    flaky = respx.get("https://src.test/RE1.mp3").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, content=b"abc")]
    )
    respx.get("https://src.test/RE2.mp3").mock(return_value=httpx.Response(404))
    copier = _copier(tmp_path, RecordingOptions("copy"))

    async def fetch() -> None:
        local = await copier._download("https://src.test/RE1.mp3")
        assert local.sha256 == hashlib.sha256(b"abc").hexdigest()
        assert local.size == 3 and local.suffix == ".mp3" and local.content_type == "audio/mpeg"
        with pytest.raises(RecordingError, match="not found at the source"):
            await copier._download("https://src.test/RE2.mp3")
        await copier.aclose()

    asyncio.run(fetch())
    assert flaky.call_count == 2


@respx.mock
def test_a_download_over_the_limit_stops_without_keeping_the_bytes(tmp_path: Path) -> None:
    respx.get("https://src.test/big.wav").mock(
        return_value=httpx.Response(200, content=b"x" * 5000, headers={"content-length": "5000"})
    )
    copier = _copier(tmp_path, RecordingOptions("copy", max_bytes=4096))

    async def fetch() -> None:
        with pytest.raises(RecordingError, match="over HighLevel's upload limit"):
            await copier._download("https://src.test/big.wav")
        assert not list(copier._tmp_dir().iterdir())
        await copier.aclose()

    asyncio.run(fetch())


@respx.mock
def test_the_upload_is_multipart_with_the_file_streamed_and_its_name() -> None:
    route = respx.post("https://api.test/medias/upload-file").mock(
        return_value=httpx.Response(200, json={"fileId": "f1", "url": "https://cdn.test/f1"})
    )

    async def send(path: Path) -> None:
        from importer.api.client import Upload

        async with LeadConnectorClient(
            "https://api.test", Secret("t"), timeout_s=5, connections=1
        ) as client:
            answer = await client.send(
                request("media upload", upload=Upload(path, "abc.mp3", "audio/mpeg"))
            )
        assert answer.verdict is Verdict.CREATED and answer.body["url"] == "https://cdn.test/f1"

    path = Path(__file__)
    asyncio.run(send(path))
    sent = route.calls[0].request
    assert sent.headers["Version"] == "2021-07-28"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = sent.read()
    assert b'name="file"; filename="abc.mp3"' in body and path.read_bytes() in body
    assert b'name="name"\r\n\r\nabc.mp3' in body


def test_the_sidecar_lists_journal_copies_this_runs_failures_and_linked_hosts() -> None:
    tally = Tally(failed={"https://a/1.mp3": "recording https://a/1.mp3: not found"})
    tally.linked["api.twilio.com"] = 36
    journal = [
        Recording("https://a/2.mp3", "s2", 10, "s2.mp3", "uploaded", "https://cdn/s2"),
        Recording("https://a/3.mp3", "s3", 10, "s3.mp3", "uploading"),
    ]
    lines = tally.lines(journal)
    assert [(r.source, r.outcome) for r in lines] == [
        ("https://a/2.mp3", "copied"),
        ("https://a/1.mp3", "failed"),
        ("api.twilio.com", "linked"),
    ]
    assert lines[2].calls == 36


class _Library(MediaLibrary):
    """Uploads that take a moment and succeed; counted."""

    def __init__(self) -> None:
        super().__init__(None, "loc")  # type: ignore[arg-type]
        self.names: list[str] = []

    async def upload(self, path: Path, name: str, content_type: str, before_send: Any) -> Stored:
        before_send()
        self.names.append(name)
        await asyncio.sleep(0.05)
        return Stored(f"https://cdn.test/{name}", "f")


def test_two_calls_or_two_sources_with_the_same_bytes_upload_them_once(tmp_path: Path) -> None:
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF same bytes")
    (tmp_path / "c.wav").write_bytes(b"RIFF other bytes")
    library = _Library()
    copier = RecordingCopier(RecordingOptions("copy"), library, Journal(tmp_path / "j.sqlite"))
    sources = [str(tmp_path / n) for n in ("a.wav", "a.wav", "b.wav", "c.wav")]

    async def copy_all() -> list[list[str]]:
        done = await asyncio.gather(*(copier.copy([s], f"id{i}") for i, s in enumerate(sources)))
        return [c.urls for c in done]

    urls = asyncio.run(copy_all())
    same = hashlib.sha256(b"RIFF same bytes").hexdigest()
    assert len(library.names) == 2 and f"{same}.wav" in library.names
    assert urls[0] == urls[1] == urls[2] == [f"https://cdn.test/{same}.wav"]
    assert {r.source for r in copier.journal.recordings()} == set(sources)
