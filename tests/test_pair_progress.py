"""Issue 26, progress within a pair: ``score_pairs`` reports the patches of each step as the scorer works
through them (the one progress that `radn score` and `radn batch` both use), scores unchanged; the
batch's bar moves within a pair on a terminal only, and piped output stays the summary line alone.
"""

from __future__ import annotations

import io
import re

import pytest
import torch
from test_cli import distorted, picture, run, save

from radn_cli.pairing import Pair

torch.set_num_threads(1)

TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "100", "TERM": "xterm-256color"}


@pytest.fixture
def files(tmp_path):
    image = picture(5)  # 64x96: 6 patches
    ref = save(tmp_path / "ref.png", image)
    return [ref] + [save(tmp_path / f"d{i}.png", distorted(image, i, 9.0 + 9 * i)) for i in range(2)]


def test_score_pairs_reports_each_steps_patches_and_scores_do_not_change(files, weights_file):
    from radn_cli import load_scorer
    from radn_cli.pipeline import score_pairs

    scorer = load_scorer(weights_file, device="cpu", batch_size=4)
    ref, d0, d1 = files
    pairs = [Pair(ref, d0), Pair(ref, d1)]
    calls: list[tuple[int, int]] = []
    counted = list(score_pairs(scorer, pairs, progress=lambda done, total: calls.append((done, total))))
    # pair 1: the reference's 6 patches then the distorted image's 6, in chunks of 4; pair 2: its own 6
    assert calls == [(4, 12), (6, 12), (10, 12), (12, 12), (4, 6), (6, 6)]
    plain = list(score_pairs(scorer, pairs))
    assert [item.result.score for item in counted] == [item.result.score for item in plain]


def test_the_batch_bar_moves_within_a_pair_on_a_terminal_only(monkeypatch):
    from rich.console import Console

    import radn_cli.cli.console as console
    from radn_cli.cli.batch import PairsProgress

    progress = PairsProgress()  # not a terminal: no bar, nothing to move
    progress.start("scoring", 2)
    progress.patches(3, 6)
    progress.advance()
    assert progress.bar is None
    progress.stop()

    screen = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=screen, force_terminal=True, width=100))
    progress = PairsProgress()
    progress.start("scoring", 2)

    def completed() -> float:
        return progress.bar.bar.tasks[0].completed

    progress.patches(3, 6)
    assert completed() == 0.5  # half of the first pair's patches
    progress.patches(6, 6)
    assert completed() < 1  # the pair counts once it is written
    progress.advance()
    assert completed() == 1
    progress.patches(1, 4)
    assert completed() == 1.25
    progress.advance()
    assert completed() == 2
    progress.stop()
    assert "scoring" in screen.getvalue() and "2/2" in screen.getvalue()


def test_batch_piped_says_only_its_summary_and_draws_a_bar_on_a_terminal(files, weights_file, tmp_path):
    ref, d0, d1 = files
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"ref,dist\n{ref},{d0}\n{ref},{d1}\n")
    piped = run("batch", "--pairs", pairs, "-o", tmp_path / "a.csv", "--weights", weights_file)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == ""
    assert re.fullmatch(r"radn: 2 scored, 0 failed, 0 already done in \d+\.\d s -> \S+a\.csv\n", piped.stderr)
    shown = run("batch", "--pairs", pairs, "-o", tmp_path / "b.csv", "--weights", weights_file, env=TERMINAL)
    assert shown.exit_code == 0, shown.output
    assert "scoring" in shown.stderr and "2/2" in shown.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()  # the same rows
