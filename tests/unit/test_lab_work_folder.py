"""The lab's work folder and saved-stack fingerprint (``local.lab``, ``local.saved_stack``), without a lab."""

from __future__ import annotations

from pathlib import Path

from pipeline_tasks.local import lab, saved_stack
from pipeline_tasks.settings import Settings


def _notebooks(root: Path) -> Path:
    for folder in ("explore", "pipeline"):
        (root / "notebooks" / folder).mkdir(parents=True)
        (root / "notebooks" / folder / f"{folder}.ipynb").write_text("committed")
    return root / "notebooks"


def test_the_work_folder_is_lab_beside_the_notebooks_unless_settings_name_one(tmp_path):
    notebooks = _notebooks(tmp_path)
    assert lab.work_dir(Settings(notebooks_dir=str(notebooks))) == tmp_path / "lab"
    assert lab.work_dir(Settings(notebooks_dir=str(notebooks), lab_dir=str(tmp_path / "w"))) == tmp_path / "w"
    assert Settings.from_env({"PIPELINE_LAB_DIR": "/x/y"}).lab_dir == "/x/y"


def test_copies_are_made_once_and_an_analysts_edits_survive_until_reset(tmp_path):
    notebooks, work = _notebooks(tmp_path), tmp_path / "lab"
    first = lab.prepare_work_dir(notebooks, work)
    assert sorted(p.relative_to(work).as_posix() for p in first) == ["explore/explore.ipynb", "pipeline/pipeline.ipynb"]
    (work / "explore" / "explore.ipynb").write_text("edited by an analyst")
    assert lab.prepare_work_dir(notebooks, work) == []
    assert (work / "explore" / "explore.ipynb").read_text() == "edited by an analyst"
    assert (notebooks / "explore" / "explore.ipynb").read_text() == "committed"
    assert len(lab.prepare_work_dir(notebooks, work, reset=True)) == 2
    assert (work / "explore" / "explore.ipynb").read_text() == "committed"


def test_the_saved_stack_is_named_by_what_seeding_depends_on(tmp_path):
    notebooks = _notebooks(tmp_path)
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "orders.csv").write_text("order_id\n1\n")
    settings = Settings(notebooks_dir=str(notebooks))
    before = saved_stack.saved_stack_dir(settings, [tmp_path / "batch"])
    assert before.parent == tmp_path / saved_stack.CACHE_DIR
    assert saved_stack.saved_stack_dir(settings, [tmp_path / "batch"]) == before
    (tmp_path / "batch" / "orders.csv").write_text("order_id\n2\n")
    assert saved_stack.saved_stack_dir(settings, [tmp_path / "batch"]) != before
