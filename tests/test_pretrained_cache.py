"""Models by name: the registry, the download cache and `asr models`, served from 127.0.0.1.

The NeMo fixture (``tests/fixtures/nemo/quartznet.nemo``, made by NeMo itself) is served under
the registry's file name of ``quartznet15x5`` and a tiny ARPA under that of
``librispeech-3gram`` (their registry sizes are set to the fixtures'): first download, cache
hit with the server gone, interrupted download resumed against the same version only, corrupt
file refused and removed, trust on first use only of a download that checks out (not a web
page, a cut archive, a spliced resume, an endless body), a cache that cannot be written,
unknown names, no network.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
from pathlib import Path

import pytest
import torch

import asr.io.download as download_module
from asr.cli import main
from asr.io.download import DownloadError
from asr.models.io import load_model
from asr.models.nemo_import import build_model, load_nemo
from asr.pretrained import registry as registry_module
from asr.pretrained import resolve_lm, resolve_model_dir
from asr.pretrained.cache import entry_path, fetch_entry, is_cached
from asr.pretrained.registry import RegistryError, read_registry
from tests.hostile_http_server import Answer, serve_script
from tests.local_http_server import ServerState, serve

FIXTURE = Path(__file__).parent / "fixtures" / "nemo" / "quartznet.nemo"
NEMO_BYTES = FIXTURE.read_bytes()
NEMO_PATH = "/QuartzNet15x5Base-En.nemo"
SAMPLE = Path(__file__).parents[1] / "asr" / "pretrained" / "samples" / "synth-test.flac"
ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t0
-0.7\t</s>\t0
-0.6\tYES\t0
-0.9\tNO\t0

\\2-grams:
-0.2\t<s> YES
-0.3\tYES </s>

\\end\\
"""
ARPA_PATH = "/3-gram.pruned.1e-7.arpa.gz"
ARPA_GZ = gzip.compress(ARPA.encode())
NEMO_RECORD = "QuartzNet15x5Base-En.nemo.sha256"
# The registry sizes of the two entries served here, set to the fixtures' (MB).
FIXTURE_SIZES_MB = {"quartznet15x5": len(NEMO_BYTES) / 1e6, "librispeech-3gram": len(ARPA_GZ) / 1e6}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache and no base URL from the environment."""
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ASR_BASE_URL", raising=False)
    monkeypatch.setattr(download_module, "RETRY_PAUSE_S", 0.0)
    real_read_registry = registry_module.read_registry

    def read_sized(path: str | Path = registry_module.REGISTRY_FILE):
        registry = real_read_registry(path)
        entries = {
            name: dataclasses.replace(entry, size_mb=FIXTURE_SIZES_MB.get(name, entry.size_mb))
            for name, entry in registry.entries.items()
        }
        return dataclasses.replace(registry, entries=entries)

    monkeypatch.setattr(registry_module, "read_registry", read_sized)
    return tmp_path / "cache"


@pytest.fixture
def server():
    files = {NEMO_PATH: NEMO_BYTES, ARPA_PATH: ARPA_GZ}
    with serve(ServerState(files=files)) as state:
        yield state


def _dead_url() -> str:
    """A 127.0.0.1 URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _entry(name: str = "quartznet15x5", **changes):
    """A registry entry sized like the fixture served for it."""
    entry = read_registry().get(name)
    return dataclasses.replace(entry, size_mb=FIXTURE_SIZES_MB[name], **changes)


def test_registry_entries_are_consistent() -> None:
    registry = read_registry()
    assert {"default", "quartznet15x5", "stt_en_quartznet15x5", "jasper10x5dr"} <= set(
        registry.names("nemo") + registry.names("bundled")
    )
    assert {"librispeech-3gram", "librispeech-4gram"} <= set(registry.names("kenlm"))
    for entry in registry.entries.values():
        assert all(url.endswith("/" + entry.file) for url in entry.urls)
        assert entry.licence and entry.citation and entry.size_mb > 0
        assert entry.wer is None or entry.wer_source  # a quoted WER says where it is published


def test_bad_registry_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "registry.yaml"
    text = "x:\n  kind: nemo\n  description: d\n  file: a.nemo\n  urls: [https://h/a.nemo]\n"
    bad.write_text(text + "  size_mb: 1\n  licence: l\n  citation: c\n  sha256: abc\n")
    with pytest.raises(RegistryError, match=r"x: sha256: not a lower-case hex digest"):
        read_registry(bad)
    bad.write_text(text + "  size_mb: 1\n  licence: l\n  citation: c\n  colour: red\n")
    with pytest.raises(Exception, match="colour"):
        read_registry(bad)


def test_first_download_imports_then_works_offline(server, _cache: Path, capsys) -> None:
    model_dir = resolve_model_dir("quartznet15x5", base_url=server.base_url, progress=False)
    assert model_dir == _cache / "models" / "quartznet15x5"
    assert server.ranges(NEMO_PATH) == [None]
    # The imported weights are exactly those of an import of the fixture itself.
    ours, tokenizer = load_model(model_dir)
    reference, ref_tokenizer = build_model(load_nemo(FIXTURE), case="upper")
    assert tokenizer.vocab == ref_tokenizer.vocab
    for name, tensor in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor), name
    # No publisher checksum: the first download's sha256 is recorded; the download is gone.
    downloads = _cache / "downloads"
    record = (downloads / "QuartzNet15x5Base-En.nemo.sha256").read_text().split()[0]
    assert record == hashlib.sha256(NEMO_BYTES).hexdigest()
    assert sorted(p.name for p in downloads.iterdir()) == [NEMO_RECORD]
    err = capsys.readouterr().err  # one line, saying where the checksum is and how to reset it
    assert err.count("\n") == 1 and "trust on first use" in err and "not verified" not in err
    assert f"in {downloads / NEMO_RECORD} " in err and "delete that file" in err
    requests = len(server.requests)
    # Later uses: no request, even with the server gone.
    assert resolve_model_dir("quartznet15x5", base_url=_dead_url()) == model_dir
    assert len(server.requests) == requests


def test_cache_hit_with_the_server_gone_from_the_cli(tmp_path: Path, capsys) -> None:
    with serve(ServerState(files={NEMO_PATH: NEMO_BYTES})) as state:
        args = ["models", "quartznet15x5", "--download", "--no-progress"]
        assert main([*args, "--base-url", state.base_url]) == 0
    assert "cached:    yes" in capsys.readouterr().out
    out = tmp_path / "out.json"
    args = ["transcribe", str(SAMPLE), "--model", "quartznet15x5", "--format", "json"]
    assert main([*args, "--out", str(out), "--base-url", _dead_url(), "--no-progress"]) == 0
    assert out.is_file()
    table = capsys.readouterr()
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line and line[0] != " "}
    assert rows["quartznet15x5"][3] == "yes"  # name, size (2 words), cached, checksum
    assert rows["jasper10x5dr"][3] == "no"
    assert rows["jasper10x5dr"][4:] == ["trust", "on", "first", "use"]
    assert table.err.count("error") == 0
    assert max(map(len, lines)) <= 100  # were 274 characters wide


def test_interrupted_download_is_resumed(_cache: Path) -> None:
    """The first answer stops half way; the resume names the version it continues (If-Range)."""
    half = len(NEMO_BYTES) // 2
    answers = [Answer(NEMO_BYTES, etag='"v1"', cut_after=half), Answer(NEMO_BYTES, etag='"v1"')]
    with serve_script(answers) as script:
        fetch_entry(_entry(), base=script.base_url, progress=False)
    assert script.requests == [(None, None), (f"bytes={half}-", '"v1"')]
    assert is_cached(_entry())
    assert sorted(p.name for p in (_cache / "downloads").iterdir()) == [NEMO_RECORD]


def test_download_left_by_a_dead_process_is_resumed(_cache: Path) -> None:
    """A partial file with its noted version is resumed; one without is restarted (no
    checksum would catch a splice of two versions)."""
    part = _cache / "downloads" / "QuartzNet15x5Base-En.nemo.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(NEMO_BYTES[:1000])
    part.with_name(part.name + ".json").write_text(json.dumps({"etag": '"v1"'}))
    with serve_script([Answer(NEMO_BYTES, etag='"v1"')]) as script:
        fetch_entry(_entry(), base=script.base_url, progress=False)
    assert script.requests == [("bytes=1000-", '"v1"')]
    assert is_cached(_entry())
    (_cache / "downloads" / "3-gram.pruned.1e-7.arpa.gz.part").write_bytes(ARPA_GZ[:50])
    with serve(ServerState(files={ARPA_PATH: ARPA_GZ})) as state:
        fetch_entry(_entry("librispeech-3gram"), base=state.base_url, progress=False)
    assert state.ranges(ARPA_PATH) == [None]


def test_corrupt_download_is_refused_and_removed(server, _cache: Path) -> None:
    entry = _entry(sha256=hashlib.sha256(NEMO_BYTES).hexdigest())  # as if published
    server.files[NEMO_PATH] = NEMO_BYTES[:-1] + bytes([NEMO_BYTES[-1] ^ 1])
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_entry(entry, base=server.base_url, progress=False)
    assert list((_cache / "downloads").iterdir()) == []
    assert not is_cached(entry)
    server.files[NEMO_PATH] = NEMO_BYTES
    assert fetch_entry(entry, base=server.base_url, progress=False) == entry_path(entry)
    assert not (_cache / "downloads" / "QuartzNet15x5Base-En.nemo.sha256").exists()


def test_trust_on_first_use_checks_later_downloads(server, _cache: Path) -> None:
    entry = _entry()
    fetch_entry(entry, base=server.base_url, progress=False)
    for path in sorted(entry_path(entry).iterdir()):
        path.unlink()  # the user deleted the imported model: the next use downloads again
    entry_path(entry).rmdir()
    server.files[NEMO_PATH] = _repacked(NEMO_BYTES)  # the publisher changed the file
    record = _cache / "downloads" / NEMO_RECORD
    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        fetch_entry(entry, base=server.base_url, progress=False)
    assert f"delete {record} and run again" in str(info.value)  # how to reset it
    assert not is_cached(entry)
    record.unlink()
    fetch_entry(entry, base=server.base_url, progress=False)
    assert record.read_text().split()[0] == hashlib.sha256(server.files[NEMO_PATH]).hexdigest()


def test_no_network_and_no_cache_names_the_url_and_the_override(capsys) -> None:
    dead = _dead_url()
    assert main(["transcribe", str(SAMPLE), "--model", "quartznet15x5", "--base-url", dead]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{dead}/QuartzNet15x5Base-En.nemo" in err
    assert "--base-url" in err and "ASR_BASE_URL" in err


def test_base_url_from_the_environment(server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_BASE_URL", server.base_url + "/")
    assert (resolve_model_dir("quartznet15x5", progress=False) / "config.yaml").is_file()
    assert server.ranges(NEMO_PATH) == [None]


def test_unknown_names_list_the_known_ones(capsys) -> None:
    assert main(["transcribe", str(SAMPLE), "--model", "quartznet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such model folder" in err
    assert "quartznet15x5" in err and "jasper10x5dr" in err and "librispeech" not in err
    with pytest.raises(RegistryError, match="librispeech-3gram, librispeech-4gram"):
        resolve_lm("librispeech-2gram")
    assert main(["models", "nope"]) == 2
    assert "known: default, quartznet15x5" in capsys.readouterr().err
    with pytest.raises(RegistryError, match="language model, not an acoustic model"):
        resolve_model_dir("librispeech-3gram")


def test_kenlm_by_name_is_unpacked_into_the_cache(server, _cache: Path) -> None:
    path = Path(resolve_lm("librispeech-3gram", base_url=server.base_url, progress=False))
    assert path == _cache / "lm" / "librispeech-3gram" / "3-gram.pruned.1e-7.arpa"
    assert path.read_text() == ARPA
    assert resolve_lm("librispeech-3gram", base_url=_dead_url()) == str(path)
    assert resolve_lm("none") == "none" and resolve_lm(None) is None


def test_transcribe_with_a_named_model_and_lm(server, tmp_path: Path) -> None:
    pytest.importorskip("kenlm")
    pytest.importorskip("pyctcdecode")
    out = tmp_path / "hyp.txt"
    args = ["transcribe", str(SAMPLE), "--model", "quartznet15x5", "--lm", "librispeech-3gram"]
    assert main([*args, "--base-url", server.base_url, "--out", str(out), "--no-progress"]) == 0
    assert out.is_file()


def test_concurrent_fetches_download_once(server, _cache: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        paths = list(
            pool.map(lambda _: fetch_entry(_entry(), base=server.base_url, progress=False), "ab")
        )
    assert paths[0] == paths[1] == entry_path(_entry())
    assert server.ranges(NEMO_PATH) == [None]


# ------------------------------------------ what is never trusted (issue 25, items 5, 6, 7)


def _repacked(nemo: bytes, mtime: int = 12345) -> bytes:
    """The same .nemo members (same sizes, so the same offsets) in a tar with other bytes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(nemo)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src:
            member.mtime = mtime
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def _assert_nothing_trusted(cache: Path, file: str) -> None:
    downloads = cache / "downloads"
    assert not (downloads / f"{file}.sha256").exists()
    assert not (downloads / file).exists()


_PAGE = b"<!DOCTYPE html>\n<html><head><title>Log in</title></head><body>Sign in</body></html>"
_CUT = int(len(NEMO_BYTES) * 0.7)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (Answer(_PAGE, content_type="text/html"), "far less than .* expected .*web page"),
        (Answer(_PAGE.ljust(len(NEMO_BYTES), b" ")), "is a web page .*login"),
        (Answer(NEMO_BYTES[:_CUT]), "not a whole .nemo"),  # a cut file, served whole
        (Answer(NEMO_BYTES[:_CUT], send_length=False), "not a whole .nemo"),  # closed early
    ],
    ids=["small-html-page", "html-page-of-the-right-size", "truncated", "truncated-no-length"],
)
def test_a_bad_nemo_download_is_never_trusted(_cache: Path, bad: Answer, match: str) -> None:
    """A login page or a cut archive is refused and deleted, nothing is recorded, and the right
    file is then accepted (old code recorded the bad file's sha256 and refused the right one)."""
    entry = _entry()
    with serve_script([bad, Answer(NEMO_BYTES)]) as script:
        with pytest.raises(DownloadError, match=match):
            fetch_entry(entry, base=script.base_url, progress=False)
        _assert_nothing_trusted(_cache, entry.file)
        fetch_entry(entry, base=script.base_url, progress=False)
    record = (_cache / "downloads" / NEMO_RECORD).read_text().split()[0]
    assert record == hashlib.sha256(NEMO_BYTES).hexdigest() and is_cached(entry)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (Answer(ARPA_GZ[: len(ARPA_GZ) * 3 // 4]), "not a gzipped ARPA"),
        (Answer(_PAGE.ljust(len(ARPA_GZ), b" ")), "is a web page"),
        (Answer(gzip.compress(b"no n-grams\n" + os.urandom(100))), r"does not start with \\data"),
    ],
    ids=["truncated-gzip", "html-page", "not-arpa"],
)
def test_a_bad_arpa_download_is_never_trusted(_cache: Path, bad: Answer, match: str) -> None:
    entry = _entry("librispeech-3gram")
    with serve_script([bad, Answer(ARPA_GZ)]) as script:
        with pytest.raises(DownloadError, match=match):
            fetch_entry(entry, base=script.base_url, progress=False)
        _assert_nothing_trusted(_cache, entry.file)
        assert fetch_entry(entry, base=script.base_url, progress=False).read_text() == ARPA


def test_a_resume_spliced_from_two_versions_is_never_trusted(_cache: Path) -> None:
    """The file changes on the server between two attempts and the server ignores If-Range:
    the answer's new ETag makes the download restart; the new version, not a splice of the
    two, is imported and recorded."""
    new = _repacked(NEMO_BYTES)
    half = len(NEMO_BYTES) // 2
    answers = [
        Answer(NEMO_BYTES, etag='"old"', cut_after=half),
        Answer(new, etag='"new"', honour_if_range=False),
    ]
    with serve_script(answers) as script:
        fetch_entry(_entry(), base=script.base_url, progress=False)
    assert script.requests == [(None, None), (f"bytes={half}-", '"old"'), (None, None)]
    record = (_cache / "downloads" / NEMO_RECORD).read_text().split()[0]
    assert record == hashlib.sha256(new).hexdigest()


def test_an_endless_download_is_refused_at_once(_cache: Path) -> None:
    """Content-Length 10^15 and an endless body: refused from the headers against the
    registry size, without "run again to resume" and without a byte kept."""
    endless = Answer(b"", length=10**15, endless=True)
    match = r"announces 1000000000\.0 MB, far more"
    with serve_script([endless]) as script, pytest.raises(DownloadError, match=match) as info:
        fetch_entry(_entry(), base=script.base_url, progress=False)
    assert "run again" not in str(info.value) and len(script.requests) == 1
    assert list((_cache / "downloads").iterdir()) == []


@pytest.mark.parametrize("how", ["a-file", "read-only"])
def test_an_unusable_cache_is_a_one_line_error(
    server, _cache: Path, how: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """$ASR_CACHE a regular file, or a read-only folder: one line naming it (not a traceback)."""
    if how == "a-file":
        _cache.write_text("not a folder")
    else:
        _cache.mkdir()
        _cache.chmod(0o555)
        if os.access(_cache, os.W_OK):  # root writes anyway: make creating folders fail as such
            real_mkdir = Path.mkdir

            def mkdir(self: Path, *args, **kwargs) -> None:
                if self.is_relative_to(_cache):
                    raise PermissionError(errno.EACCES, "Permission denied", str(self))
                real_mkdir(self, *args, **kwargs)

            monkeypatch.setattr(Path, "mkdir", mkdir)
    args = ["models", "quartznet15x5", "--download", "--no-progress"]
    try:
        assert main([*args, "--base-url", server.base_url]) == 2
    finally:
        if _cache.is_dir():
            _cache.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {_cache}: the model cache ($ASR_CACHE) cannot be used")
    assert ("not a folder" if how == "a-file" else "Permission denied") in err
