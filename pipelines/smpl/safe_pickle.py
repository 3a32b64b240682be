"""Read the official SMPL ``.pkl`` files without chumpy and without executing anything they name.

The MPI pickles were written by Python 2 with chumpy: arrays are ``chumpy.ch.Ch`` objects and ``J_regressor`` is a
``scipy.sparse.csc.csc_matrix``. A restricted unpickler admits only numpy and scipy.sparse array types; chumpy
classes become :class:`ChumpyStub` (which just keeps the pickled state, the array is in ``state["x"]``); every
other global is refused with :class:`UnsafePickleError` before anything is imported or called.
"""
from __future__ import annotations

import codecs
import logging
import pickle
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a type or function that is not a plain array type."""


class ChumpyStub:
    """Stand-in for any ``chumpy`` class: stores the pickled state, never runs chumpy code."""

    chumpy_class = "chumpy"

    def __setstate__(self, state):
        self.state = state

    def to_array(self, key: str = "?") -> np.ndarray:
        state = getattr(self, "state", None)
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise ValueError(
            f"SMPL file entry '{key}' is a chumpy '{self.chumpy_class}' expression, not a stored array; only leaf "
            "chumpy arrays (with an 'x' value) can be read without chumpy. Convert the file to .npz with the "
            "official tools, or use the SMPL .npz release.")


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; only the latin-1 codec is allowed."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"pickle asks for codec '{encoding}'; only latin-1 byte strings are admitted.")
    return codecs.encode(text, "latin1")


_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}
_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric"}
_NUMPY_NAMES = {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"}
_BUILTINS = {"set", "frozenset", "object", "slice", "complex"}


def _numpy_global(name: str):
    import numpy

    if name in ("ndarray", "dtype"):
        return getattr(numpy, name)
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    return getattr(multiarray, name, None) or getattr(numeric, name)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits numpy arrays/dtypes/scalars, scipy.sparse matrices and chumpy stubs only."""

    def find_class(self, module: str, name: str):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return _numpy_global(name)
        if module == "numpy" and name in np.sctypeDict and isinstance(np.sctypeDict[name], type):
            return np.sctypeDict[name]  # numpy scalar classes, e.g. numpy.float64
        if module == "numpy.dtypes" and name.endswith("DType"):
            import numpy.dtypes

            return getattr(numpy.dtypes, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            import scipy.sparse  # old files name scipy.sparse.csc; the classes live in scipy.sparse now

            return getattr(scipy.sparse, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return type(name, (ChumpyStub,), {"chumpy_class": f"{module}.{name}"})
        if module == "builtins" and name in _BUILTINS:
            return __import__("builtins").__dict__[name]
        if module == "copyreg" and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # only ever receives classes admitted above
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        raise UnsafePickleError(
            f"refused to load '{module}.{name}': SMPL pickles may only hold numpy/scipy arrays (and chumpy arrays). "
            "This file is not an SMPL model or has been tampered with; nothing in it was executed.")


def to_plain_array(value, key: str = "?"):
    """Chumpy stub → ndarray, scipy sparse → dense ndarray, anything else unchanged."""
    if isinstance(value, ChumpyStub):
        return value.to_array(key)
    if hasattr(value, "toarray") and type(value).__module__.startswith("scipy.sparse"):
        return np.asarray(value.toarray())
    return value


def load_smpl_pickle(path) -> dict:
    """Load an SMPL/SMPL-X ``.pkl`` (official chumpy files included) into a dict of plain numpy arrays.

    Raises `UnsafePickleError` for any non-array content and `ValueError` for a pickle that is not a dict.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = RestrictedUnpickler(f, encoding="latin1").load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not the dict of arrays an SMPL model file holds.")
    return {str(k): to_plain_array(v, str(k)) for k, v in data.items()}
