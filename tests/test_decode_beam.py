"""``asr decode --decoder beam`` and ``asr tune-decoder`` end to end on a tiny exported model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr import config as config_io
from asr.cli import main
from asr.data.manifest import Utterance, write_manifest
from asr.decode.base import DecodeError
from asr.decode.beam import BeamSearchConfig, beam_search
from asr.decode.beam_decoder import BeamDecoder
from asr.decode.spec import DecodeSpec, DecodeSpecError, load_search_config
from asr.errors import AsrError
from asr.inference.decoding import make_decoder
from asr.io.audio import save_audio
from asr.lm.io import load_lm, save_lm
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.models.ctc import CTCModel, ModelConfig, load_model_config
from asr.models.io import export_model, load_model
from asr.models.tcn import BlockConfig, EncoderConfig
from asr.text.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random model, an LSTM LM, a word ARPA and a 3-utterance manifest."""
    tmp = tmp_path_factory.mktemp("decode_beam")
    torch.manual_seed(0)
    frontend = dataclasses.replace(
        load_model_config(ROOT / "conf" / "model" / "small.yaml").frontend, num_mel_bins=40
    )
    encoder = EncoderConfig(
        (BlockConfig(32, 1, 11, stride=2), BlockConfig(32, 1, 1, separable=False))
    )
    tok = CharTokenizer()
    model = CTCModel(ModelConfig(encoder=encoder, frontend=frontend), tok.vocab_size).eval()
    export_model(model, tok, tmp / "model")
    lm = LSTMLM(LSTMLMConfig(embedding_dim=16, hidden_size=16, num_layers=1), tok.vocab).eval()
    save_lm(lm, tok, tmp / "lm")
    rate = model.cfg.frontend.sample_rate_hz
    rng = np.random.default_rng(0)
    utts = []
    for i, seconds in enumerate((0.6, 0.4, 0.8)):
        path = tmp / f"u{i}.wav"
        save_audio(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
        utts.append(Utterance(str(path), seconds, "A B", utt_id=f"u{i}"))
    write_manifest(tmp / "dev.jsonl", utts)
    (tmp / "words.arpa").write_text(
        "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t0\n"
        "-0.5\t</s>\t0\n-0.5\tAB\t0\n\n\\2-grams:\n-0.1\t<s> AB\n\n\\end\\\n"
    )
    return tmp


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_decode_with_lstm_lm_matches_library_search(setup):
    out = setup / "hyp.jsonl"
    rc = main(
        ["decode", "--model", str(setup / "model"), "--manifest", str(setup / "dev.jsonl"),
         "--out", str(out), "--decoder", "beam", "--lm", str(setup / "lm"), "--beam-size", "4",
         "--alpha", "0.7", "--decode-config", str(ROOT / "conf" / "decode" / "beam.yaml")]
    )  # fmt: skip
    assert rc == 0
    records = _records(out)
    assert [r["utt_id"] for r in records] == ["u0", "u1", "u2"]
    model, tok = load_model(setup / "model")
    search, _ = load_search_config(ROOT / "conf/decode/beam.yaml")
    dec = BeamDecoder(tok, search, load_lm(setup / "lm")[0])
    cfg = dataclasses.replace(dec.cfg, beam_size=4, alpha=0.7)
    from asr.io.audio import load_audio

    for r in records:
        wave, _ = load_audio(r["audio_filepath"], model.cfg.frontend.sample_rate_hz)
        wave_t = torch.from_numpy(wave)[None]
        with torch.no_grad():
            lp, lengths = model(wave_t, torch.tensor([wave_t.shape[1]]))
        best = beam_search(lp, lengths, cfg, dec.lm, tok)[0][0]
        assert r["pred_text"] == best.text
        assert len(r["token_times_s"]) == len(best.token_ids)


def test_lm_int8_option_switches_the_lstm_and_keeps_the_answer(setup):
    """``lm_int8: true`` runs the LSTM's steps in int8; on these emissions the best paths
    are those of float32 and the scores differ by rounding only."""
    from asr.lm.int8 import int8_available

    if not int8_available():
        pytest.skip("this torch build has no x86/fbgemm quantised engine")
    _, tok = load_model(setup / "model")
    gen = torch.Generator().manual_seed(3)
    log_probs = torch.log_softmax(3 * torch.randn(4, 30, tok.vocab_size, generator=gen), -1)
    lengths = torch.tensor([30, 25, 12, 30])
    search = BeamSearchConfig(beam_size=8, alpha=0.8)
    exact = make_decoder(DecodeSpec("beam", search, str(setup / "lm")), tok)
    fast = make_decoder(DecodeSpec("beam", search, str(setup / "lm"), lm_int8=True), tok)
    want, got = exact.decode(log_probs, lengths), fast.decode(log_probs, lengths)
    assert fast.lm.int8 and not exact.lm.int8
    assert [h.text for h in got] == [h.text for h in want]
    for a, b in zip(got, want, strict=True):
        assert a.lm_score != b.lm_score
        assert abs(a.lm_score - b.lm_score) < 0.05 * (len(a.token_ids) + 1)


def test_lm_int8_without_an_int8_engine_is_a_clear_error(setup, monkeypatch):
    """int8 is an option of loading the LM: asking for it without an engine fails at load."""
    from asr.lm import io as lm_io
    from asr.lm.base import LMError

    monkeypatch.setattr(lm_io, "int8_available", lambda: False)
    _, tok = load_model(setup / "model")
    spec = DecodeSpec("beam", BeamSearchConfig(beam_size=2), str(setup / "lm"), lm_int8=True)
    with pytest.raises(LMError, match="int8 steps need torch's x86/fbgemm int8 engine"):
        make_decoder(spec, tok)


def test_the_search_leaves_a_shared_lm_as_loaded(setup):
    """Two decoders over one LM object: the search never switches the LM's precision."""
    _, tok = load_model(setup / "model")
    lm, _ = load_lm(setup / "lm")
    log_probs = torch.zeros(1, 3, tok.vocab_size).log_softmax(-1)
    for cfg in (BeamSearchConfig(beam_size=2), BeamSearchConfig(beam_size=4, alpha=0.1)):
        BeamDecoder(tok, cfg, lm).decode(log_probs, torch.tensor([3]))
        assert lm.int8 is False


def test_decode_with_kenlm_and_errors(setup, capsys):
    out = setup / "hyp_kenlm.jsonl"
    pytest.importorskip("pyctcdecode")
    pytest.importorskip("kenlm")
    args = ["decode", "--model", str(setup / "model"), "--manifest", str(setup / "dev.jsonl"),
            "--out", str(out), "--decoder", "beam", "--overwrite"]  # fmt: skip
    assert main([*args, "--lm", str(setup / "words.arpa"), "--hotwords", "AB"]) == 0
    assert len(_records(out)) == 3
    capsys.readouterr()
    other = CharTokenizer(["<blank>", " ", "A", "B"])
    save_lm(LSTMLM(LSTMLMConfig(8, 8, 1), other.vocab), other, setup / "other_lm")
    assert main([*args, "--lm", str(setup / "other_lm")]) == 2
    err = capsys.readouterr().err
    assert "do not match" in err and err.count("\n") == 1
    assert main([*args, "--lm", str(setup / "nothing")]) == 2
    assert "not an LSTM LM folder" in capsys.readouterr().err
    greedy = ["decode", "--model", str(setup / "model"), "--manifest", str(setup / "dev.jsonl"),
              "--out", str(out), "--lm", str(setup / "lm"), "--overwrite"]  # fmt: skip
    assert main(greedy) == 0  # as in asr transcribe, --lm alone means beam search
    assert main([*greedy, "--decoder", "greedy"]) == 2
    assert "--decoder beam" in capsys.readouterr().err


def test_make_decoder_knows_beam(setup):
    tok = CharTokenizer()
    dec = make_decoder(DecodeSpec("beam", BeamSearchConfig(beam_size=3, alpha=0.1)), tok)
    assert isinstance(dec, BeamDecoder) and dec.cfg.beam_size == 3 and dec.lm is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"decoder": ""}, "decoder"),
        ({"decoder": "greedy", "lm": "exp/lm"}, "lm"),
        ({"decoder": "beam", "lm": "words.arpa"}, "lm"),
        ({"decoder": "kenlm", "lm": "exp/lm"}, "lm"),
        ({"decoder": "beam", "lm_int8": True}, "lm_int8"),
        ({"decoder": "kenlm", "lm": "w.arpa", "lm_int8": True}, "lm_int8"),
        ({"decoder": "beam", "hotwords": ("AB",)}, "hotwords"),
        ({"decoder": "greedy", "unigrams": "u.txt"}, "unigrams"),
        ({"decoder": "kenlm", "hotwords": "AB"}, "hotwords"),
        ({"decoder": "kenlm", "hotword_weight": float("nan")}, "hotword_weight"),
        ({"decoder": "beam", "search": {"beam_size": 4}}, "search"),
    ],
)
def test_decode_spec_rejects_bad_values_naming_the_field(fields, field):
    with pytest.raises(DecodeSpecError) as info:
        DecodeSpec(**fields)
    message = str(info.value)
    assert isinstance(info.value, DecodeError) and "\n" not in message
    assert message.startswith(f"decoding option {field}:"), message


def test_decode_spec_is_frozen_and_reads_decode_yamls(tmp_path):
    spec = DecodeSpec("beam", lm="exp/lm", lm_int8=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.lm = None  # type: ignore[misc]
    old = tmp_path / "old.yaml"  # decode.yaml files written before lm_int8 left the search
    old.write_text("beam_size: 4\nbeta: 1.0\nlm_int8: false\n")
    search, lm_int8 = load_search_config(old, beta=2.0)
    assert lm_int8 is False and search.beta == 2.0  # lm_int8 is the LM's, not the search's
    bundled = ROOT / "asr/pretrained/default/decode.yaml"
    search, lm_int8 = load_search_config(bundled)
    assert lm_int8 is None  # tune-decoder no longer writes it
    assert dataclasses.asdict(search) == yaml.safe_load(bundled.read_text())  # every key read
    assert load_search_config(None) == (BeamSearchConfig(), None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("beam_size: 4\nlm_int8: maybe\n")
    with pytest.raises(AsrError, match="lm_int8"):
        load_search_config(bad)


def test_tune_decoder(setup, capsys):
    out = setup / "tune"
    args = ["tune-decoder", "--model", str(setup / "model"), "--lm", str(setup / "lm"),
            "--manifest", str(setup / "dev.jsonl"), "--out", str(out), "--alphas", "0,0.5",
            "--betas", "0,1", "--beam-size", "4"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "tune.json").read_text())
    assert len(result["results"]) == 4
    best = result["best"]
    assert best["wer"] == min(r["wer"] for r in result["results"])
    cfg = config_io.load(BeamSearchConfig, out / "decode.yaml")
    assert (cfg.alpha, cfg.beta, cfg.beam_size) == (best["alpha"], best["beta"], 4)
    assert "| alpha | beta | WER % |" in (out / "tune.md").read_text()
    cache = out / "emissions.safetensors"
    stamp = cache.stat().st_mtime_ns
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*args[:-4], "--method", "coordinate"]) == 2  # before the emissions
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out / 'tune.md'}: exists (3 of the 3 files this run writes); " + (
        "pass --overwrite to replace them"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main([*args[:-4], "--method", "coordinate", "--overwrite"]) == 0  # emissions reused
    assert cache.stat().st_mtime_ns == stamp
    assert json.loads((out / "tune.json").read_text())["method"] == "coordinate"
