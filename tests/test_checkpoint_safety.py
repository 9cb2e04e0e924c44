"""Checkpoint loading never runs code and names every bad file in one line (issue: a checkpoint
is an upload in the app and an argument on the command line). Extends tests/test_inputs.py,
which covers random bytes, empty and truncated files, a dict without "format", a geometry swap
and one os.system pickle; here: other code-carrying pickles (open, exec, nested, legacy format,
a pickled nn.Module, protocol 0), other foreign and mismatched files, and the commands."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from overfeat.checkpoint import FORMAT, CheckpointError, load_checkpoint
from overfeat.cli import main
from overfeat.models.overfeat import OverFeat

ROOT = Path(__file__).resolve().parent.parent
# torch warns that a raw pickle.dumps file uses protocol 4; refusing it is the point.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


@pytest.fixture
def good(tiny_ckpt) -> Path:
    """The tiny checkpoint of tests/conftest.py: a good file to break."""
    return tiny_ckpt[0]


# --- pickles that carry code --------------------------------------------------------------------


class OpenMarker:
    """Unpickling calls open(marker, "w"): the file appears if any code ran."""

    marker: Path

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class ExecMarker:
    marker: Path

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class SystemMarker:
    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    for cls in (OpenMarker, ExecMarker, SystemMarker):
        cls.marker = marker
    files = {}

    def put(name, write):
        files[name] = folder / name
        write(files[name])

    put("open_in_meta.pt", lambda p: torch.save(
        {"format": FORMAT, "config": {}, "state_dict": {}, "meta": {"x": OpenMarker()}}, p))
    put("exec_legacy.pt", lambda p: torch.save(  # the pre-1.6 (non-zip) torch format
        {"format": FORMAT, "payload": ExecMarker()}, p, _use_new_zipfile_serialization=False))
    put("nested_in_state_dict.pt", lambda p: torch.save(
        {"format": FORMAT, "config": {}, "state_dict": {"w": torch.zeros(2), "x": SystemMarker()}},
        p))
    put("whole_module.pt", lambda p: torch.save(torch.nn.Linear(2, 2), p))
    put("raw_pickle.pt", lambda p: p.write_bytes(pickle.dumps({"format": FORMAT,
                                                               "x": OpenMarker()})))
    put("protocol0.pt", lambda p: p.write_bytes(pickle.dumps(ExecMarker(), protocol=0)))
    return files


def test_pickles_with_code_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "MARKER"
    for name, path in evil_files(tmp_path, marker).items():
        for source in (path, path.read_bytes()):  # a path (CLI) and bytes (an app upload)
            with pytest.raises(CheckpointError) as e:
                load_checkpoint(source, name)
            msg = str(e.value)
            assert msg.startswith(f"{name}: ") and "\n" not in msg, msg
            assert "refused" in msg or "not a PyTorch checkpoint" in msg, msg
            assert not marker.exists(), f"{name}: code ran while loading"
    # Control: the same reduce does create the marker when unpickled naively, so the check
    # above can fail.
    pickle.loads(pickle.dumps(OpenMarker())).close()
    assert marker.exists()


# --- files that are not ours, or do not fit ------------------------------------------------------


def save_blob(path: Path, blob) -> Path:
    torch.save(blob, path)
    return path


def test_foreign_and_mismatched_checkpoints(tmp_path, good, tiny_config):
    blob = torch.load(good, weights_only=True)
    other = OverFeat(tiny_config(width=1 / 16)).state_dict()
    missing = {k: v for k, v in blob["state_dict"].items() if not k.startswith("regressor.")}
    cases = {
        "other_version.pt": ({**blob, "format": "overfeat-teach/999"},
                             "not an OverFeat teaching checkpoint", "'overfeat-teach/999'"),
        "a_list.pt": ([1, 2, 3], "not an OverFeat teaching checkpoint", "'list'"),
        "a_tensor.pt": (torch.zeros(3), "not an OverFeat teaching checkpoint", "'Tensor'"),
        "no_config.pt": ({k: v for k, v in blob.items() if k != "config"}, "lacks its config", ""),
        "unknown_field.pt": ({**blob, "config": {**blob["config"], "colour": "red"}},
                             "invalid model config", "colour"),
        "bad_geometry.pt": ({**blob, "config": {**blob["config"], "geometry": "huge"}},
                            "invalid model config", "huge"),
        "other_width.pt": ({**blob, "state_dict": other}, "weights do not fit", "size mismatch"),
        "missing_keys.pt": ({**blob, "state_dict": missing}, "weights do not fit", "Missing"),
        "extra_keys.pt": ({**blob, "state_dict": {**blob["state_dict"], "x": torch.zeros(1)}},
                          "weights do not fit", "Unexpected"),
        "other_classes.pt": ({**blob, "config": {**blob["config"], "num_classes": 5,
                                                 "class_names": list("abcd") + ["bg"]}},
                             "weights do not fit", "classifier"),
    }
    for name, (content, words, detail) in cases.items():
        p = save_blob(tmp_path / name, content)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(p)
        msg = str(e.value)
        assert msg.startswith(f"{name}: ") and words in msg and detail in msg, msg
        assert "\n" not in msg
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path)  # a folder
    # The untouched original still loads (the cases above were copies).
    load_checkpoint(good)


# --- the commands -------------------------------------------------------------------------------


def test_predict_with_bad_checkpoints_is_one_error_line(tmp_path, good, tiny_config, capsys):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (250, 250), (30, 140, 200)).save(image)
    marker = tmp_path / "MARKER"
    bad = dict(evil_files(tmp_path, marker))
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 3])
    (tmp_path / "random.pt").write_bytes(os.urandom(3000))
    blob = torch.load(good, weights_only=True)
    bad["truncated.pt"] = tmp_path / "truncated.pt"
    bad["random.pt"] = tmp_path / "random.pt"
    bad["other_width.pt"] = save_blob(tmp_path / "other_width.pt", {
        **blob, "state_dict": OverFeat(tiny_config(width=1 / 16)).state_dict()})
    bad["missing.pt"] = tmp_path / "missing.pt"
    out = tmp_path / "annotated.png"
    for name, path in bad.items():
        code = main(["predict", str(image), "--checkpoint", str(path), "--out", str(out)])
        stdout, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (name, err)
        assert lines[0].startswith(f"error: {name}: "), (name, err)
        assert not out.exists() and not marker.exists(), name
    # Control: the good checkpoint works with the same command.
    assert main(["predict", str(image), "--checkpoint", str(good), "--out", str(out),
                 "--scales", "0", "--no-flip"]) == 0
    assert out.exists()


@pytest.mark.slow  # a subprocess CLI run: imports torch and the package again (~2 s CPU)
def test_evaluate_with_an_evil_checkpoint_subprocess(tmp_path):
    """A real process, so a code execution would really touch the marker."""
    marker = tmp_path / "MARKER"
    evil = evil_files(tmp_path, marker)["nested_in_state_dict.pt"]
    r = subprocess.run([sys.executable, "-m", "overfeat", "evaluate", "--checkpoint", str(evil),
                        "--data", str(tmp_path), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: nested_in_state_dict.pt: refused")
    assert not marker.exists()
