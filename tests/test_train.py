"""Training (overfeat.train) on tiny generated folders: the loss falls, the stages freeze what
the module docstring says, the checkpoint serves predict, progress events arrive in order, a
seed fixes every weight, and a stopped-then-resumed run ends bit for bit where an uninterrupted
one does."""

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from overfeat.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from overfeat.cli import main
from overfeat.data.scenes import write_voc_dataset
from overfeat.multiscale import Settings
from overfeat.predict import run as predict_run
from overfeat.train import StopTraining, Trainer, TrainOptions, model_config

LN21 = math.log(21)  # cross-entropy of a uniform guess over the demo preset's 21 classes


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("train_data")
    write_voc_dataset(root / "loc", "loc", 12, seed=21, split_fractions=(1.0, 0.0, 0.0))
    write_voc_dataset(root / "det", "det", 12, seed=22, split_fractions=(1.0, 0.0, 0.0))
    return str(root / "loc"), str(root / "det")


def states(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def part(state: dict, prefix: str) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def same(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys() and a
    return all(torch.equal(a[k], b[k]) for k in a)


# --- one full run of the three stages -------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run.pt"
    opts = TrainOptions(data=folders, out=str(out), width=0.0625, epochs=(4, 1, 1),
                        lr=(0.01, 0.01, 0.002), batch_size=12, crops_per_image=3, shuffle_buffer=64,
                        images_per_step=8, max_images=8, seed=0)
    events, snapshots = [], {}

    def callback(ev):
        events.append(ev)
        if ev["event"] == "checkpoint":  # what is on disk after each epoch
            model, _ = load_checkpoint(ev["path"])
            snapshots[(ev["stage"], ev["epoch"])] = states(model)

    trainer = Trainer(opts, callback)
    model = trainer.run()
    return opts, trainer, model, events, snapshots


def test_stage1_loss_falls(full_run):
    _, trainer, _, events, _ = full_run
    s1 = [h for h in trainer.history if h["stage"] == 1]
    assert [h["epoch"] for h in s1] == [0, 1, 2, 3]
    assert all(math.isfinite(h["loss"]) for h in trainer.history)
    assert s1[-1]["loss"] < s1[0]["loss"]
    assert s1[-1]["loss"] < LN21 - 0.1  # better than a uniform guess: something was learnt
    # An untrained model guesses near uniformly (small output layer init), not wildly.
    first = next(e["loss"] for e in events if e["event"] == "step")
    assert abs(first - LN21) < 0.5
    # The epoch loss is the mean of its steps' losses (equal batches): events and history agree.
    for h in s1:
        steps = [e["loss"] for e in events if e["event"] == "step" and e["stage"] == 1
                 and e["epoch"] == h["epoch"]]
        assert sum(steps) / len(steps) == pytest.approx(h["loss"], rel=1e-4)


def test_progress_events(full_run):
    opts, trainer, _, events, _ = full_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "stage" and events[0]["stage"] == 1 and events[0]["epochs"] == 4
    assert kinds[-1] == "done"
    assert events[-1]["stopped"] is False and events[-1]["checkpoint"] == [3, 0]
    assert events[-1]["path"] == opts.out
    # Every epoch: steps 1..n in order, then "epoch", then "checkpoint" of that same epoch.
    expected = [(1, e) for e in range(4)] + [(2, 0), (3, 0)]
    ends = [i for i, k in enumerate(kinds) if k == "epoch"]
    assert [(events[i]["stage"], events[i]["epoch"]) for i in ends] == expected
    for i in ends:
        ck = events[i + 1]
        assert ck["event"] == "checkpoint" and ck["path"] == opts.out
        assert (ck["stage"], ck["epoch"]) == (events[i]["stage"], events[i]["epoch"])
        j = i - 1
        while events[j]["event"] == "step":
            j -= 1
        steps = events[j + 1:i]
        n = steps[0]["steps"]
        assert [s["step"] for s in steps] == list(range(1, n + 1))
        assert all(s["stage"] == events[i]["stage"] and s["epoch"] == events[i]["epoch"]
                   for s in steps)
        assert all(s["lr"] > 0 and s["images_per_s"] > 0 for s in steps)
    # Stage 1: 2 x 8 images x 3 crops / batch 12 = 4 steps per epoch; stages 2-3: 16 / 8.
    assert {e["steps"] for e in events if e["event"] == "step" and e["stage"] == 1} == {4}
    assert {e["steps"] for e in events if e["event"] == "step" and e["stage"] > 1} == {2}
    assert [e["stage"] for e in events if e["event"] == "stage"] == [1, 2, 3]
    assert trainer.stopped is False and trainer.saved == (3, 0)


def test_stages_freeze_what_they_should(full_run):
    """Stage 1 leaves the regressor at its init, stage 2 changes the regressor only, stage 3
    the classifier only: the trunk is the stage-1 trunk in the final checkpoint."""
    opts, _, model, _, snap = full_run
    torch.manual_seed(opts.seed)  # what Trainer does before building the model
    from overfeat.models.overfeat import OverFeat
    init = states(OverFeat(model_config(opts)))
    s1, s2, s3 = snap[(1, 3)], snap[(2, 0)], snap[(3, 0)]
    assert same(part(s1, "regressor."), part(init, "regressor."))
    assert not same(part(s1, "features."), part(init, "features."))
    assert not same(part(s1, "classifier."), part(init, "classifier."))
    assert same(part(s2, "features."), part(s1, "features."))
    assert same(part(s2, "classifier."), part(s1, "classifier."))
    assert not same(part(s2, "regressor."), part(s1, "regressor."))
    assert same(part(s3, "features."), part(s1, "features."))
    assert same(part(s3, "regressor."), part(s2, "regressor."))
    assert not same(part(s3, "classifier."), part(s2, "classifier."))
    assert same(s3, states(model))  # the returned model is the last checkpoint


def test_checkpoint_loads_and_predicts(full_run, folders):
    opts, _, model, _, _ = full_run
    loaded, meta = load_checkpoint(opts.out)
    assert loaded.cfg == model.cfg and loaded.cfg.width == 0.0625
    assert same(states(loaded), states(model))
    assert meta["complete"] is True and meta["stage"] == 3
    assert meta["_train_state"]["optimizer"] is None  # a finished run keeps no optimizer
    image = Image.open(Path(folders[1]) / "JPEGImages" / "000000.jpg").convert("RGB")
    settings = Settings(scales=(0, 1), flips=True, min_score=0.0)
    a, merged = predict_run(loaded, image, settings)
    b, _ = predict_run(model, image, settings)
    assert torch.equal(a.scores, b.scores)  # the checkpoint is the model, exactly
    assert a.scores.shape == (21,) and bool(((a.scores >= 0) & (a.scores <= 1)).all())
    assert len(a.table) > 0 and len(merged.final.confs) > 0
    assert bool(torch.isfinite(torch.as_tensor(merged.final.boxes)).all())


# --- determinism and resume -----------------------------------------------------------------------


def small_opts(folders, out: Path, seed: int = 0) -> TrainOptions:
    return TrainOptions(data=folders, out=str(out), width=0.0625, epochs=(2, 1, 1),
                        batch_size=8, crops_per_image=2, images_per_step=4, max_images=4,
                        shuffle_buffer=64,
                        seed=seed)


def strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


class StopAt:
    """A callback that raises StopTraining at the first event matching `when`."""

    def __init__(self, when):
        self.when, self.events = when, []

    def __call__(self, ev):
        self.events.append(ev)
        if self.when(ev) and not any(e.get("_stopped") for e in self.events):
            ev["_stopped"] = True
            raise StopTraining()


def test_seed_fixes_every_weight_and_resume_is_exact(folders, tmp_path):
    a = Trainer(small_opts(folders, tmp_path / "a.pt"))
    model_a = states(a.run())
    model_b = states(Trainer(small_opts(folders, tmp_path / "b.pt")).run())
    assert same(model_a, model_b)

    # Stop at the first step of stage 1's second epoch: the file keeps epoch 0.
    out = tmp_path / "c.pt"
    stop = StopAt(lambda e: e["event"] == "step" and e["stage"] == 1 and e["epoch"] == 1)
    c = Trainer(small_opts(folders, out), stop)
    returned = c.run()
    assert c.stopped is True and c.saved == (1, 0)
    assert stop.events[-1] == {"event": "done", "path": str(out), "stopped": True,
                               "checkpoint": [1, 0]}
    on_disk, meta = load_checkpoint(out)
    assert (meta["stage"], meta["epoch"], meta["complete"]) == (1, 0, False)
    assert not returned.training
    assert not same(states(on_disk), states(returned))  # memory went one step further

    # Resume, and stop again on stage 2's (only) "epoch" event: its checkpoint is still written.
    stop2 = StopAt(lambda e: e["event"] == "epoch" and e["stage"] == 2)
    c1 = Trainer(small_opts(folders, out), stop2, resume=out)
    c1.run()
    assert c1.stopped is True and c1.saved == (2, 0)
    assert [e["event"] for e in stop2.events][-2:] == ["checkpoint", "done"]
    on_disk, meta = load_checkpoint(out)
    assert (meta["stage"], meta["epoch"]) == (2, 0)
    assert same(states(on_disk), states(c1.model))

    # Resume to the end: the same weights and the same losses as the uninterrupted run.
    events = []
    c2 = Trainer(small_opts(folders, out), events.append, resume=out)
    model_c = states(c2.run())
    assert same(model_c, model_a)
    assert strip(c2.history) == strip(a.history)
    assert [e["stage"] for e in events if e["event"] == "stage"] == [3]  # only what was left
    assert same(states(load_checkpoint(out)[0]), model_a)


def test_seed_changes_the_samples(folders, tmp_path):
    t0 = Trainer(small_opts(folders, tmp_path / "x.pt", seed=0))
    t1 = Trainer(small_opts(folders, tmp_path / "x.pt", seed=1))
    c0, c1 = t0._crop_list(0), t1._crop_list(0)
    assert [(i, b.tolist(), y, f) for i, b, y, f in c0] != [(i, b.tolist(), y, f) for i, b, y, f in c1]
    assert not same(states(t0.model), states(t1.model))
    assert [(i, b.tolist()) for i, b, _, _ in t0._crop_list(0)] == [(i, b.tolist()) for i, b, _, _ in c0]


def test_stop_before_any_checkpoint(folders, tmp_path):
    out = tmp_path / "never.pt"
    stop = StopAt(lambda e: e["event"] == "step")
    t = Trainer(small_opts(folders, out), stop)
    t.run()
    assert t.stopped and t.saved is None and not out.exists()
    assert stop.events[-1]["checkpoint"] is None


@pytest.fixture(scope="module")
def ckpt_with_state(folders, tmp_path_factory):
    """A real mid-run checkpoint (stopped after stage 1's first epoch); tests copy, never edit."""
    out = tmp_path_factory.mktemp("mid") / "mid.pt"
    Trainer(small_opts(folders, out), StopAt(lambda e: e["event"] == "checkpoint")).run()
    return out


def test_resume_from_bad_files(folders, tmp_path, ckpt_with_state):
    data = ckpt_with_state.read_bytes()
    cases = {}
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    cases["truncated.pt"] = "truncated or corrupt"
    (tmp_path / "notes.pt").write_text("these are my notes, not weights\n" * 10)
    cases["notes.pt"] = "not"
    model, _ = load_checkpoint(ckpt_with_state)
    save_checkpoint(tmp_path / "exported.pt", model)  # weights only, no train_state
    cases["exported.pt"] = "no training state"
    cases["missing.pt"] = "no such checkpoint file"
    for name, words in cases.items():
        with pytest.raises(CheckpointError) as e:
            Trainer(small_opts(folders, tmp_path / "out.pt"), resume=tmp_path / name)
        msg = str(e.value)
        assert name in msg and words in msg and "\n" not in msg, msg
    with pytest.raises(ValueError, match="resume with the same seed"):
        Trainer(small_opts(folders, tmp_path / "out.pt", seed=5), resume=ckpt_with_state)
    assert not (tmp_path / "out.pt").exists()


def test_divergence_stops_and_keeps_the_last_good_checkpoint(folders, tmp_path, ckpt_with_state):
    out = tmp_path / "run.pt"
    out.write_bytes(ckpt_with_state.read_bytes())  # stage 1 epoch 0, as `--resume run.pt`
    opts = small_opts(folders, out)
    opts.lr = (1e6, 1e6, 1e6)  # certain to blow up, sooner or later
    events = []
    with pytest.raises(ValueError, match="training diverged: stage") as e:
        Trainer(opts, events.append, resume=out).run()
    assert "\n" not in str(e.value) and "lower --lr" in str(e.value)
    assert all(math.isfinite(ev["loss"]) for ev in events if ev["event"] == "step")
    written = [(ev["stage"], ev["epoch"]) for ev in events if ev["event"] == "checkpoint"]
    model, meta = load_checkpoint(out)  # still a loadable checkpoint: the last one written
    assert (meta["stage"], meta["epoch"]) == (written[-1] if written else (1, 0))
    assert all(bool(torch.isfinite(t).all()) for t in model.state_dict().values())


def test_progress_bar_lines():
    import io

    from overfeat.train import ProgressBar

    s = io.StringIO()
    bar = ProgressBar(s)
    bar({"event": "epoch", "stage": 1, "epoch": 0, "epochs": 3, "loss": 2.5})
    bar({"event": "done", "path": "x.pt", "stopped": False, "checkpoint": [3, 0]})
    bar({"event": "done", "path": "x.pt", "stopped": True, "checkpoint": [1, 0]})
    bar({"event": "done", "path": "x.pt", "stopped": True, "checkpoint": None})
    lines = [ln.strip() for ln in s.getvalue().replace("\r", "\n").splitlines() if ln.strip()]
    assert lines == ["stage 1 epoch 1/3 done: loss 2.5", "done: x.pt",
                     "stopped: x.pt holds stage 1 epoch 1", "stopped: no checkpoint written"]


def test_train_cli_resume_from_bad_file(folders, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 broken zip")
    code = main(["train", "--data", *folders, "--out", str(tmp_path / "o.pt"), "--resume",
                 str(bad), "--quiet"])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: bad.pt: "), err


# --- the per-class regressor's targets -------------------------------------------------------------


def naive_regression_pairs(windows: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor):
    """Deliberately plain loops: for each window and class, the object of that class with the
    largest visible area among those overlapping the window by >= 50%, where overlap =
    intersection / min(window area, box area) (the first such object on a tie)."""
    pairs = []
    for n, (wx1, wy1, wx2, wy2) in enumerate(windows.tolist()):
        for c in sorted(set(labels.tolist())):
            best, best_inter = None, -1.0
            for m, (bx1, by1, bx2, by2) in enumerate(boxes.tolist()):
                if int(labels[m]) != c:
                    continue
                inter = max(0.0, min(wx2, bx2) - max(wx1, bx1)) * max(0.0, min(wy2, by2) - max(wy1, by1))
                smaller = min((wx2 - wx1) * (wy2 - wy1), (bx2 - bx1) * (by2 - by1))
                if inter / smaller >= 0.5 and inter > best_inter:
                    best, best_inter = m, inter
            if best is not None:
                pairs.append((n, best))
    return pairs


@pytest.mark.parametrize("seed", range(25))
def test_regression_pairs_match_a_naive_reference(seed):
    from overfeat.train import regression_pairs

    g = torch.Generator().manual_seed(seed)
    n, m = int(torch.randint(1, 40, (), generator=g)), int(torch.randint(0, 6, (), generator=g))
    xy = torch.rand(n, 2, generator=g) * 300
    windows = torch.cat([xy, xy + 221], dim=1)
    p1 = torch.rand(m, 2, generator=g) * 450
    boxes = torch.cat([p1, p1 + 20 + torch.rand(m, 2, generator=g) * 300], dim=1)
    labels = torch.randint(0, 3, (m,), generator=g)  # 3 classes: same-class pairs are common
    w, o = regression_pairs(windows, boxes, labels)
    got = sorted(zip(w.tolist(), o.tolist()))
    assert got == sorted(naive_regression_pairs(windows, boxes, labels))
    assert w.tolist() == sorted(w.tolist())  # sorted by window, as documented


@pytest.mark.parametrize("capacity", [0, 1, 7, 50])
def test_shuffle_buffer_learns_each_row_once_and_mixes(capacity):
    from overfeat.train import ShuffleBuffer

    g = torch.Generator().manual_seed(capacity)
    buf, learned, pushed = ShuffleBuffer(capacity), [], 0
    for _ in range(30):
        n = int(torch.randint(1, 12, (), generator=g))
        ids = torch.arange(pushed, pushed + n)
        pushed += n
        out = buf.push((ids.float()[:, None].repeat(1, 3), ids * 10, ids), g)  # three aligned tensors
        if out is not None:
            assert torch.equal(out[1], out[2] * 10) and torch.equal(out[0][:, 0].long(), out[2])
            learned += out[2].tolist()
    assert len(learned) == len(set(learned))  # no row twice
    assert len(buf) == min(capacity, pushed) and len(learned) + len(buf) == pushed
    if capacity == 0:
        assert learned == list(range(pushed))  # no mixing: every step learns its own rows
    elif capacity == 50:
        assert learned != sorted(learned)  # rows of different steps are mixed
    held = len(buf)
    chunks = buf.drain(4, g)  # the end of an epoch: the rest, in chunks of at most 4 rows
    assert len(buf) == 0 and buf.drain(4, g) == []
    assert [len(c[2]) for c in chunks] == [4] * (held // 4) + ([held % 4] if held % 4 else [])
    for c in chunks:
        assert torch.equal(c[1], c[2] * 10) and torch.equal(c[0][:, 0].long(), c[2])
        learned += c[2].tolist()
    assert sorted(learned) == list(range(pushed))  # every pushed row learned exactly once


def test_bf16_stage1_is_deterministic_keeps_float32_weights_and_differs_from_float32(folders, tmp_path):
    def run(name, bf16):
        o = small_opts(folders, tmp_path / name)
        o.stages, o.bf16 = (1,), bf16
        t = Trainer(o)
        return t, states(t.run())

    ta, a = run("a.pt", True)
    _, b = run("b.pt", True)
    _, f = run("f.pt", False)
    assert same(a, b)  # the same seed gives the same weights under autocast too
    assert all(v.dtype == torch.float32 for k, v in a.items() if v.is_floating_point())
    assert not same(a, f)  # autocast really ran: bf16 products round differently
    assert all(math.isfinite(h["loss"]) for h in ta.history)
    assert load_checkpoint(tmp_path / "a.pt")[1]["options"]["bf16"] is True


@pytest.mark.parametrize("size", [(221, 221), (281, 341), (400, 310)])
def test_window_scores_match_a_naive_loop(size):
    """Stage 3 ranks background windows by their best object-class probability: one value per
    window of view_windows, read from the offset map at (j, i); checked against a plain loop."""
    from overfeat.models.overfeat import OverFeat
    from overfeat.train import _window_scores, view_windows

    torch.manual_seed(sum(size))
    model = OverFeat(model_config(TrainOptions(data=("x",), width=0.0625))).eval()
    vw = view_windows(model, torch.randn(3, *size))
    n_obj = 20
    probs = [torch.rand(21, *p.shape[-2:]) for p in vw.pooled]  # random, so argmax is not trivial
    got = _window_scores(probs, vw, n_obj)
    want = [max(probs[int(vw.offset[n])][c, int(vw.j[n]), int(vw.i[n])].item() for c in range(n_obj))
            for n in range(len(vw.boxes))]
    assert len(vw.boxes) > 0 and got.tolist() == want


@pytest.mark.parametrize("size", [(221, 221), (245, 300), (460, 333)])
def test_offset_class_probs_equal_the_per_offset_classifier(size):
    """Stage 3 scores windows with the dilated classifier over the stride-1 pooled map; each
    offset's slice must equal the classifier run on that offset's own pooled map."""
    from overfeat.models.overfeat import OverFeat
    from overfeat.train import offset_class_probs, view_windows

    torch.manual_seed(size[0])
    model = OverFeat(model_config(TrainOptions(data=("x",), width=0.0625))).eval()
    vw = view_windows(model, torch.randn(3, *size))
    got = offset_class_probs(model, vw)
    with torch.no_grad():
        want = [torch.softmax(model.classify(p[None]), dim=1)[0] for p in vw.pooled]
    assert [g.shape for g in got] == [w.shape for w in want]
    assert any(w.numel() for w in want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)
