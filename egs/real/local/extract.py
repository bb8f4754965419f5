"""Extract the real-speech audio from bare git mirrors into a plain folder layout.

The audio of the sets described in ../shared/data/real-speech/README.md lives in public GitHub
repositories; this script reads each file as a blob at the exact commit its set's SOURCE.md names
(`git cat-file --batch`, one git process at a time) and writes:

    <out>/<set>/transcripts.tsv             (copy of <shared>/<set>/transcripts.tsv)
    <out>/<set>/audio/<utt-id>.<flac|wav|mp3>

Getting the mirrors: bring each repository listed in ../shared/data/real-speech/README.md with any
`git clone --bare` (or `git clone --mirror`, or a fetch tool) into <mirrors>/<owner>+<name>/repo,
e.g. `git clone --bare https://github.com/rigved/rit-engl-682-spring-2021-project
/work/.mirror/rigved+rit-engl-682-spring-2021-project/repo`. A non-bare clone whose git directory is
<mirrors>/<owner>+<name>/repo/.git is accepted too. Only the standard library and git are used.

Existing audio files of the same size are skipped; one that differs is kept, and reported, unless
--overwrite is given. Every write goes to a temporary file in the same folder, then os.replace.
Durations come from the file headers (FLAC STREAMINFO, WAV fmt/data chunks, MP3 frame walk).
Run from the repository root:

    python egs/real/local/extract.py --out /work/real-speech
    python egs/real/local/extract.py --out /work/real-speech commonvoice-en-rigved
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

# repository key -> (GitHub owner/name, exact commit)
REPOS: dict[str, tuple[str, str]] = {
    "csuk": ("csukuangfj/librispeech-subset", "3f4aae99f63970b5a1332424c2f6f2c73d826f4a"),
    "so762": ("jimbozhang/speechocean762", "613968e3b0b789fc33936fb5eba1973176ba7d11"),
    "lj": ("PrernaSocity/lj_speech_dataset_part_1", "328134a60409b5d1060f411fde6fa0eb20b22150"),
    "vctk": ("avgaydashenko/speech-recognition-hw", "68ae13611fe455889a813d130847129024c44f2b"),
    "rigved": (
        "rigved/rit-engl-682-spring-2021-project",
        "637c494f0bff9f6e251b92beb2838c2c93819b9a",
    ),
    "omni": (
        "omnilingo/rsample-100-cv-corpus-6.1-2020-12-11",
        "6785f863fec9770151abfe50a5e3e3787fd20ba2",
    ),
    "puri": ("puri-gagan/speechdataset", "4b7ec8a6084853c3d73b69a418a4394b64c8d988"),
    "kaggle": (
        "Venkateshbhakthavat/Project-Discussion",
        "79e7b2c9a86d7c3c8aeeb12d5335661b4a848d4f",
    ),
    "spkanon": ("carlosfranzreb/spkanon_eval", "dd0c89909b4d2f4a68192a4928d65b1996fd1018"),
    "mozai": ("mozilla-ai/speech-to-text-finetune", "dff8cbda2ce5c993eeb5b89dc914a3853f45ed8f"),
}

Location = tuple[str, str]  # (repository key, path inside the repository)


def fail(message: str) -> NoReturn:
    sys.exit(f"extract.py: {message}")


class Mirrors:
    """The bare git directories under one folder, checked to hold the commits in REPOS."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._so762: dict[str, str] | None = None

    def gitdir(self, key: str) -> Path:
        name, _ = REPOS[key]
        repo = self.root / name.replace("/", "+") / "repo"
        return repo / ".git" if (repo / ".git").is_dir() else repo

    def check(self, key: str) -> None:
        name, commit = REPOS[key]
        gitdir = self.gitdir(key)
        url = f"https://github.com/{name}"
        if not (gitdir / "objects").is_dir():
            fail(f"no mirror of {name} at {gitdir}; fetch it: git clone --bare {url} {gitdir}")
        cmd = ["git", f"--git-dir={gitdir}", "cat-file", "-e", f"{commit}^{{commit}}"]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            fail(
                f"the mirror of {name} at {gitdir} lacks commit {commit}; fetch it: "
                f"git --git-dir={gitdir} fetch {url} {commit}"
            )

    def show(self, key: str, path: str) -> str:
        name, commit = REPOS[key]
        cmd = ["git", f"--git-dir={self.gitdir(key)}", "show", f"{commit}:{path}"]
        done = subprocess.run(cmd, capture_output=True)
        if done.returncode != 0:
            fail(f"{name} has no {path} at {commit}; fetch that commit again")
        return done.stdout.decode()

    def so762_path(self, utt_id: str) -> str | None:
        if self._so762 is None:
            self._so762 = {}
            for part in ("train", "test"):
                for line in self.show("so762", f"{part}/wav.scp").splitlines():
                    if line.strip():
                        key, value = line.split(None, 1)
                        self._so762[key] = value.strip()
        return self._so762.get(utt_id)


Mapper = Callable[[list[str], Mirrors], Location | None]


def map_csuk(row: list[str], _: Mirrors) -> Location:
    speaker, chapter, _ = row[0].split("-")
    return "csuk", f"{row[3]}/{speaker}/{chapter}/{row[0]}.flac"


def map_so762(row: list[str], mirrors: Mirrors) -> Location | None:
    path = mirrors.so762_path(row[0])
    return ("so762", path) if path else None


def map_cvsamples(row: list[str], _: Mirrors) -> Location | None:
    if row[0].startswith("cv61_"):
        return "omni", f"en/clips/{row[0].removeprefix('cv61_')}.mp3"
    if row[0].startswith("cvold_"):
        return "puri", f"clips/{row[0].removeprefix('cvold_')}.mp3"
    return None


def map_kaggle(row: list[str], _: Mirrors) -> Location | None:
    if not row[0].startswith("cvvt_"):
        return None
    return "kaggle", f"cv-valid-test/{row[0].removeprefix('cvvt_')}.mp3"


def map_spkanon(row: list[str], _: Mirrors) -> Location:
    speaker, chapter, _ = row[0].split("-")
    return "spkanon", f"tests/data/LibriSpeech/dev-clean-2/{speaker}/{chapter}/{row[0]}.flac"


def map_mozai(row: list[str], _: Mirrors) -> Location | None:
    match = re.fullmatch(r"mozai-(train|test)-(rec_\d+)", row[0])
    if match is None:
        return None
    return "mozai", f"example_data/custom/{match.group(1)}/clips/{match.group(2)}.wav"


# set name -> (repository keys it reads, row -> location)
SETS: dict[str, tuple[tuple[str, ...], Mapper]] = {
    "librispeech-csukuangfj-subset": (("csuk",), map_csuk),
    "speechocean762": (("so762",), map_so762),
    "ljspeech-prerna": (("lj",), lambda row, _: ("lj", f"LJSpeech-1.1/wavs/{row[0]}.wav")),
    "vctk-p239": (("vctk",), lambda row, _: ("vctk", f"data/VCTK-Corpus/wav48/p239/{row[0]}.wav")),
    "commonvoice-en-rigved": (("rigved",), lambda row, _: ("rigved", f"data/{row[0]}.wav")),
    "commonvoice-en-samples": (("omni", "puri"), map_cvsamples),
    "commonvoice-kaggle-valid-test51": (("kaggle",), map_kaggle),
    "librispeech-devclean2-spkanon": (("spkanon",), map_spkanon),
    "librispeech-devclean-mozai": (("mozai",), map_mozai),
}


# ---------------------------------------------------------------- durations from headers
def flac_seconds(data: bytes) -> float | None:
    if data[:4] != b"fLaC":
        return None
    i = 4
    while i + 4 <= len(data):
        kind, length = data[i], int.from_bytes(data[i + 1 : i + 4], "big")
        if kind & 0x7F == 0:  # STREAMINFO
            bits = int.from_bytes(data[i + 14 : i + 22], "big")
            rate, samples = bits >> 44, bits & ((1 << 36) - 1)
            return samples / rate if rate else None
        if kind & 0x80:  # last metadata block
            return None
        i += 4 + length
    return None


def wav_seconds(data: bytes) -> float | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    i, rate, align, size = 12, 0, 0, None
    while i + 8 <= len(data):
        chunk, length = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
        if chunk == b"fmt ":
            _, _, rate, _, align = struct.unpack("<HHIIH", data[i + 8 : i + 22])
        elif chunk == b"data":
            size = min(length, len(data) - i - 8)
        i += 8 + length + (length & 1)
    if not (rate and align and size is not None):
        return None
    return size / align / rate


_KBPS = {
    True: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],  # MPEG-1 layer III
    False: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],  # MPEG-2/2.5 layer III
}
_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


def mp3_seconds(data: bytes) -> float | None:
    i = 0
    if data[:3] == b"ID3":
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        i = 10 + size + (10 if data[5] & 0x10 else 0)
    samples, first_rate, frames = 0, 0, 0
    while i + 4 <= len(data):
        head = int.from_bytes(data[i : i + 4], "big")
        version, layer = (head >> 19) & 3, 4 - ((head >> 17) & 3)
        bitrate, rate_index, pad = (head >> 12) & 15, (head >> 10) & 3, (head >> 9) & 1
        valid = (head >> 21) & 0x7FF == 0x7FF and version != 1 and layer == 3
        if not valid or bitrate in (0, 15) or rate_index == 3:
            if frames:
                break
            i += 1  # resync: junk before the first frame
            continue
        mpeg1 = version == 3
        rate = _RATES[version][rate_index]
        i += (144 if mpeg1 else 72) * _KBPS[mpeg1][bitrate] * 1000 // rate + pad
        samples += 1152 if mpeg1 else 576
        first_rate = first_rate or rate
        frames += 1
    return samples / first_rate if frames else None


SECONDS = {"flac": flac_seconds, "wav": wav_seconds, "mp3": mp3_seconds}


# ---------------------------------------------------------------- extraction
class BlobReader:
    """One `git cat-file --batch` process over a git directory."""

    def __init__(self, gitdir: Path) -> None:
        cmd = ["git", f"--git-dir={gitdir}", "cat-file", "--batch"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def get(self, spec: str) -> bytes | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(spec.encode() + b"\n")
        self.proc.stdin.flush()
        parts = self.proc.stdout.readline().decode().split()
        if len(parts) != 3 or parts[1] != "blob":
            return None
        data = self.proc.stdout.read(int(parts[2]))
        self.proc.stdout.read(1)  # the newline after the contents
        return data

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def write_file(path: Path, data: bytes, overwrite: bool, exact: bool = False) -> str:
    """Write data to path atomically; return 'written', 'skipped' (same size) or 'kept'.

    With exact, an existing file is skipped only when its bytes are the same.
    """
    if path.exists():
        if path.read_bytes() == data if exact else path.stat().st_size == len(data):
            return "skipped"
        if not overwrite:
            return "kept"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return "written"


class Summary:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.seconds = 0.0
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


def extract_set(name: str, shared: Path, out: Path, mirrors: Mirrors, overwrite: bool) -> Summary:
    keys, mapper = SETS[name]
    source = shared / name / "transcripts.tsv"
    text = source.read_bytes()
    rows = [line.split("\t") for line in text.decode("utf-8").splitlines() if line.strip()]
    audio = out / name / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    summary = Summary(rows=len(rows))
    if write_file(out / name / "transcripts.tsv", text, overwrite, exact=True) == "kept":
        summary.problems.append("transcripts.tsv differs from the shared copy (kept)")
    plan: dict[str, list[tuple[str, str]]] = {key: [] for key in keys}
    for row in rows:
        location = mapper(row, mirrors)
        if location is None:
            summary.add("missing")
            summary.problems.append(f"{row[0]}: no path for it in the repositories")
        else:
            plan[location[0]].append((row[0], location[1]))
    for key, items in plan.items():
        reader = BlobReader(mirrors.gitdir(key))
        try:
            for utt_id, path in items:
                extract_one(reader, key, utt_id, path, audio, overwrite, summary)
        finally:
            reader.close()
    return summary


def extract_one(
    reader: BlobReader,
    key: str,
    utt_id: str,
    path: str,
    audio: Path,
    overwrite: bool,
    summary: Summary,
) -> None:
    name, commit = REPOS[key]
    data = reader.get(f"{commit}:{path}")
    if data is None:
        summary.add("missing")
        summary.problems.append(f"{utt_id}: {name} has no {path} at {commit}")
        return
    ext = path.rsplit(".", 1)[-1].lower()
    seconds = SECONDS[ext](data)
    if seconds is None:
        summary.problems.append(f"{utt_id}: {name}:{path} has no readable {ext} header")
    summary.seconds += seconds or 0.0
    outcome = write_file(audio / f"{utt_id}.{ext}", data, overwrite)
    summary.add(outcome)
    if outcome == "kept":
        summary.problems.append(f"{utt_id}.{ext} exists with another size (kept; --overwrite)")


def report(name: str, summary: Summary) -> None:
    counts = ", ".join(
        f"{summary.counts.get(k, 0)} {k}" for k in ("written", "skipped", "kept", "missing")
    )
    hours = summary.seconds / 3600
    print(f"{name}: {summary.rows} rows, {counts}, {summary.seconds:.1f} s ({hours:.3f} h)")
    for problem in summary.problems[:10]:
        print(f"  {problem}", file=sys.stderr)
    if len(summary.problems) > 10:
        print(f"  ... and {len(summary.problems) - 10} more", file=sys.stderr)
    sys.stdout.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Extract the real-speech audio from bare git mirrors."
    )
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/real-speech"))
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true", help="replace differing audio")
    parser.add_argument("sets", nargs="*", metavar="SET", help="default: every set")
    args = parser.parse_args(argv)
    unknown = [name for name in args.sets if name not in SETS]
    if unknown:
        parser.error(f"unknown set {' '.join(unknown)}; known: {' '.join(SETS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name for name in SETS if not args.sets or name in args.sets]
    for name in names:
        if not (args.shared / name / "transcripts.tsv").is_file():
            fail(f"no {args.shared / name / 'transcripts.tsv'}; pass --shared")
    mirrors = Mirrors(args.mirrors)
    try:
        for key in dict.fromkeys(key for name in names for key in SETS[name][0]):
            mirrors.check(key)
    except FileNotFoundError:
        fail("git is not installed")
    status = 0
    for name in names:
        summary = extract_set(name, args.shared, args.out, mirrors, args.overwrite)
        report(name, summary)
        if summary.counts.get("kept") or summary.counts.get("missing"):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
