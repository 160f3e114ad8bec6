"""atomic_write: the old file or the whole new one, never half, never a temporary left behind."""

import os

import pytest

from planner.files import atomic_write


class Interrupted(Exception):
    """Stands for whatever stops a write half-way."""


def test_an_exception_inside_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b"old contents")
    with pytest.raises(Interrupted), atomic_write(path) as file:
        file.write(b"half of the new")
        file.flush()
        raise Interrupted
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_an_exception_before_any_file_existed_leaves_nothing(tmp_path):
    with pytest.raises(Interrupted), atomic_write(tmp_path / "new" / "out.bin") as file:
        file.write(b"x")
        raise Interrupted
    assert list((tmp_path / "new").iterdir()) == []


def test_text_mode_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "deep" / "table.csv"  # missing folders are created
    old = os.umask(0o022)
    try:
        with atomic_write(path, "w", newline="") as file:
            file.write("a,b\r\n1,2\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"a,b\r\n1,2\n"  # newline="" writes the text as given
    assert path.stat().st_mode & 0o777 == 0o644
    with atomic_write(path, "w") as file:
        file.write("second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]


@pytest.mark.parametrize("mode", ["a", "r+", "ab"])
def test_partial_write_modes_are_refused(tmp_path, mode):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_write(tmp_path / "x", mode):
            pass
    assert not (tmp_path / "x").exists()
