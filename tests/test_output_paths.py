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
