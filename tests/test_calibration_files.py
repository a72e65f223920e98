"""A calibration named on the command line is read or refused with a located error that says
what is wrong with the path: missing, or not a regular file."""

from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.resolve.calibration import load_calibration


@pytest.mark.parametrize(("path", "words"), [("/nonexistent/cal.yaml", "not found"),
                                              ("/dev/null", "not a regular file"), (".", "not a regular file")])
def test_a_calibration_path_that_is_no_file_is_refused_by_name(path: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        load_calibration(path)
    assert words in e.value.message and e.value.value == path and e.value.path == "--calibration"


def test_the_named_calibrations_need_no_file() -> None:
    assert load_calibration("none") is None and load_calibration(None) is None
    assert load_calibration("default") is not None
