"""A long-lived ``festival --pipe`` process per worker, so festival voices render without
paying festival's start-up (about a second) for every sentence.

Festival reads Scheme commands on stdin; after each sentence it prints a marker line, which is
how we know the wave file is complete. A process belongs to the OS process that started it (a
forked worker starts its own), and is restarted after it dies.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

_MARKER = "asr-festival-done"


class FestivalPipe:
    """One ``festival --pipe`` child process.

    Args:
        program: path of the ``festival`` executable.
    """

    def __init__(self, program: str) -> None:
        self.owner = os.getpid()
        self.voice = ""
        # festival block-buffers its stdout into a pipe: stdbuf (coreutils) makes it unbuffered.
        stdbuf = shutil.which("stdbuf")
        self.proc = subprocess.Popen(
            [stdbuf, "-o0", program, "--pipe"] if stdbuf else [program, "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def close(self) -> None:
        if self.owner == os.getpid() and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def say(self, voice: str, text: str, wav: Path, stretch: float | None, timeout_s: float) -> str:
        """Render ``text`` with festival voice function ``voice`` (e.g. "voice_kal_diphone")
        into RIFF ``wav``; ``stretch`` sets Duration_Stretch (None: leave 1). Returns "" on
        success, else why not."""
        quoted = text.replace("\\", " ").replace('"', '\\"').replace("\n", " ")
        commands = [] if voice == self.voice else [f"({voice})"]
        commands.append(f"(Parameter.set 'Duration_Stretch {stretch or 1.0:.4f})")
        commands.append(f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{wav}" \'riff)')
        commands.append(f'(format t "{_MARKER}\\n")')
        try:
            self.proc.stdin.write("\n".join(commands) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return "festival exited"
        self.voice = voice
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return f"festival took more than {timeout_s:.0f} s"
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    return "festival exited"
                if line.strip() == _MARKER:
                    return ""


_PIPE: FestivalPipe | None = None


def festival_say(
    program: str, voice: str, text: str, wav: Path, stretch: float | None, timeout_s: float
) -> str:
    """:meth:`FestivalPipe.say` on this process's festival (started or restarted as needed)."""
    global _PIPE
    if _PIPE is None or not _PIPE.alive():
        _PIPE = FestivalPipe(program)
        atexit.register(_PIPE.close)
        # multiprocessing workers skip atexit; a finaliser runs when a pool closes normally
        multiprocessing.util.Finalize(_PIPE, _PIPE.close, exitpriority=0)
    return _PIPE.say(voice, text, wav, stretch, timeout_s)
