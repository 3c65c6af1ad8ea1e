"""What holds the code base together: the package entry points, the layering, the one user-error marker, the
one dataset registry, the one config validator, and old flag names that still work."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cagereid import configs
from cagereid.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cages", "pose", "stream", "offline", "cagereid")


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_version_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "cagereid", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("cagereid ")


def test_layering_and_no_library_imports_a_cmd_module():
    problems = []
    for path, tree in _modules():
        rel = path.relative_to(ROOT).as_posix()
        pkg = rel.split("/")[0]
        ours = {m for m in _imports(tree) if m.split(".")[0] in PACKAGES}
        if pkg in ("cages", "pose"):
            problems += [f"{rel} imports {m}" for m in ours if m.split(".")[0] != pkg]
        if pkg == "stream":
            problems += [f"{rel} imports {m}" for m in ours if m.split(".")[0] == "offline"]
        if rel != "cagereid/cli.py":  # a cmd_* module parses flags and calls library code, never another cmd_*
            problems += [f"{rel} imports the CLI module {m}" for m in ours if m.split(".")[-1].startswith("cmd_")
                         and not (path.name == "cmd_bench.py" and m.startswith("cagereid.bench"))]
    assert problems == []


def test_one_user_error_marker_and_no_other_user_error_classes():
    user_error_classes = [f"{p.relative_to(ROOT)}: {n.name}" for p, tree in _modules() for n in ast.walk(tree)
                          if isinstance(n, ast.ClassDef) and n.name == "UserError"]
    assert user_error_classes == []
    from cagereid.cli import _is_user_error
    from cages.config import ConfigError
    from offline.datasets.base import DatasetError
    from offline.datasets.registry import UnknownDataset
    from pose.layouts import LayoutError
    from pose.synthetic import SyntheticError
    from stream.messages import MessageError

    for cls in (ConfigError, DatasetError, UnknownDataset, LayoutError, SyntheticError, MessageError):
        assert _is_user_error(cls("x")), cls
    assert not _is_user_error(ValueError("a bug, not bad input"))


def test_shipped_configs_are_found_by_name_and_path(tmp_path):
    assert {"stream", "eval_ucalgary", "eval_ucalgary_quick", "demo_model"} <= set(configs.names())
    assert configs.resolve("eval_ucalgary_quick") == configs.resolve("configs/eval_ucalgary_quick.yaml")
    mine = tmp_path / "x.yaml"
    mine.write_text("epochs: 1\n")
    assert configs.resolve(mine) == mine
    with pytest.raises(FileNotFoundError, match="shipped"):
        configs.resolve("no_such_config")


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("yaml_text, key, expected", [
    ("epochs: three\n", "epochs", "an integer"),
    ("lr: fast\n", "lr", "a number"),
    ("hidden: 2.5\n", "hidden", "an integer"),
    ("deterministic: 1\n", "deterministic", "true or false"),
])
def test_wrong_typed_training_config_is_one_line(tmp_path, capsys, yaml_text, key, expected):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    rc = main(["train", "--config", str(cfg), "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"])
    err = _err(capsys)
    assert rc == 2 and err.startswith("error: ") and "\n" not in err
    assert str(cfg) in err and repr(key) in err and expected in err
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize("yaml_text, key", [("stride: abc\n", "stride"), ("pool_windows: 2.5\n", "pool_windows"),
                                            ("host: 5\n", "host")])
def test_wrong_typed_stream_config_is_one_line(tmp_path, capsys, yaml_text, key):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    rc = main(["live", "--config", str(cfg), "--source", "synthetic", "--no-dashboard", "--duration", "1"])
    err = _err(capsys)
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and repr(key) in err


def test_feature_and_encoder_configs_use_the_same_validator():
    from cages.config import ConfigError
    from cages.encoder import EncoderConfig
    from cages.features import FeatureConfig

    with pytest.raises(ConfigError, match="'f' must be an integer"):
        EncoderConfig.from_dict({"J": 20, "f": "six"})
    with pytest.raises(ConfigError, match="'bone_weight' must be a number"):
        FeatureConfig.from_dict({"bone_weight": "half"})
    assert FeatureConfig.from_dict({"bone_weight": 1}).bone_weight == 1.0  # an int where a float is expected


def test_dataset_registry_is_the_one_list():
    from offline.datasets import registry
    from offline.datasets.cage_layout import DATASET_LAYOUT
    from offline.protocols import JOINTS, LAYOUT_OF
    from offline.training.config import TrainConfig

    for d in registry.REGISTRY:
        assert LAYOUT_OF[d.name] == d.layout and JOINTS[d.name] == d.joints
        if d.name in DATASET_LAYOUT:
            assert DATASET_LAYOUT[d.name] == (d.layout, d.joints)
    assert TrainConfig(dataset="KGBD", mode="faithful").resolved().epochs == registry.get("kgbd").encoder_epochs
    # every command's --dataset takes any spelling and names the choices when it is wrong
    parse = registry.dataset_arg(registry.TRAINABLE)
    assert parse("ucalgary") == "UCALGARY"


@pytest.mark.parametrize("argv", [["train", "--dataset", "nope"], ["evaluate", "--dataset", "nope"],
                                  ["prepare", "--dataset", "nope", "--data-root", "x"],
                                  ["synth", "--dataset", "nope"], ["params", "--dataset", "nope"]])
def test_unknown_dataset_is_one_line_everywhere(capsys, argv):
    assert main(argv) == 2
    err = _err(capsys)
    assert err.startswith("error: ") and "\n" not in err and "unknown dataset 'nope'" in err and "BIWI" in err


def test_old_flag_names_still_work_with_a_warning(tmp_path, capsys):
    from cagereid.cli import build_parser

    p = build_parser()
    args = p.parse_args(["prepare", "--dataset", "biwi", "--raw-root", "R"])
    assert args.data_root == "R" and "--raw-root is deprecated" in _err(capsys)
    args = p.parse_args(["train", "--no-progress"])
    assert args.quiet is True and "--no-progress is deprecated" in _err(capsys)
    args = p.parse_args(["demo", "--seconds", "5"])
    assert args.walk_seconds == 5.0 and "--seconds is deprecated" in _err(capsys)
    # the original code's flags are documented aliases: they work without a warning
    args = p.parse_args(["train", "--model", "sorting", "--train_flag", "0"])
    assert args.pretext == "sorting" and args.rn_only is True and _err(capsys) == ""
    args = p.parse_args(["evaluate", "--dataset", "BIWI", "--RN_dir", "run7"])
    assert args.model == "run7" and _err(capsys) == ""
    assert main(["train", "--train_flag", "2"]) == 2 and "1 or 0" in _err(capsys)


def test_train_init_starts_from_a_model_folder_and_refuses_another_shape(tmp_path, capsys):
    from cages.features import CageExtractor
    from offline.datasets.base import WindowSet
    from offline.training.config import TrainConfig
    from offline.training.encoder import train_encoder

    rng = np.random.default_rng(0)
    n = 40
    ws = WindowSet(rng.normal(size=(n, 6, 20, 3)), np.zeros(n, np.int64), recording=np.arange(n) // 20,
                   start=(np.arange(n) % 20), layout="kinect_v1")
    cfg = TrainConfig(hidden=16, batch_size=16, epochs=0, device="cpu", val_frac=0.0)
    train_encoder(ws, cfg, tmp_path / "a", progress=False)
    base = CageExtractor.from_checkpoint(tmp_path / "a").model.state_dict()
    train_encoder(ws, cfg, tmp_path / "b", progress=False, init=tmp_path / "a")  # 0 epochs: an exact copy
    copy = CageExtractor.from_checkpoint(tmp_path / "b").model.state_dict()
    assert all(np.array_equal(base[k].numpy(), copy[k].numpy()) for k in base)
    from cages.config import ConfigError

    with pytest.raises(ConfigError, match="another model shape"):
        train_encoder(ws, TrainConfig(hidden=8, batch_size=16, epochs=0, device="cpu"), tmp_path / "c",
                      progress=False, init=tmp_path / "a")
    with pytest.raises(ConfigError, match="not a model folder"):
        train_encoder(ws, cfg, tmp_path / "d", progress=False, init=tmp_path / "nowhere")


def test_shipped_models_live_default_demo_synthetic_and_only_allowed_training_data():
    """live/enroll/evaluate --tracks/train --tracks default to the live-domain encoder, the demo to the synthetic one;
    both load; the live encoder names its training data, and none of it is UCalgary or openpose_walk.avi (their
    terms forbid a shipped model)."""
    import json

    from cages import pretrained
    from cages.features import CageExtractor
    from stream.identify import DEFAULT_MODEL, DEMO_MODEL

    assert DEFAULT_MODEL == pretrained.LIVE_PATH and DEMO_MODEL == pretrained.PATH
    live, demo = (CageExtractor.from_checkpoint(p) for p in (pretrained.LIVE_PATH, pretrained.PATH))
    assert live.layout == demo.layout == "kinect_v1" and live.f == demo.f == 6
    w = np.random.default_rng(0).normal(scale=0.3, size=(4, 6, 20, 3))
    assert not np.allclose(live.embed(w), demo.embed(w))  # two different models, not one copied
    meta = json.loads((pretrained.LIVE_PATH / "encoder.json").read_text())
    files = meta["adapted"]["tracks_files"]
    names = sorted(Path(f).stem for f in files)
    assert names and all(n == "opencv_vtest" or n.split("_")[1] in ("001", "002") for n in names), names
    text = json.dumps(meta).lower()
    assert "ucalgary" not in text and "openpose" not in text
    assert "--monocular" in meta["adapted"]["init_data"] and "/work/" not in text
    readme = (pretrained.LIVE_PATH / "README.md").read_text()
    assert meta["adapted"]["init_data"] in readme and "MIT License" in readme
