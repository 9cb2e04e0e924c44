"""The app's training jobs (overfeat.app.jobs, issue 25 part 5) without the app: who may stop a
run (its session's token, the teacher key), the size cap of a run started from a browser, and
the worker process a run trains in (low priority, one thread, stop and failure reported back).

The ownership and cap tests need no training and are quick; the worker tests start real tiny
runs (a PyTorch process each) and are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overfeat.app import jobs
from overfeat.checkpoint import load_checkpoint

KEY = "correct horse battery staple"


@pytest.fixture()
def teacher(monkeypatch):
    """The server started with OVERFEAT_TEACHER_KEY=KEY (the module reads it once, at import)."""
    monkeypatch.setattr(jobs, "TEACHER_KEY", KEY)
    return KEY


@pytest.fixture()
def no_teacher(monkeypatch):
    monkeypatch.setattr(jobs, "TEACHER_KEY", None)


def a_job(owner: str | None = "token-a") -> jobs.Job:
    return jobs.Job(id="run-x", spec=jobs.JobSpec(), folder=Path("unused"), status="running",
                    owner=owner)


# --- who may stop a run -------------------------------------------------------------------
def test_the_owner_can_stop_its_run_another_token_cannot(no_teacher):
    job = a_job()
    assert job.may_stop(by="token-a") and not job.may_stop(by="token-b")
    with pytest.raises(jobs.NotYourRun, match="started by another session"):
        job.stop(by="token-b")
    with pytest.raises(jobs.NotYourRun):
        job.stop()  # no token at all
    assert not job.snapshot()["stop_requested"]  # refused: nothing was asked
    job.stop(by="token-a")
    assert job.snapshot()["stop_requested"]


def test_the_teacher_key_stops_any_run_a_wrong_key_does_not(teacher):
    job = a_job()
    for wrong in ("", "correct horse", KEY + " ", KEY.upper()):
        assert not jobs.is_teacher(wrong), wrong
        with pytest.raises(jobs.NotYourRun):
            job.stop(by="token-b", key=wrong)
    assert not job.snapshot()["stop_requested"]
    assert jobs.is_teacher(KEY) and jobs.teacher_key_set()
    job.stop(by="token-b", key=KEY)
    assert job.snapshot()["stop_requested"]
    # A run started by code (no owner): only the teacher key stops it.
    unowned = a_job(owner=None)
    assert not unowned.may_stop(by="token-a") and not unowned.may_stop(by=None)
    unowned.stop(key=KEY)
    assert unowned.snapshot()["stop_requested"]


def test_without_a_configured_key_nobody_holds_a_teacher_key(no_teacher):
    assert not jobs.teacher_key_set()
    for key in ("", "anything", KEY, None):
        assert not jobs.is_teacher(key)
    job = a_job()
    with pytest.raises(jobs.NotYourRun):
        job.stop(by="token-b", key="")  # the empty key does not match an unset one
    assert jobs.limits_for(KEY) == jobs.CAP


def test_the_key_is_read_from_the_environment_when_the_module_loads():
    code = ("from overfeat.app import jobs; print(jobs.teacher_key_set(), jobs.is_teacher('k1'),"
            " jobs.is_teacher('k2'))")
    env = {k: v for k, v in os.environ.items() if k != jobs.TEACHER_KEY_ENV}
    for value, want in (("k1", "True True False"), ("", "False False False"),
                        (None, "False False False")):
        e = env if value is None else {**env, jobs.TEACHER_KEY_ENV: value}
        out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == want, (value, out)


def test_the_owner_token_stays_out_of_the_snapshot_and_repr():
    job = a_job(owner="secret-token-123")
    assert "secret-token-123" not in repr(job)
    assert "secret-token-123" not in json.dumps(job.snapshot(), default=str)


def test_bad_tokens_and_keys_are_refused_with_one_line():
    job = a_job()
    with pytest.raises(ValueError, match="by must be a string or None, got int"):
        job.may_stop(by=3)
    with pytest.raises(ValueError, match="key must be a string or None, got bytes"):
        job.stop(by="token-a", key=b"k")
    with pytest.raises(ValueError, match="owner must be a non-empty string or None"):
        jobs.start(jobs.JobSpec(), owner="")
    with pytest.raises(ValueError, match="spec must be a JobSpec, got dict"):
        jobs.start({"epochs": 1})


# --- the cap ----------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,words", [
    ("n_scenes", jobs.CAP.n_scenes + 2, f"n_scenes {jobs.CAP.n_scenes + 2} is over the limit "
                                        f"of {jobs.CAP.n_scenes}"),
    ("epochs", jobs.CAP.epochs + 1, f"epochs {jobs.CAP.epochs + 1} is over the limit of "
                                    f"{jobs.CAP.epochs}"),
    ("width", 0.25, f"width 0.25 is over the limit of {jobs.CAP.width:g}"),
])
def test_a_run_over_the_cap_is_refused_without_the_key_and_accepted_with_it(
        train_root, teacher, monkeypatch, field, value, words):
    started = []
    monkeypatch.setattr(jobs.Job, "_run", lambda self: started.append(self))
    spec = jobs.JobSpec(**{field: value})
    for key in (None, "wrong key"):
        with pytest.raises(jobs.OverCap) as err:
            jobs.start(spec, owner="token-a", key=key)
        msg = str(err.value)
        assert words in msg and "jobs.CAP" in msg and "\n" not in msg
        assert isinstance(err.value, ValueError)
    assert jobs.current() is None and not list(train_root.iterdir())  # nothing started
    job = jobs.start(spec, owner="token-a", key=KEY)
    job._thread.join(10)
    assert started == [job] and job.spec == spec and job.owner == "token-a"


def test_the_cap_is_within_the_maxima_and_the_largest_capped_run_starts(train_root, no_teacher,
                                                                         monkeypatch):
    cap, top = jobs.CAP, jobs.MAXIMA
    assert cap.n_scenes < top.n_scenes and cap.epochs < top.epochs and cap.width < top.width
    largest = jobs.JobSpec(stages=(1, 2, 3), epochs=cap.epochs, n_scenes=cap.n_scenes,
                           width=cap.width)
    assert largest.over(cap) is None and jobs.JobSpec().over(cap) is None
    monkeypatch.setattr(jobs.Job, "_run", lambda self: None)
    job = jobs.start(largest, owner="token-a")
    assert job.spec == largest
    # The maxima stay what JobSpec refuses whatever the key.
    with pytest.raises(ValueError, match=f"n_scenes must be in 2..{top.n_scenes}, got 502"):
        jobs.JobSpec(n_scenes=top.n_scenes + 2)
    with pytest.raises(ValueError, match="limits must be a Limits, got tuple"):
        largest.over((1, 2, 3))


# --- the worker process -------------------------------------------------------------------
def _wait_for(job: jobs.Job, what, timeout: float = 240):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        s = job.snapshot()
        if what(s) or not job.alive:
            return s
        time.sleep(0.2)
    raise AssertionError(f"timed out: {job.snapshot()['message']}")


@pytest.mark.slow
def test_a_run_trains_in_a_low_priority_process_and_stops_after_its_last_epoch(train_root):
    """Stopped by its owner once an epoch has ended: the worker (another process, nice 19, one
    thread) ends after the current step, the checkpoint of the last finished epoch stays, and
    the sidebar's list has it once the run has ended."""
    spec = jobs.JobSpec(stages=(1,), epochs=5, n_scenes=48, width=0.03125)
    job = jobs.start(spec, owner="token-a")
    s = _wait_for(job, lambda s: s["checkpoint"])  # an epoch has ended and been saved
    assert job.alive, f"the run ended before it could be stopped: {s['message']}"
    w = s["worker"]
    assert w["pid"] != os.getpid() and w["nice"] == jobs.WORKER_NICE
    assert w["threads"] == jobs.WORKER_THREADS
    assert job.checkpoint not in jobs.checkpoints()  # the live run's: not listed yet
    job.stop(by="token-a")
    assert job.wait(120)
    s = job.snapshot()
    assert s["status"] == "stopped", s["message"]
    last = s["epochs"][-1]["epoch"]
    assert last < spec.epochs - 1 and f"stage 1 epoch {last + 1}" in s["message"]
    _, meta = load_checkpoint(job.out)
    assert (meta["stage"], meta["epoch"], meta["complete"]) == (1, last, False)
    assert jobs.checkpoints() == [job.out]
    assert job._proc.poll() == 0  # the worker has exited, cleanly
    assert s["worker"]["pid"] == w["pid"] and s["worker"]["peak_mb"] > 0


@pytest.mark.slow
def test_a_worker_that_dies_fails_the_run_with_one_line(train_root):
    job = jobs.start(jobs.JobSpec(stages=(1,), epochs=5, n_scenes=24, width=0.03125))
    _wait_for(job, lambda s: s["worker"])
    job._proc.kill()
    assert job.wait(60)
    s = job.snapshot()
    assert s["status"] == "failed"
    assert s["error"] == ("RuntimeError: the training process ended with exit status -9 "
                          "before it reported a result")


@pytest.mark.slow
def test_a_worker_whose_server_has_gone_stops(tmp_path):
    """stdin closed (the server's end of the pipe): the worker stops and says so last."""
    job = jobs.Job(id="run-orphan", spec=jobs.JobSpec(n_scenes=4, width=0.03125),
                   folder=tmp_path / "run-orphan")
    proc = subprocess.Popen([sys.executable, "-m", jobs.WORKER_MODULE, json.dumps(job._order())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.close()
    out = proc.stdout.read()  # to its end: the worker has exited or closed it
    proc.wait(60)
    events = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0
    assert events[0]["event"] == "worker" and events[-1]["event"] == "end"
    assert events[-1]["status"] == "stopped"
    assert not (tmp_path / "run-orphan" / "model.pt").exists()


def test_a_bad_order_is_refused_with_status_2():
    r = subprocess.run([sys.executable, "-m", jobs.WORKER_MODULE, "{}"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "usage: python -m overfeat.app.train_worker" in r.stderr
    assert r.stdout == ""
