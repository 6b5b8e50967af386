"""The recogniser in a process of its own (what a node runs): the words come back as in
process, from a child at the lowest CPU priority; a child killed is replaced on the next
window; a model that cannot load is a clear error; and the child never outlives its node,
however the node dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pnyx.media.captions import to_16k
from pnyx.media.recognizer import BUNDLED, ModelError
from pnyx.media.recognizer_process import RecognizerProcess
from tests.support.poll import wait_until
from tests.support.speech import SENTENCES, say, word_error


def process() -> RecognizerProcess:
    return RecognizerProcess("whisper", BUNDLED, language="en", threads=1, compute_type="int8")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def nice_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_a_child_process_at_the_lowest_priority_hears_the_words(tmp_path: Path) -> None:
    speech = to_16k(say(SENTENCES[0], tmp_path))
    recognizer = process()
    try:
        heard = " ".join(p.text for p in recognizer.transcribe(speech))
        pid = recognizer.pid
        assert pid is not None and pid != os.getpid()
        assert nice_of(pid) == 19
        assert word_error(SENTENCES[0], heard) <= 0.15, heard
    finally:
        recognizer.close()
    wait_until(lambda: not alive(pid), within=10, what="the child to end when closed")


def test_a_killed_child_is_replaced_on_the_next_window(tmp_path: Path) -> None:
    speech = to_16k(say(SENTENCES[1], tmp_path))
    recognizer = process()
    try:
        recognizer.transcribe(speech[:16_000])
        first = recognizer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not alive(first), within=10, what="the child to die")
        heard = " ".join(p.text for p in recognizer.transcribe(speech))
        assert recognizer.pid not in (None, first)
        assert word_error(SENTENCES[1], heard) <= 0.15, heard
    finally:
        recognizer.close()


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    recognizer = RecognizerProcess(
        "whisper", str(missing), language="en", threads=1, compute_type="int8"
    )
    with pytest.raises(ModelError, match="no-such-model"):
        recognizer.transcribe(to_16k(say(SENTENCES[0], tmp_path)))
    assert recognizer.pid is None


def test_the_child_ends_when_its_node_is_killed(tmp_path: Path) -> None:
    node = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                import numpy as np
                from pnyx.media.recognizer import BUNDLED
                from pnyx.media.recognizer_process import RecognizerProcess
                r = RecognizerProcess("whisper", BUNDLED, language="en", threads=1,
                                      compute_type="int8")
                r.transcribe(np.zeros(16000, np.float32))
                print(r.pid, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        child = int(node.stdout.readline())
        assert alive(child)
        node.kill()
        node.wait(10)
        wait_until(lambda: not alive(child), within=10, what="the orphaned child to end")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        if node.stdout is not None:
            node.stdout.close()
