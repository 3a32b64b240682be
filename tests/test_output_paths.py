"""New output file names: numbered, never an existing file, never outside the output folder."""
import pytest

from motionguide.pipelines.output_paths import unique_path


def test_numbered_names_skip_existing_and_create_subfolders(tmp_path):
    first = unique_path(tmp_path, "clips/run", ".mp4")
    assert first == tmp_path / "clips" / "run_00001.mp4" and first.parent.is_dir()
    first.write_bytes(b"x")
    (tmp_path / "clips" / "run_00002.mp4").mkdir()  # a folder with the name counts as taken
    assert unique_path(tmp_path, "clips/run", ".mp4") == tmp_path / "clips" / "run_00003.mp4"
    assert unique_path(tmp_path, "  ", ".json") == tmp_path / "MotionGuide_00001.json"


@pytest.mark.parametrize("prefix", ["../escape", "/etc/passwd", "a/../../b"])
def test_prefixes_outside_the_folder_are_refused(tmp_path, prefix):
    with pytest.raises(ValueError, match="points outside the output folder"):
        unique_path(tmp_path / "out", prefix, ".png")


def test_new_file_publishes_whole_never_overwrites_and_cleans_up(tmp_path):
    from motionguide.pipelines.output_paths import new_file

    target = tmp_path / "sub" / "clip.mp4"
    with new_file(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".mp4" and not target.exists()
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    with pytest.raises(FileExistsError, match="not overwriting"):
        with new_file(target):
            pass
    # A file that appears while writing is not replaced either, and the temporary file is removed.
    other = tmp_path / "race.txt"
    with pytest.raises(FileExistsError):
        with new_file(other) as tmp:
            tmp.write_text("mine")
            other.write_text("theirs")
    assert other.read_text() == "theirs"
    with pytest.raises(RuntimeError):
        with new_file(tmp_path / "failed.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer broke")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.txt", "sub"]
    with new_file(target, overwrite=True) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
