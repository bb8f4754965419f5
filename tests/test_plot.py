"""asr plot: training curves and one utterance's features, posteriors and tokens as PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.cli import main
from asr.inference.plot import PlotError, plot_curves, utterance_outputs
from tests.tone_corpus import RATE, TINY_MODEL, bundle_with_lm, render

pytest.importorskip("matplotlib")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from asr import config as config_io
    from asr.models.ctc import CTCModel, ModelConfig
    from asr.models.io import export_model
    from asr.text.tokenizer import CharTokenizer

    torch.manual_seed(0)
    model = CTCModel(config_io.from_dict(ModelConfig, TINY_MODEL, where="test"), 29)
    return export_model(model.eval(), CharTokenizer(), tmp_path_factory.mktemp("m") / "model")


def test_curves_png(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    records = [{"step": s, "train/loss": 10.0 / s} for s in range(1, 41)]
    records += [{"step": s, "valid/loss": 12.0 / s, "valid/wer": 1.0 / s} for s in (10, 20, 40)]
    (exp / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = plot_curves(exp, tmp_path / "c.png")
    width, height = _png_size(out)
    assert width > 500 and height > 200 and out.stat().st_size > 10_000
    assert main(["plot", "curves", str(exp), "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 10_000
    # a run without a validation set (the yesno recipe): one loss panel, no empty second one
    train_only = [r for r in records if "train/loss" in r]
    (exp / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_only))
    alone = _png_size(plot_curves(exp, tmp_path / "e.png"))
    assert alone[1] == height and alone[0] < 0.6 * width


def test_curves_without_log_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(PlotError, match="no training log"):
        plot_curves(tmp_path, tmp_path / "c.png")
    assert main(["plot", "curves", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_utterance_outputs_agree_with_the_model(model_dir):
    from asr.decode.greedy import greedy_decode
    from asr.models.io import load_model

    model, _ = load_model(model_dir)
    samples = render("AB CA", np.random.default_rng(0))
    feats, post, tokens = utterance_outputs(model, samples)
    n = torch.tensor([len(samples)])
    assert len(feats) == int(model.frontend.num_frames(n)[0])
    assert len(post) == int(model.output_lengths(n)[0])
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-4)
    with torch.no_grad():
        log_probs, lengths = model(torch.from_numpy(samples)[None], n)
    hyp = greedy_decode(log_probs, lengths)[0]
    assert tokens == list(zip(hyp.frames, hyp.token_ids)) and tokens


def test_utterance_png(tmp_path, model_dir):
    audio = tmp_path / "utt.wav"
    samples = render("AB CA", np.random.default_rng(1))
    sf.write(audio, np.stack([samples, samples], axis=1), RATE)
    out = tmp_path / "u.png"
    args = ["plot", "utterance", "--model", str(model_dir), str(audio), "--out", str(out)]
    assert main(args) == 0
    width, height = _png_size(out)
    assert width > 800 and height > 400 and out.stat().st_size > 10_000


def test_utterance_too_long_and_missing_matplotlib(tmp_path, model_dir, monkeypatch):
    from asr.api import load_model
    from asr.inference.plot import plot_utterance

    model = load_model(model_dir, device="cpu")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(61 * 8000, dtype=np.float32), 8000)
    with pytest.raises(PlotError, match="too long"):
        plot_utterance(model.network, model.tokenizer, long, tmp_path / "x.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError, match="matplotlib is not installed"):
        plot_utterance(model.network, model.tokenizer, long, tmp_path / "x.png")


def test_utterance_title_is_what_transcribe_prints_and_names_the_decoding(
    tmp_path, model_dir, monkeypatch, capsys
):
    """A model folder with decode.yaml + lm/ (the bundled model's layout): the title shows the
    beam + LM text that asr transcribe prints, not the greedy path, and says which it is."""
    import asr.inference.plot as plot_module

    bundle = bundle_with_lm(model_dir, tmp_path / "bundle")
    audio = tmp_path / "utt.wav"
    sf.write(audio, render("AB CA BC", np.random.default_rng(2)), RATE)
    titles = []
    monkeypatch.setattr(
        plot_module, "draw_utterance", lambda *a, title="", **k: titles.append(title) or a[-1]
    )

    def printed(*extra: str) -> str:
        assert main(["transcribe", str(audio), "--model", str(bundle), *extra]) == 0
        return capsys.readouterr().out.strip()

    base = ["plot", "utterance", "--model", str(bundle), str(audio), "--out"]
    assert main([*base, str(tmp_path / "a.png")]) == 0
    assert main([*base, str(tmp_path / "b.png"), "--decoder", "greedy"]) == 0
    capsys.readouterr()
    beam, greedy = printed(), printed("--decoder", "greedy")
    assert beam != greedy
    titles = [" ".join(t.split()) for t in titles]  # a long title is wrapped
    assert titles == [f"utt.wav, beam 4 + LM: {beam}", f"utt.wav, greedy: {greedy}"]
