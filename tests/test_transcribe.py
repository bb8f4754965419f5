"""asr transcribe: chunked long recordings equal whole ones with global word timings, word
grouping and spans, output formats (SRT/VTT checked by independent parsers), per-file errors,
and agreement with ``asr decode`` on a real CTC model.

Long-recording tests use an exact, local "acoustic model" for the tone corpus of
tests/tone_corpus.py (each 20 ms frame: the tone present, or blank), so decoding is right by
construction and any difference comes from chunking, joining or timing.
"""

from __future__ import annotations

import itertools
import json
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import asr.inference.forward as inference_module
import asr.pretrained as pretrained
from asr.cli import main
from asr.data.inputs import AudioItem, collect_inputs
from asr.decode.spec import DecodeSpec
from asr.inference.decoding import make_decoder
from asr.inference.transcribe import TranscribeConfig, plan_chunks, transcribe_items
from asr.inference.vad import VadConfig
from asr.inference.word_timing import TokenSpan, token_spans, words_from_spans
from asr.text.tokenizer import CharTokenizer
from tests.tone_corpus import RATE, TINY_MODEL, TONES_HZ, bundle_with_lm, make_corpus

ENERGY = VadConfig(backend="energy")
FRAME_S = 0.02


class ToneOracle(nn.Module):
    """Per 20 ms frame the strongest tone of tests/tone_corpus.py, blank when quiet, as CTC
    log-probabilities over the CharTokenizer vocabulary. Output depends only on the frame."""

    def __init__(self, vocab: list[str]) -> None:
        super().__init__()
        self.cfg = types.SimpleNamespace(frontend=types.SimpleNamespace(sample_rate_hz=RATE))
        self.frame_shift_s = FRAME_S
        self.hop = round(FRAME_S * RATE)
        self.bins = [round(hz * FRAME_S) for hz in TONES_HZ.values()]  # 50 Hz per bin
        self.ids = [vocab.index(ch) for ch in TONES_HZ]
        self.vocab_size = len(vocab)
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor):
        frames = lengths // self.hop
        x = waves[:, : int(frames.max()) * self.hop].reshape(len(waves), -1, self.hop)
        power = torch.fft.rfft(x * torch.hann_window(self.hop), dim=-1).abs() ** 2
        tones = power[..., self.bins]  # (batch, frames, 4)
        loud, best = tones.max(dim=-1)
        probs = torch.full((*best.shape, self.vocab_size), 0.01 / self.vocab_size)
        token = torch.tensor(self.ids)[best]
        token[loud < 10.0] = 0  # quiet: blank
        probs.scatter_(-1, token[..., None], 0.97)
        return probs.log(), frames


def _tone(ch: str) -> np.ndarray:
    t = np.arange(round(0.12 * RATE)) / RATE
    return 0.3 * np.sin(2 * np.pi * TONES_HZ[ch] * t) * np.hanning(len(t))


def render_talk(words: list[str], pause_after: list[float], rng) -> tuple[np.ndarray, list]:
    """Words as tone letters (0.06 s apart) joined by the space tone; ``pause_after[i]`` extra
    seconds of silence after word i's space. Returns samples and per-word (start, end) s."""
    gap = np.zeros(round(0.06 * RATE))
    parts, spans = [np.zeros(round(0.5 * RATE))], []

    def add(x: np.ndarray) -> None:
        parts.append(x)

    for i, word in enumerate(words):
        start = sum(len(p) for p in parts) / RATE
        for ch in word:
            add(_tone(ch))
            add(gap)
        spans.append((start, sum(len(p) for p in parts) / RATE - 0.06))
        if i + 1 < len(words):
            add(_tone(" "))
            add(gap)
            add(np.zeros(round(pause_after[i] * RATE)))
    add(np.zeros(round(0.5 * RATE)))
    x = np.concatenate(parts)
    return (x + 0.003 * rng.standard_normal(len(x))).astype(np.float32), spans


@pytest.fixture(scope="module")
def oracle():
    tokenizer = CharTokenizer()
    return (
        ToneOracle(tokenizer.vocab).eval(),
        tokenizer,
        make_decoder(DecodeSpec("greedy"), tokenizer),
    )


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """~60 s of tone words with pauses every few words; stereo 22.05 kHz FLAC."""
    rng = np.random.default_rng(7)
    words = ["".join(rng.choice(list("ABC"), rng.integers(1, 4))) for _ in range(110)]
    words = [w[0] + "".join(b for a, b in itertools.pairwise(w) if b != a) for w in words]
    pauses = [float(rng.choice([0.0, 0.0, 0.5, 1.0])) for _ in words]
    samples, spans = render_talk(words, pauses, rng)
    path = tmp_path_factory.mktemp("talk") / "talk.flac"
    from asr.io.audio import resample

    wide = resample(samples, RATE, 22050)
    sf.write(path, np.stack([wide, 0.7 * wide], axis=1), 22050)
    return path, words, spans


def test_chunks_are_bounded_and_cut_in_pauses(talk):
    path, _, spans = talk
    duration, chunks = plan_chunks(AudioItem(str(path)), TranscribeConfig(10.0, vad=ENERGY))
    assert duration == pytest.approx(sf.info(path).duration, abs=1e-3)
    assert len(chunks) >= 6
    assert all(c.end - c.start <= 10.0 for c in chunks)
    assert chunks[0].start == 0.0 and chunks[-1].end == pytest.approx(duration)
    sounding = [(a, b + 0.18) for a, b in spans]  # each word and its space tone
    for a, b in itertools.pairwise(chunks):
        assert a.end == b.start
        assert not any(s - 0.05 < a.end < e + 0.05 for s, e in sounding), a.end


def test_chunked_equals_whole_with_global_times(talk, oracle, monkeypatch):
    path, words, spans = talk
    model, tokenizer, decoder = oracle
    item = AudioItem(str(path))
    [whole] = transcribe_items(model, tokenizer, decoder, [item], TranscribeConfig(120.0))
    reads = []
    real = inference_module.load_audio
    monkeypatch.setattr(
        inference_module, "load_audio", lambda *a, **k: reads.append(a[3]) or real(*a, **k)
    )
    cfg = TranscribeConfig(10.0, batch_seconds=30.0, vad=ENERGY)
    [chunked] = transcribe_items(model, tokenizer, decoder, [item], cfg)
    assert len(chunked.chunks) >= 6 and max(reads) <= 10.0
    assert whole.text == chunked.text == " ".join(words)
    assert [w.text for w in chunked.words] == words
    for w, c, (start, end) in zip(whole.words, chunked.words, spans):
        assert abs(w.start - c.start) <= FRAME_S + 1e-6 and abs(w.end - c.end) <= FRAME_S + 1e-6
        assert abs(c.start - start) <= 2 * FRAME_S and abs(c.end - end) <= 2 * FRAME_S, (c, start)
        assert c.confidence == pytest.approx(0.97, abs=0.01)


def test_batches_across_files_keep_order_and_errors(tmp_path, oracle, monkeypatch):
    model, tokenizer, decoder = oracle
    rng = np.random.default_rng(3)
    items, expected = [], []
    for i in range(5):
        words = ["AB", "C", "BA"][: i % 3 + 1]
        samples, _ = render_talk(words, [0.0] * len(words), rng)
        sf.write(tmp_path / f"f{i}.wav", samples, RATE)
        items.append(AudioItem(str(tmp_path / f"f{i}.wav")))
        expected.append(" ".join(words))
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    items.insert(2, AudioItem(str(tmp_path / "bad.wav")))
    items.insert(4, AudioItem(str(tmp_path / "missing.wav")))
    seen = []
    real = inference_module.infer_batch
    monkeypatch.setattr(
        "asr.inference.transcribe.infer_batch",
        lambda m, keyed: seen.append([i.duration_s for _, i in keyed]) or real(m, keyed),
    )
    out = list(
        transcribe_items(model, tokenizer, decoder, items, TranscribeConfig(batch_seconds=4.0))
    )
    assert [t.item for t in out] == items
    # batches of padded seconds, as asr decode's: several chunks, never over 4 s padded
    assert max(map(len, seen)) >= 2 and all(len(b) * max(b) <= 4.0 for b in seen)
    assert [t.text for t in out if t.error is None] == expected
    assert "bad.wav" in out[2].error and "missing.wav" in out[4].error


def test_token_spans_and_confidence():
    lp = torch.full((8, 4), 0.1).log()
    best = [1, 1, 0, 2, 2, 2, 0, 1]
    for f, b in enumerate(best):
        lp[f, b] = np.log(0.7)
    spans = token_spans([1, 2, 1], [0, 3, 7], lp)
    assert [(s.token_id, s.start, s.end) for s in spans] == [(1, 0, 2), (2, 3, 6), (1, 7, 8)]
    assert spans[1].prob_sum == pytest.approx(3 * 0.7)
    assert token_spans([], [], lp) == []


def test_words_from_sentencepiece_pieces(tmp_path):
    from asr.text.tokenizer import SentencePieceTokenizer

    texts = ["THE CAT SAT ON THE MAT", "A DOG RAN TO THE CAT", "CATS AND DOGS SAT"] * 20
    tok = SentencePieceTokenizer.train(texts, tmp_path, vocab_size=30)
    ids = tok.encode("THE CATS RAN")
    spans = [TokenSpan(t, 2 * i, 2 * i + 1, 0.5) for i, t in enumerate(ids)]
    words = words_from_spans(spans, tok, 0.04, 10.0)
    assert [w.text for w in words] == ["THE", "CATS", "RAN"]
    assert words[0].start == 10.0 and all(w.confidence == 0.5 for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))


def test_collect_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.wav", "d/sub/a.flac", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "x.wav", "duration": 2.5, "text": "HI"}))
    items, errors = collect_inputs([tmp_path / "d", tmp_path / "empty", manifest, "y.mp3"])
    assert [Path(i.path).name for i in items] == ["b.wav", "a.flac", "x.wav", "y.mp3"]
    assert items[2].duration_s == 2.5 and items[2].text == "HI"
    assert len(errors) == 1 and "empty" in errors[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny CTC model (its greedy paths are varied)."""
    from asr import config as config_io
    from asr.models.ctc import CTCModel, ModelConfig
    from asr.models.io import export_model

    torch.manual_seed(0)
    model = CTCModel(config_io.from_dict(ModelConfig, TINY_MODEL, where="test"), 29)
    return export_model(model.eval(), CharTokenizer(), tmp_path_factory.mktemp("m") / "model")


def test_cli_matches_asr_decode_and_scores(tmp_path, model_dir, capsys):
    corpus = make_corpus(tmp_path / "audio", 5, seed=4, name="test")
    hyp, ref = tmp_path / "hyp.jsonl", tmp_path / "dec.jsonl"
    assert main(["decode", "--model", str(model_dir), "--manifest", str(corpus),
                 "--out", str(ref)]) == 0  # fmt: skip
    args = ["transcribe", str(corpus), "--model", str(model_dir), "--device", "cpu"]
    assert main([*args, "--format", "manifest", "--out", str(hyp)]) == 0
    got = [json.loads(line) for line in hyp.read_text().splitlines()]
    want = [json.loads(line) for line in ref.read_text().splitlines()]
    assert [g["pred_text"] for g in got] == [" ".join(w["pred_text"].split()) for w in want]
    assert [g["utt_id"] for g in got] == [w["utt_id"] for w in want]
    assert all(g["text"] == w["text"] for g, w in zip(got, want))
    capsys.readouterr()
    assert main(["score", str(corpus), str(hyp), "--json"]) == 0
    assert "wer" in json.loads(capsys.readouterr().out)
    beam = ["--decoder", "beam", "--beam-size", "4", "--overwrite"]  # over the greedy files
    assert main(["decode", "--model", str(model_dir), "--manifest", str(corpus),
                 "--out", str(ref), *beam]) == 0  # fmt: skip
    assert main([*args, "--format", "manifest", "--out", str(hyp), *beam]) == 0
    got = [json.loads(line)["pred_text"] for line in hyp.read_text().splitlines()]
    want = [json.loads(line)["pred_text"] for line in ref.read_text().splitlines()]
    assert got == [" ".join(w.split()) for w in want]


def test_cli_formats_and_per_file_errors(tmp_path, model_dir, capsys):
    corpus = make_corpus(tmp_path / "audio", 2, seed=5, name="x")
    bad = tmp_path / "audio" / "broken.flac"
    bad.write_bytes(b"fLaC" + bytes(40))
    base = ["transcribe", "--model", str(model_dir), "--device", "cpu"]
    inputs = [str(tmp_path / "audio"), str(tmp_path / "gone.wav")]
    for fmt in ("json", "srt", "vtt", "txt"):
        assert main([*base, *inputs, "--format", fmt, "--out", f"{tmp_path}/{fmt}/"]) == 1
        err = capsys.readouterr().err
        assert "broken.flac" in err and "gone.wav" in err and "2 input(s) failed" in err
        assert sorted(p.name for p in (tmp_path / fmt).iterdir()) == [
            f"x-000.{fmt}",
            f"x-001.{fmt}",
        ]
    record = json.loads((tmp_path / "json" / "x-000.json").read_text())
    assert set(record) >= {"audio_filepath", "duration", "text", "words", "chunks"}
    for w in record["words"]:
        assert set(w) == {"text", "start", "end", "confidence"} and 0 <= w["start"] < w["end"]
    assert " ".join(w["text"] for w in record["words"]) == record["text"]
    # txt for several inputs on stdout: Kaldi-style lines
    assert main([*base, str(corpus), "--format", "txt"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["x-000", "x-001"]
    # subtitles of several inputs need a folder
    assert main([*base, str(corpus), "--format", "srt", "--out", str(tmp_path / "a.srt")]) == 2
    assert "folder" in capsys.readouterr().err
    # two inputs with one stem in different folders keep distinct ids (issue 17 item 11), told
    # apart by their folders (issue 25 item 15)
    twin = tmp_path / "twin" / "x-000.wav"
    twin.parent.mkdir()
    twin.write_bytes((tmp_path / "audio" / "x-000.wav").read_bytes())
    pair = [str(tmp_path / "audio" / "x-000.wav"), str(twin)]
    assert main([*base, *pair, "--format", "txt"]) == 0
    assert [line.split(" ", 1)[0] for line in capsys.readouterr().out.splitlines()] == [
        "audio/x-000",
        "twin/x-000",
    ]
    assert main([*base, *pair, "--format", "manifest", "--out", str(tmp_path / "h.jsonl")]) == 0
    ids = [json.loads(line)["utt_id"] for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert ids == ["audio/x-000", "twin/x-000"]


def test_no_default_model_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL_DIR", tmp_path / "none")
    assert main(["transcribe", str(tmp_path / "a.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no default model") and "--model" in err
    assert len(err.splitlines()) == 1


def test_model_folder_decode_config_and_lm_are_used_by_default(
    tmp_path, model_dir, capsys, monkeypatch
):
    """A model folder with decode.yaml + lm/ (the bundled default's layout) is decoded with
    them unless decoder options are given; the result equals asking for them explicitly."""
    bundle = bundle_with_lm(model_dir, tmp_path / "bundle")
    corpus = make_corpus(tmp_path / "audio", 3, seed=6, name="b")
    base = ["transcribe", str(corpus), "--device", "cpu", "--format", "txt"]

    def run(*extra: str) -> list[str]:
        assert main([*base, *extra]) == 0
        return capsys.readouterr().out.splitlines()

    default = run("--model", str(bundle))
    explicit = run("--model", str(bundle), "--lm", str(bundle / "lm"),
                   "--decode-config", str(bundle / "decode.yaml"))  # fmt: skip
    greedy = run("--model", str(bundle), "--decoder", "greedy")
    assert default == explicit
    assert greedy == run("--model", str(model_dir))  # no decode.yaml: greedy
    assert default != greedy  # alpha 3 with a random LM changes the text
    # asr decode follows the same convention, and without --model uses the bundled model
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL_DIR", bundle)
    for model in ([], ["--model", str(bundle)]):
        hyp = tmp_path / f"hyp{len(model)}.jsonl"
        assert main(["decode", *model, "--manifest", str(corpus), "--out", str(hyp)]) == 0
        texts = [json.loads(line)["pred_text"] for line in hyp.read_text().splitlines()]
        assert [" ".join(t.split()) for t in texts] == [line.split(" ", 1)[1] for line in default]


def _random_words(seed: int, count: int) -> list:
    """Timed words with random lengths, durations and pauses (some long words and gaps)."""
    from asr.inference.word_timing import Word

    rng = np.random.default_rng(seed)
    words, t = [], 0.3
    for _ in range(count):
        length = int(rng.choice([1, 3, 5, 8, 12, 50]))
        dur = float(rng.uniform(0.05, 0.9))
        words.append(Word("W" * length, round(t, 3), round(t + dur, 3), 0.9))
        t += dur + float(rng.choice([0.0, 0.05, 0.2, 1.5]))
    return words


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subtitles_parse_with_independent_readers(seed):
    import io

    srt = pytest.importorskip("srt")
    webvtt = pytest.importorskip("webvtt")
    from asr.inference.subtitles import SubtitleStyle, format_srt, format_vtt, make_cues

    words = _random_words(seed, 300)
    style = SubtitleStyle()
    cues = make_cues(words, style)
    parsed = list(srt.parse(format_srt(cues)))
    captions = list(webvtt.from_buffer(io.StringIO(format_vtt(cues))))
    assert len(parsed) == len(captions) == len(cues) > 30
    assert [p.index for p in parsed] == list(range(1, len(cues) + 1))
    assert " ".join(p.content.replace("\n", " ") for p in parsed) == " ".join(w.text for w in words)
    assert [c.text for c in captions] == [p.content for p in parsed]
    for p, c in zip(parsed, captions):
        start, end = p.start.total_seconds(), p.end.total_seconds()
        assert c.start_in_seconds == int(start) and 0 <= start < end
        lines = p.content.split("\n")
        assert len(lines) <= style.max_lines
        assert all(len(line) <= style.max_line_chars or " " not in line for line in lines)
    for a, b in itertools.pairwise(parsed):
        assert a.end <= b.start
    for cue in cues:  # longest time on screen, unless a single word is longer
        assert cue.end - cue.start <= style.max_cue_s or len(cue.lines[0].split()) == 1


def test_srt_and_vtt_files_from_the_cli(tmp_path, talk, oracle, monkeypatch):
    srt = pytest.importorskip("srt")
    from asr.inference.subtitles import format_timestamp
    from asr.inference.writers import OutputWriter

    path, words, _ = talk
    model, tokenizer, decoder = oracle
    [t] = transcribe_items(model, tokenizer, decoder, [AudioItem(str(path))])
    for fmt in ("srt", "vtt"):
        writer = OutputWriter(fmt, tmp_path / f"talk.{fmt}", [t.item.name])
        writer.add(t)
        assert writer.close() == [tmp_path / f"talk.{fmt}"]
    text = (tmp_path / "talk.srt").read_text()
    cues = list(srt.parse(text))
    assert " ".join(c.content.replace("\n", " ") for c in cues) == " ".join(words)
    vtt = (tmp_path / "talk.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and "," not in vtt.split("\n")[2]
    assert format_timestamp(3725.0456) == "01:02:05,046"
    assert format_timestamp(59.9996, ".") == "00:01:00.000"


def test_progress_bar_ends_at_its_total_and_text_starts_a_line(tmp_path, talk, oracle, capsys):
    """The bar counts audio seconds to exactly 100 % (no 310.65999999999997/310.66), and a
    transcript printed on the bar's terminal starts its own line (the bar is cleared first)."""
    import io

    from tqdm import tqdm

    from asr.inference.writers import OutputWriter

    path = talk[0]
    model, tokenizer, decoder = oracle
    items = [AudioItem(str(path)), AudioItem(str(path), offset_s=1.37, duration_s=11.11)]
    cfg = TranscribeConfig(10.0, batch_seconds=30.0, vad=ENERGY)
    capsys.readouterr()
    [t, _] = transcribe_items(model, tokenizer, decoder, items, cfg, progress=True)
    last = capsys.readouterr().err.replace("\n", "\r").split("\r")
    last = [part for part in last if part.strip()][-1]
    total = sf.info(path).duration + 11.11
    assert last.startswith("transcribe: 100%") and f"{total:.1f}/{total:.1f} s" in last, last
    screen = io.StringIO()  # stdout and the bar's stderr on one terminal
    bar = tqdm(total=10, file=screen, desc="transcribe")
    bar.update(3)
    bar.refresh()
    OutputWriter("txt", None, [t.item.name], stdout=screen).add(t)
    from asr.inference.writers import render

    before = screen.getvalue().split(render(t, "txt").splitlines()[0])[0]
    assert before.endswith("\r") and "3/10" in before
    bar.close()


def test_summary_has_no_rate_when_every_input_fails(tmp_path, model_dir, capsys):
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC" + bytes(40))
    assert main(["transcribe", str(bad), "--model", str(model_dir), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "transcribed 0/1 input(s), 0.0 s of audio" in err and "RTF" not in err


def test_txt_and_tsv_lines_break_at_pauses_and_all_writes_every_format(tmp_path, oracle):
    """txt: one line per pause-delimited segment, wrapped at 100 characters (a 5-minute file was
    one 3,861-character line); tsv: whisper's header and integer milliseconds; all: every
    per-input format next to each other."""
    import csv
    import textwrap

    from asr.inference.writers import ALL_FORMATS, OutputWriter, render

    model, tokenizer, decoder = oracle
    rng = np.random.default_rng(11)
    words = ["".join(rng.choice(list("ABC"), 3)) for _ in range(90)]
    words = [w[0] + "".join(b for a, b in itertools.pairwise(w) if b != a) for w in words]
    pauses = [1.5 if i in (9, 14, 70) else 0.0 for i in range(len(words))]  # 55 words unbroken
    samples, spans = render_talk(words, pauses, rng)
    sf.write(tmp_path / "talk.wav", samples, RATE)
    cfg = TranscribeConfig(120.0)  # one chunk: a long run without pauses is not cut
    [t] = transcribe_items(model, tokenizer, decoder, [AudioItem(str(tmp_path / "talk.wav"))], cfg)
    assert t.text == " ".join(words)
    groups = [words[:10], words[10:15], words[15:71], words[71:]]
    want = [line for g in groups for line in textwrap.wrap(" ".join(g), 100)]
    assert render(t, "txt").splitlines() == want and len(want) > len(groups)
    rows = list(csv.reader(render(t, "tsv").splitlines(), delimiter="\t"))
    assert rows[0] == ["start", "end", "text"] and [r[2] for r in rows[1:]] == want
    first = 0
    for start_ms, end_ms, text in rows[1:]:
        count = len(text.split())
        span_start, span_end = spans[first][0], spans[first + count - 1][1]
        assert abs(int(start_ms) / 1000 - span_start) <= 2 * FRAME_S
        assert abs(int(end_ms) / 1000 - span_end) <= 2 * FRAME_S
        first += count
    writer = OutputWriter("all", f"{tmp_path}/out/", [t.item.name])
    writer.add(t)
    assert sorted(p.name for p in writer.close()) == sorted(f"talk.{f}" for f in ALL_FORMATS)
    for fmt in ALL_FORMATS:
        assert (tmp_path / "out" / f"talk.{fmt}").read_text() == render(t, fmt)


def test_all_and_tsv_need_a_folder(tmp_path, model_dir, capsys):
    corpus = make_corpus(tmp_path / "audio", 2, seed=5, name="x")
    base = ["transcribe", str(corpus), "--model", str(model_dir), "--device", "cpu"]
    for fmt, out in (("all", []), ("all", ["--out", str(tmp_path / "a.txt")]),
                     ("tsv", ["--out", str(tmp_path / "a.tsv")])):  # fmt: skip
        assert main([*base, "--format", fmt, *out]) == 2
        err = capsys.readouterr().err
        assert "folder" in err and len(err.splitlines()) == 1
    assert main([*base, "--format", "all", "--out", f"{tmp_path}/o/"]) == 0
    assert len(list((tmp_path / "o").iterdir())) == 10
