"""``runner.observe.console``: plain lines off a terminal; the live display on a real one."""

from __future__ import annotations

import pytest

import io
import re

from rich.console import Console
from rich.text import Text

from runner.observe.console import LiveView, PlainLog, TrialBoard, view
from runner.observe.events import RunEvents
from runner.observe.result import BestTrial, Ranking, RunResult, SweepRecord
from runner.train.trial import TrialOutcome

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


# one worker runs every test of the shared multirun fixture (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("terminal_multirun")


def _outcome(number, state="COMPLETE", acc=None, epochs=2):
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e, "val_accuracy": acc or 0.0}
               for e in range(1, epochs + 1)]
    return TrialOutcome(number=number, state=state, history=history if state == "COMPLETE" else [],
                        metrics={"val_accuracy": acc} if acc is not None else {},
                        error="" if acc is not None else "ValueError: boom", duration_s=1.5,
                        pid=7, device="cpu")


def _drive(reporter: RunEvents) -> None:
    reporter.sweep_started(3, 2)
    reporter.trial_started(0, {"lr": 0.01})
    reporter.trial_started(1, {"lr": 0.1})
    reporter.trial_finished(_outcome(1, acc=0.9), {"lr": 0.1})
    reporter.trial_started(2, {"lr": 1.0})
    reporter.trial_finished(_outcome(2, state="FAIL"), {"lr": 1.0})


def test_plain_lines_tell_every_event(capsys):
    reporter = view("val_accuracy", console=Console(file=io.StringIO()), verbose=True)
    assert isinstance(reporter, PlainLog)
    _drive(reporter)
    out = capsys.readouterr().out
    assert "[trial 0] started lr=0.01" in out
    assert "[trial 1] COMPLETE val_accuracy=0.9000 (1.5s, 2 epochs, cpu, pid 7) lr=0.1" in out
    assert "[trial 1] epoch 2 train_loss=0.5000" in out  # verbose: per-epoch lines
    assert "[trial 2] FAIL ValueError: boom" in out
    assert "\x1b[" not in out


def test_quiet_prints_nothing(capsys):
    _drive(view("val_accuracy", quiet=True, console=Console(file=io.StringIO())))
    assert capsys.readouterr().out == ""


def test_trial_table_ranks_done_then_running_then_failed():
    reporter = PlainLog(TrialBoard("val_accuracy"))
    _drive(reporter)
    reporter.trial_finished(_outcome(0, acc=0.95), {"lr": 0.01})
    reporter.trial_started(3, {"lr": 0.5})
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(reporter.board.table())
    text = console.export_text()
    order = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert order == ["0", "1", "3", "2"]
    assert "RUNNING" in text and "FAIL" in text and "epochs" in text and "device" in text
    counts = Text.from_markup(reporter.board.counts()).plain
    assert counts == "2 done 1 running 1 failed 0 pruned"


def test_live_display_on_a_pseudo_terminal(terminal_multirun):
    screen = terminal_multirun[1]
    text = _ANSI.sub(b"", screen).decode("utf-8", errors="replace")
    assert b"\x1b[" in screen  # a live, redrawn display, not plain lines
    assert "[trial " not in text and "[summary]" not in text
    for stage in ("spark", "preprocess", "sweep", "infer", "report"):
        assert re.search(rf"{stage}\s+done\s+\d+\.\ds", text), stage
    assert re.search(r"trials\s+━+\s+2/2 2 done 0 running 0 failed 0 pruned", text)
    assert re.search(r"infer \d+ rows\s+━+\s+\d+/\d+ spark tasks", text)
    for title in ("Trials", "Leaderboard", "Summary"):
        assert title in text
    assert re.search(r"┃ # ┃ status\s+┃ val_accuracy ┃ epochs ┃ device ┃ duration ┃ params", text)
    assert text.count("╭─") >= 2  # one summary panel per experiment of the multirun
    assert "WARN" not in text and "Traceback" not in text


def test_a_lost_trial_is_told_and_kept_in_the_table(capsys):
    reporter = PlainLog(TrialBoard("val_accuracy"))
    reporter.sweep_started(2, 2)
    reporter.trial_started(0, {"lr": 0.01})
    reporter.trial_lost(0, 2)
    reporter.trial_started(2, {"lr": 0.01})
    reporter.trial_finished(_outcome(2, acc=0.8), {"lr": 0.01})
    assert "[trial 0] LOST → re-asked as #2" in capsys.readouterr().out
    table = Console(file=io.StringIO(), width=200)
    table.print(reporter.board.table())
    assert "LOST → re-asked as #2" in table.file.getvalue()


def test_a_lost_trial_shows_under_the_live_display():
    out = io.StringIO()
    reporter = view("val_accuracy", console=Console(file=out, force_terminal=True, width=200))
    assert isinstance(reporter, LiveView)
    with reporter:
        reporter.sweep_started(1, 1)
        reporter.trial_started(0, {"lr": 0.01})
        reporter.trial_lost(0, 1)
    assert b"LOST \xe2\x86\x92 re-asked as #1" in _ANSI.sub(b"", out.getvalue().encode())


def test_the_closing_summary_reads_the_typed_result(capsys):
    reporter = PlainLog(TrialBoard("val_accuracy"), prefix="[#1] ")
    _drive(reporter)
    reporter.run_finished(RunResult(
        run_dir="/runs/a", timings_s={"sweep": 2.0, "total": 3.0},
        ranking=Ranking("val_accuracy", "maximize"),
        best=BestTrial(1, {"lr": 0.1}, {"val_accuracy": 0.9}),
        sweep=SweepRecord({"COMPLETE": 1, "FAIL": 1}, 2, 0, 2, 4),
        test_metrics={"test_accuracy": 0.875}))
    lines = [line for line in capsys.readouterr().out.splitlines() if "[leaderboard]" in line
             or "[summary]" in line]
    assert lines == [
        "[#1] [leaderboard] #1 val_accuracy=0.9000 lr=0.1",
        "[#1] [summary] best trial: #1  lr=0.1",
        "[#1] [summary] val val_accuracy: 0.9000",
        "[#1] [summary] trials: 1 complete, 1 fail (pruning saved 4 epochs)",
        "[#1] [summary] test_accuracy: 0.8750",
        "[#1] [summary] stages: sweep 2.0s, total 3.0s",
        "[#1] [summary] run dir: /runs/a",
        "[#1] [summary] report: /runs/a/report.html",
    ]
