"""Models by name: the registry, the download cache and `asr models`, served from 127.0.0.1.

The NeMo fixture (``tests/fixtures/nemo/quartznet.nemo``, made by NeMo itself) is served under
the registry's file name of ``quartznet15x5`` and a tiny ARPA under that of
``librispeech-3gram``: first download, cache hit with the server gone, interrupted download
resumed, corrupt file refused and removed, trust on first use, unknown names, no network.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import socket
from pathlib import Path

import pytest
import torch

import asr.corpora.download as download_module
from asr.cli import main
from asr.corpora.download import DownloadError
from asr.models.io import load_model
from asr.models.nemo_import import build_model, load_nemo
from asr.pretrained import resolve_lm, resolve_model_dir
from asr.pretrained.cache import entry_path, fetch_entry, is_cached
from asr.pretrained.registry import RegistryError, read_registry
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


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache and no base URL from the environment."""
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ASR_BASE_URL", raising=False)
    monkeypatch.setattr(download_module, "RETRY_PAUSE_S", 0.0)
    return tmp_path / "cache"


@pytest.fixture
def server():
    files = {NEMO_PATH: NEMO_BYTES, ARPA_PATH: gzip.compress(ARPA.encode())}
    with serve(ServerState(files=files)) as state:
        yield state


def _dead_url() -> str:
    """A 127.0.0.1 URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _entry(**changes):
    return dataclasses.replace(read_registry().get("quartznet15x5"), **changes)


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
    assert sorted(p.name for p in downloads.iterdir()) == ["QuartzNet15x5Base-En.nemo.sha256"]
    assert "trust on first use" in capsys.readouterr().err
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
    rows = {line.split(" | ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["| quartznet15x5"].endswith("| yes |")
    assert rows["| jasper10x5dr"].endswith("| no |")
    assert "trust on first use" in rows["| jasper10x5dr"] and table.err.count("error") == 0


def test_interrupted_download_is_resumed(server, _cache: Path) -> None:
    server.drop_once.add(NEMO_PATH)  # the first answer stops half way
    fetch_entry(_entry(), base=server.base_url, progress=False)
    assert server.ranges(NEMO_PATH) == [None, f"bytes={len(NEMO_BYTES) // 2}-"]
    assert is_cached(_entry())


def test_download_left_by_a_dead_process_is_resumed(server, _cache: Path) -> None:
    part = _cache / "downloads" / "QuartzNet15x5Base-En.nemo.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(NEMO_BYTES[:1000])
    fetch_entry(_entry(), base=server.base_url, progress=False)
    assert server.ranges(NEMO_PATH) == ["bytes=1000-"]
    assert is_cached(_entry())


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
    server.files[NEMO_PATH] = b"x" + NEMO_BYTES[1:]
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_entry(entry, base=server.base_url, progress=False)
    assert not is_cached(entry)


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
