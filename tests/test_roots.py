"""Results roots (nclab.roots): each configuration's name, what a root records, and which configurations a root
refuses; the workflow's side (every output under the root, switching configurations) is in test_workflow.py."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from nclab import roots
from nclab.config import default_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_name_comes_from_the_configuration_else_from_the_last_config_file():
    config = {"name": "miniature"}
    assert roots.configuration_name(config, {}, []) == "miniature"  # config.yaml alone
    assert roots.configuration_name(config, {"data": {}}, [Path("/x/presets/my-variant.yaml")]) == "my-variant"
    config = {"name": "cifar10-ood"}  # set by a --configfile, or by --config name=...
    assert roots.configuration_name(config, {"name": "cifar10-ood"}, [Path("a.yaml"), Path("b.yaml")]) == "cifar10-ood"


def test_every_shipped_configuration_has_a_root_of_its_own():
    files = [ROOT / "config.yaml", ROOT / "tests" / "tiny.yaml", *sorted((ROOT / "presets").glob("*.yaml"))]
    names = [yaml.safe_load(path.read_text())["name"] for path in files]
    assert len(set(names)) == len(files), names
    assert all(name == path.stem for name, path in zip(names[2:], files[2:]))  # a preset's root is its file's name


def test_sources_list_config_yaml_the_files_relative_to_the_workflow_and_the_command_line_values(tmp_path):
    made_of = roots.sources([tmp_path / "presets" / "a.yaml", Path("/elsewhere/b.yaml")], {"name": "x"}, tmp_path)
    assert made_of == ["config.yaml", "presets/a.yaml", "/elsewhere/b.yaml", "--config name=x"]


def test_differing_keys_are_named_with_dots():
    ours = {"a": {"b": 1, "c": [1, 2]}, "d": 0}
    theirs = {"a": {"b": 1, "c": [1, 3]}, "e": 0}
    assert roots.differing_keys(ours, theirs) == ["a.c", "d", "e"]
    assert roots.differing_keys(ours, copy.deepcopy(ours)) == []


@pytest.fixture()
def written(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "results" / "miniature"
    config = default_config()
    roots.write_record(root, ["config.yaml"], config)
    return root, config


def test_a_root_records_its_configuration_whole(written):
    root, config = written
    assert [p.name for p in root.iterdir()] == [roots.RECORD]  # no partial file left
    record = json.loads((root / roots.RECORD).read_text())
    assert record == {"sources": ["config.yaml"], "configuration": roots.identifying(config)}
    assert "root" not in record["configuration"]["data"] and "cluster" not in record["configuration"]


def test_a_new_root_an_edit_and_the_same_results_from_other_files_are_allowed(written, tmp_path):
    root, config = written
    assert roots.conflict(tmp_path / "results" / "new", ["config.yaml", "other.yaml"], config) is None
    edited = {**config, "model": {**config["model"], "width": 16}}
    assert roots.conflict(root, ["config.yaml"], edited) is None  # config.yaml itself was edited
    same = {**config, "data": {**config["data"], "root": "/another/copy"}, "cluster": {}}
    assert roots.conflict(root, ["config.yaml", "site.yaml"], same) is None  # other raw files, other limits


def test_another_configuration_is_refused_naming_both_and_the_key_to_change(written):
    root, config = written
    other = {**config, "training": {**config["training"], "seeds": [0]}}
    message = roots.conflict(root, ["config.yaml", "presets/mine.yaml"], other)
    assert f"{root}/ holds the results of another configuration (config.yaml)" in message
    assert "(config.yaml, presets/mine.yaml) differs from it in training.seeds" in message
    assert "set `name: <new name>` in presets/mine.yaml" in message
    message = roots.conflict(root, ["config.yaml", "--config training={'seeds': [0]}"], other)
    assert "Give it a results root of its own: pass --config name=<new name>;" in message
    message = roots.conflict(root, ["config.yaml", "presets/mine.yaml", "--config name=miniature"], other)
    assert "Give it a results root of its own: pass --config name=<new name>;" in message
