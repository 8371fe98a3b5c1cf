"""The pins of pyproject.toml and environment.yml stay the same."""

import re
import tomllib

from tests.conftest import REPO


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins += extra
    expected = {re.split(r"[=\[]", p)[0].lower(): p.split("==")[1] for p in pins}
    listed = dict(
        re.findall(r"^\s+- ([A-Za-z0-9_.-]+)(?:\[\w+\])?==([\w.]+)$", (REPO / "environment.yml").read_text(), re.M)
    )
    assert {k.lower(): v for k, v in listed.items()} == expected
