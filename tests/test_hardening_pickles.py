"""A crafted SMPL pickle can neither change the classes it names nor ask for arrays it does not hold (issue 11
item 5)."""
import pickle

import numpy as np
import pytest
import scipy.sparse
from motionguide.pipelines.smpl.body.safe_pickle import UnsafePickleError, load_smpl_pickle


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def test_build_on_a_class_cannot_change_the_real_class(tmp_path):
    # GLOBAL scipy.sparse.csc_matrix; BUILD with (None, {"toarray": None}) = setattr(csc_matrix, "toarray", None)
    crafted = (b"\x80\x02cscipy.sparse\ncsc_matrix\nN}" + _unicode("toarray") + b"Ns\x86b.")
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(crafted)
    assert len(crafted) < 100
    try:
        with pytest.raises((UnsafePickleError, ValueError)):
            load_smpl_pickle(path)
        assert "toarray" not in scipy.sparse.csc_matrix.__dict__  # the real class is untouched
    finally:
        if "toarray" in scipy.sparse.csc_matrix.__dict__:
            del scipy.sparse.csc_matrix.toarray
    # a legitimate file with a sparse J_regressor still loads
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"J_regressor": scipy.sparse.csc_matrix(np.eye(3)), "f": np.arange(3)}, 2))
    loaded = load_smpl_pickle(good)
    np.testing.assert_array_equal(loaded["J_regressor"], np.eye(3))
    assert type(loaded["J_regressor"]) is np.ndarray


class _Huge:
    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(0))[0], (np.ndarray, self.shape, b"b")


def test_an_array_larger_than_the_file_is_refused(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Huge((2 ** 34,))}, 2))
    assert path.stat().st_size < 200
    with pytest.raises(UnsafePickleError, match=r"17179869184 bytes.*only \d+ bytes") as info:
        load_smpl_pickle(path)
    assert "SMPL_NEUTRAL.pkl" in str(info.value)


def test_calling_ndarray_directly_is_refused(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x40\x85\x85R.")  # ndarray((2**30,))
    with pytest.raises(UnsafePickleError):
        load_smpl_pickle(path)


def test_a_sparse_matrix_too_large_to_make_dense_is_refused(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    million = b"J\x40\x42\x0f\x00"  # csc_matrix((10**6, 10**6)): empty, but 10**12 entries when made dense
    path.write_bytes(b"\x80\x02}" + _unicode("J_regressor") + b"cscipy.sparse\ncsc_matrix\n" + million + million
                     + b"\x86\x85Rs.")
    with pytest.raises(ValueError, match="J_regressor.*1000000000000"):
        load_smpl_pickle(path)
