"""Strict YAML: tags, aliases and duplicate keys are refused with located errors."""

import pytest

from planner.errors import InputError
from planner.yamlio import parse_yaml, write_atomically


@pytest.mark.parametrize("text,needle", [
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("a: !!python/object:os.system ls\n", "tags"),
    ("a: &x 1\nb: *x\n", "anchors"),
    ("a: [1, 2\n", "not valid YAML"),
])
def test_refused(text, needle):
    with pytest.raises(InputError) as err:
        parse_yaml(text, "f.yaml")
    assert needle in str(err.value) and "f.yaml" in str(err.value)


def test_lines_are_tracked():
    doc = parse_yaml("x:\n  y:\n    z: 3\n", "f.yaml")
    assert doc.line_of(("x", "y", "z")) == 3


def test_output_never_overwrites_input(tmp_path):
    src = tmp_path / "in.yaml"
    src.write_text("a: 1\n")
    with pytest.raises(InputError):
        write_atomically(src, "b: 2\n", protected=(src,))
    assert src.read_text() == "a: 1\n"
    out = tmp_path / "out.json"
    write_atomically(out, "{}\n", protected=(src,))
    assert out.read_text() == "{}\n"
