"""Named phases (gcgbench/api/phases.py): timed, announced to listeners, shown as rows by the CLI."""

from __future__ import annotations

import time

from rich.console import Console

from gcgbench.api import phases
from gcgbench.cli.app import main
from gcgbench.cli.status import PhaseRows, progress_display
from gcgbench.data.sample import write_sample


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def started(self, name):
        self.events.append(("start", name))

    def finished(self, name, seconds):
        assert seconds >= 0
        self.events.append(("end", name))


def test_phases_time_nest_and_announce_only_when_shown():
    phases.reset_timings()
    recorder = Recorder()
    with phases.listening(recorder):
        with phases.phase("outer"):
            time.sleep(0.02)
            with phases.phase("inner", show=False):
                time.sleep(0.01)
            with phases.phase("inner"):
                pass
    with phases.phase("unheard"):
        pass
    assert recorder.events == [("start", "outer"), ("start", "inner"), ("end", "inner"), ("end", "outer")]
    timings = phases.timings()
    assert list(timings) == ["inner", "outer", "unheard"]
    assert timings["outer"] >= 0.03 - 1e-3 and 0.01 - 1e-3 <= timings["inner"] < timings["outer"]
    assert phases.counts() == {"inner": 2, "outer": 1, "unheard": 1}
    phases.reset_timings()
    assert phases.timings() == {}


def test_a_phase_that_raises_is_still_timed_and_closed():
    phases.reset_timings()
    recorder = Recorder()
    with phases.listening(recorder):
        try:
            with phases.phase("failing"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert recorder.events == [("start", "failing"), ("end", "failing")] and "failing" in phases.timings()


def test_phase_rows_appear_while_a_phase_runs_and_go_when_it_ends():
    bars = progress_display(Console(file=open("/dev/null", "w")), transient=True)
    rows = PhaseRows(bars)
    with bars, phases.listening(rows):
        with phases.phase("loading the model"):
            assert [task.description for task in bars.tasks] == ["loading the model …"]
            with phases.phase("METEOR"):
                assert [task.description for task in bars.tasks] == ["loading the model …", "METEOR …"]
        assert bars.tasks == []


def test_a_run_announces_import_scoring_and_writing(tmp_path):
    sample = write_sample(tmp_path / "sample", n_images=4)
    recorder = Recorder()
    phases.reset_timings()
    with phases.listening(recorder):
        assert main(["run", "--model", "oracle", "--task", "res_refcoco_val", "--data-root", str(sample),
                     "--bootstrap", "50", "--no-cache", "--output", str(tmp_path / "run")]) == 0
    started = [name for kind, name in recorder.events if kind == "start"]
    assert started == ["importing oracle", "scoring res_refcoco_val", "bootstrap", "writing results"]
    assert {"generation", "printing results"} <= set(phases.timings())   # recorded, not announced


def test_task_bars_keep_counting_while_phase_rows_come_and_go():
    from gcgbench.cli.status import progress_factory

    bars = progress_display(Console(file=open("/dev/null", "w")), transient=True)
    with bars, phases.listening(PhaseRows(bars)):
        with phases.phase("loading the model"):
            advance = progress_factory(bars)("gcg_val", 3)   # the bar is added after a phase row
        advance(1)                                           # the row is gone: positions shifted
        advance(2)
        (bar,) = bars.tasks
        assert (bar.description, bar.completed, bar.total) == ("gcg_val", 3, 3)
