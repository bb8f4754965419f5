"""Downloads from local HTTP servers: resume with Range against the same version only, md5
rejection, atomicity, sizes and free space, hostile servers (tests/hostile_http_server.py), safe
tar."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import tarfile
from pathlib import Path

import pytest

from asr.io import download as dl
from asr.io import transfer
from asr.io.download import (
    DownloadError,
    LocalError,
    Resource,
    download,
    extract_tar,
    fetch,
    md5sum,
)
from tests.hostile_http_server import Answer, serve_script
from tests.local_http_server import ServerState, serve

PAYLOAD = os.urandom(300_000)
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "RETRY_PAUSE_S", 0.0)


@pytest.fixture
def server():
    with serve(ServerState(files={"/data.bin": PAYLOAD})) as state:
        yield state


def test_download_verifies_and_completes_atomically(server: ServerState, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.bin"
    assert download(f"{server.base_url}/data.bin", dest, PAYLOAD_MD5, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert md5sum(dest) == PAYLOAD_MD5
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.bin"]
    assert server.ranges("/data.bin") == [None]
    # Done already: verified locally, no second request.
    download(f"{server.base_url}/data.bin", dest, PAYLOAD_MD5, progress=False)
    assert len(server.requests) == 1


def test_dropped_connection_is_resumed_with_range(server: ServerState, tmp_path: Path) -> None:
    server.drop_once.add("/data.bin")
    dest = tmp_path / "data.bin"
    download(f"{server.base_url}/data.bin", dest, PAYLOAD_MD5, progress=False, retries=1)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/data.bin") == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert not (tmp_path / "data.bin.part").exists()


def test_partial_file_survives_and_next_call_resumes(server: ServerState, tmp_path: Path) -> None:
    server.drop_once.add("/data.bin")
    dest = tmp_path / "data.bin"
    url = f"{server.base_url}/data.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, PAYLOAD_MD5, progress=False, retries=0)
    assert str(info.value).startswith(f"{url}: download interrupted")
    assert "run again to resume" in str(info.value)
    part = tmp_path / "data.bin.part"
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    assert not dest.exists()
    download(url, dest, PAYLOAD_MD5, progress=False, retries=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/data.bin")[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_ignoring_range_restarts_from_scratch(server: ServerState, tmp_path: Path) -> None:
    server.ignore_range = True
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from another file")
    dest = tmp_path / "data.bin"
    download(f"{server.base_url}/data.bin", dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/data.bin") == ["bytes=29-"]


def test_unresumable_part_longer_than_file_restarts(server: ServerState, tmp_path: Path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD + b"junk")
    dest = tmp_path / "data.bin"
    download(f"{server.base_url}/data.bin", dest, PAYLOAD_MD5, progress=False, retries=1)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/data.bin") == [f"bytes={len(PAYLOAD) + 4}-", None]
    (tmp_path / "again.part").write_bytes(PAYLOAD + b"junk")  # a 416 does not use up a retry
    download(
        f"{server.base_url}/data.bin", tmp_path / "again", PAYLOAD_MD5, progress=False, retries=0
    )
    assert (tmp_path / "again").read_bytes() == PAYLOAD


def test_bad_md5_is_rejected_and_nothing_kept(server: ServerState, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    url = f"{server.base_url}/data.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, "0" * 32, progress=False)
    message = str(info.value)
    assert message == f"{url}: md5 mismatch: expected {'0' * 32}, got {PAYLOAD_MD5}"
    assert list(tmp_path.iterdir()) == []


def test_existing_corrupt_file_is_reported_not_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"not it")
    with pytest.raises(DownloadError, match=r"data\.bin \(delete it to download .* again\): md5"):
        download("http://127.0.0.1:9/data.bin", dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == b"not it"


def test_http_errors_name_the_url(server: ServerState, tmp_path: Path) -> None:
    url = f"{server.base_url}/missing.tar.gz"
    with pytest.raises(DownloadError, match=rf"^{url}: HTTP 404"):
        download(url, tmp_path / "x", progress=False)
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.tar.gz"
    with pytest.raises(DownloadError, match=rf"^{url}: cannot connect"):
        download(url, tmp_path / "x", progress=False, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_fetch_resolves_mirror_folder_and_file(server: ServerState, tmp_path: Path) -> None:
    res = Resource("data.bin", "http://127.0.0.1:9/not-used", PAYLOAD_MD5)
    got = fetch(res, tmp_path / "dl", mirror=server.base_url + "/", progress=False)
    assert got == tmp_path / "dl" / "data.bin" and got.read_bytes() == PAYLOAD
    local = tmp_path / "local"
    local.mkdir()
    (local / "data.bin").write_bytes(PAYLOAD)
    assert fetch(res, tmp_path / "x", source=local) == local / "data.bin"  # used in place
    assert fetch(res, tmp_path / "x", source=local / "data.bin") == local / "data.bin"
    copied = fetch(res, tmp_path / "x", source=local, copy=True)
    assert copied == tmp_path / "x" / "data.bin" and copied.read_bytes() == PAYLOAD
    assert fetch(res, tmp_path / "x", source=local, copy=True) == copied  # done: kept
    assert fetch(res, local, source=local, copy=True) == local / "data.bin"  # source is dest
    with pytest.raises(DownloadError, match=r"local: source folder has no other\.bin"):
        fetch(Resource("other.bin", "", None), tmp_path, source=local)
    (local / "renamed.bin").write_bytes(PAYLOAD)
    with pytest.raises(DownloadError, match=r"renamed\.bin: source file is not data\.bin"):
        fetch(res, tmp_path, source=local / "renamed.bin")
    (local / "data.bin").write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match=r"local/data\.bin: md5 mismatch"):
        fetch(res, tmp_path, source=local)
    assert len(server.requests) == 1


def test_missing_md5_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f.txt").write_text("x")
    fetch(Resource("f.txt", "", None), tmp_path, source=tmp_path)
    assert "no published md5 or sha256 checksum" in capsys.readouterr().err


def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_extract_and_skip_when_done(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "a.tar.gz", [_file("top/a.txt", b"A"), _file("top/b/c.txt")])
    out = tmp_path / "out"
    assert extract_tar(tarball, out) is True
    assert (out / "top" / "a.txt").read_bytes() == b"A"
    assert (out / ".a.tar.gz.extracted").is_file()
    (out / "top" / "a.txt").write_bytes(b"changed")
    assert extract_tar(tarball, out) is False  # marker: nothing redone
    assert (out / "top" / "a.txt").read_bytes() == b"changed"


@pytest.mark.parametrize(
    ("member", "needle"),
    [
        (_file("../evil.txt"), "unsafe path"),
        (_file("ok/../../evil.txt"), "unsafe path"),
        (_file("/tmp/evil.txt"), "unsafe path"),
        (_link("ok/link", "../../evil.txt"), "points outside"),
        (_link("ok/link", "/etc/passwd"), "points outside"),
        (_link("ok/hard", "../evil.txt", tarfile.LNKTYPE), "points outside"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, member, needle: str) -> None:
    tarball = _tarball(tmp_path / "bad.tar.gz", [_file("ok/fine.txt"), member])
    out = tmp_path / "a" / "out"
    with pytest.raises(DownloadError, match=rf"bad\.tar\.gz: .*{needle}"):
        extract_tar(tarball, out)
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (out / ".bad.tar.gz.extracted").exists()


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    good = _tarball(tmp_path / "good.tar.gz", [_file("a.txt", os.urandom(50_000))])
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good.read_bytes()[:-2000])
    with pytest.raises(DownloadError, match=r"bad\.tar\.gz: cannot extract"):
        extract_tar(bad, tmp_path / "out")
    assert not (tmp_path / "out" / ".bad.tar.gz.extracted").exists()


def test_compression_bomb_is_refused_before_it_is_written(tmp_path, monkeypatch) -> None:
    """A tarball expanding far beyond its size (issue 17, item 10) is refused at the member that
    crosses the bound, from its header, and never marked as extracted."""
    import asr.io.download as download_module

    monkeypatch.setattr(download_module, "MIN_EXTRACT_BYTES", 1 << 20)
    zeros = bytes(8 << 20)
    tarball = _tarball(tmp_path / "bomb.tar.gz", [_file("a/small.txt", b"x"), _file("a/z", zeros)])
    assert tarball.stat().st_size * 20 < len(zeros)
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"bomb\.tar\.gz: expands beyond .*'a/z'"):
        extract_tar(tarball, out)
    assert not (out / "a" / "z").exists() and not (out / ".bomb.tar.gz.extracted").exists()
    monkeypatch.setattr(download_module, "MAX_TAR_MEMBERS", 3)
    many = _tarball(tmp_path / "many.tar.gz", [_file(f"m/{i}", b"") for i in range(5)])
    with pytest.raises(DownloadError, match=r"many\.tar\.gz: expands beyond 3 members"):
        extract_tar(many, tmp_path / "out2")


# ------------------------------------------------ hostile servers (issue 25, items 5, 6, 20)

OTHER = os.urandom(len(PAYLOAD))  # another version of the file on the server
HALF = len(PAYLOAD) // 2


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_resume_names_the_version_with_if_range(tmp_path: Path) -> None:
    """No checksum: a resume sends If-Range with the first answer's ETag; the note is removed."""
    answers = [Answer(PAYLOAD, etag='"v1"', cut_after=HALF), Answer(PAYLOAD, etag='"v1"')]
    with serve_script(answers) as script:
        dest = download(script.url, tmp_path / "f", progress=False, retries=1, warn_unchecked=False)
    assert dest.read_bytes() == PAYLOAD
    assert script.requests == [(None, None), (f"bytes={HALF}-", '"v1"')]
    assert _names(tmp_path) == ["f"]


@pytest.mark.parametrize("honour_if_range", [True, False])
def test_file_changed_between_attempts_restarts_instead_of_splicing(
    tmp_path: Path, honour_if_range: bool
) -> None:
    """The file changes on the server (new ETag) between two attempts: a server honouring
    If-Range answers 200, one ignoring it answers 206 with the new ETag; both restart from 0."""
    answers = [
        Answer(PAYLOAD, etag='"a"', cut_after=HALF),
        Answer(OTHER, etag='"b"', honour_if_range=honour_if_range),
    ]
    with serve_script(answers) as script:
        download(script.url, tmp_path / "f", progress=False, retries=1, warn_unchecked=False)
    assert (tmp_path / "f").read_bytes() == OTHER  # never PAYLOAD[:HALF] + OTHER[HALF:]
    expected = [(None, None), (f"bytes={HALF}-", '"a"')]
    assert script.requests == expected + ([] if honour_if_range else [(None, None)])


def _refused(answers: list[Answer], dest: Path, match: str, error=DownloadError, **kwargs) -> str:
    """Serve ``answers``; ``download`` must raise ``error`` matching ``match``; its message."""
    with serve_script(answers) as script, pytest.raises(error, match=match) as info:
        download(script.url, dest, progress=False, **kwargs)
    return str(info.value)


def test_partial_file_of_unknown_version_is_not_resumed_blindly(tmp_path: Path) -> None:
    """A server sending no ETag/Last-Modified and no checksum to verify the result: nothing
    shows a resume would continue the same file, so each attempt restarts from byte 0."""
    with serve_script([Answer(PAYLOAD, cut_after=HALF), Answer(PAYLOAD)]) as script:
        download(script.url, tmp_path / "f", progress=False, retries=1, warn_unchecked=False)
    assert script.requests == [(None, None), (None, None)]
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    match = "nothing is kept to resume: run again to retry"
    _refused([Answer(PAYLOAD, cut_after=HALF)], tmp_path / "g", match, retries=0)
    assert _names(tmp_path) == ["f"]


def test_server_ignoring_range_after_a_drop_restarts(tmp_path: Path) -> None:
    answers = [Answer(PAYLOAD, etag='"v"', cut_after=HALF), Answer(PAYLOAD, honour_range=False)]
    with serve_script(answers) as script:
        download(script.url, tmp_path / "f", progress=False, retries=1, warn_unchecked=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    assert script.requests[1] == (f"bytes={HALF}-", '"v"')  # answered 200: written from 0


def test_announced_size_far_from_the_expected_one_is_refused(tmp_path: Path) -> None:
    """A Content-Length of 10^15 with an endless body, or of a 39-byte page, against an
    expected 300 kB: refused from the headers, before the body is read; nothing kept."""
    endless = Answer(b"", length=10**15, endless=True)
    dest, size = tmp_path / "f", {"expected_bytes": 300_000}
    message = _refused([endless], dest, r"announces 1000000000\.0 MB, far more", **size)
    assert "run again" not in message
    page = Answer(b"<html><body>Please log in</body></html>", content_type="text/html")
    _refused([page], dest, r"announces 39 bytes, far less .*web page", **size)
    assert _names(tmp_path) == []


def test_endless_body_without_a_length_is_cut_at_the_expected_size(tmp_path: Path) -> None:
    endless = Answer(b"", send_length=False, endless=True)
    match = r"over 200000 bytes arrived \(more than expected"
    _refused([endless], tmp_path / "f", match, expected_bytes=100_000)
    assert _names(tmp_path) == []


def test_body_without_a_length_far_too_short_is_refused(tmp_path: Path) -> None:
    """A connection closing early with no Content-Length looks complete: the size tells."""
    cut = Answer(PAYLOAD[:1000], send_length=False)
    _refused([cut], tmp_path / "f", r"only 1000 bytes arrived, far less", expected_bytes=300_000)
    assert _names(tmp_path) == []


def test_free_disk_space_is_checked_first(tmp_path: Path, monkeypatch) -> None:
    """Content-Length 10^15 with no expected size, then a normal file on a nearly full disk:
    refused before the body is read (issue 25, item 6); an endless body stops at the space."""
    endless, dest = Answer(b"", length=10**15, endless=True), tmp_path / "f"
    match = r"not enough free disk space .* it needs 1000000000"
    _refused([endless], dest, match, LocalError, retries=0)
    usage, margin = shutil.disk_usage(tmp_path), transfer.FREE_MARGIN_BYTES
    free = usage._replace(free=margin + 100_000)
    monkeypatch.setattr(transfer.shutil, "disk_usage", lambda _: free)
    match = rf"{tmp_path}: not enough free disk space"
    _refused([Answer(PAYLOAD)], dest, match, LocalError, md5=PAYLOAD_MD5)
    endless = Answer(b"", send_length=False, endless=True)
    _refused([endless], dest, r"over 100000 bytes arrived \(the disk would fill")
    assert _names(tmp_path) == []


def test_unwritable_destination_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LocalError, match=r"file: cannot create the download folder"):
        download("http://127.0.0.1:9/x", tmp_path / "file" / "x", progress=False)


def test_no_progress_bar_when_stderr_is_not_a_terminal(server: ServerState, tmp_path, capsys):
    download(f"{server.base_url}/data.bin", tmp_path / "f", PAYLOAD_MD5, progress=True)
    assert capsys.readouterr().err == ""


def test_yesno_local_tarball_gets_no_checksum_warning(tmp_path: Path, capsys) -> None:
    """A local yesno tarball is checked by its 60 WAV files, not warned about (issue 25, 20);
    a download from a mirror still says it is not verified."""
    from asr.corpora.yesno import download_yesno

    names = ["_".join(format(i, "08b")) + ".wav" for i in range(60)]
    tarball = _tarball(tmp_path / "waves_yesno.tar.gz", [_file(f"waves_yesno/{n}") for n in names])
    out = download_yesno(tmp_path / "a", source=tarball, progress=False)
    assert len(list(out.glob("*.wav"))) == 60
    assert capsys.readouterr().err == ""
    with serve(ServerState(files={"/waves_yesno.tar.gz": tarball.read_bytes()})) as state:
        download_yesno(tmp_path / "b", mirror=state.base_url, progress=False)
    assert "not verified" in capsys.readouterr().err
