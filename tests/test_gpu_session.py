"""A CPU rehearsal of ``benchmarks/gpu_session.py``, the one command a lent GPU runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unet_lib.reference import read_reference

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.py"


def session(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_every_step_runs_and_leaves_at_most_eight_flat_files(tmp_path):
    done = session(tmp_path / "out", "--tiny", "--budget", "500")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(["session.log", "fit.md", "fit.json", "reference.json",
                            "showcase.npz", "profile.md", "bench.md", "bench.json"])
    log = (tmp_path / "out" / "session.log").read_text()
    for step in ("env", "tests", "fit", "reference", "profile", "bench"):
        assert f"== {step}: ok" in log, step
    fits = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert [row["model"] for row in fits] == ["classic", "improved"]
    assert all(row["ratio"] > 0 for row in fits)
    bundle, showcase = read_reference(tmp_path / "out")
    assert set(bundle["models"]) == {"classic", "improved", "attention"}
    assert "probs_improved" in showcase and "attention_attention_0" in showcase
    profile = (tmp_path / "out" / "profile.md").read_text()
    assert profile.count("## ") == 3 and "convolution" in profile  # improved both ways, classic
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert [row["model"] for row in bench["rows"]] == ["classic", "improved",
                                                       "improved-nchw-depthwise", "attention"]


def test_a_step_is_not_started_without_the_time_it_needs(tmp_path):
    done = session(tmp_path / "out", "--tiny", "--budget", "3", "--only", "env", "tests")
    assert done.returncode == 1
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== env: not started, 3 s left of the budget (needs 5)" in log
    assert "== tests: not started" in log
    assert not (tmp_path / "out" / "fit.json").exists()
