"""Read the official SMPL ``.pkl`` files without chumpy and without executing anything they name.

The MPI pickles were written by Python 2 with chumpy: arrays are ``chumpy.ch.Ch`` objects and ``J_regressor`` is a
``scipy.sparse.csc.csc_matrix``. A restricted unpickler admits only numpy and scipy.sparse array types; chumpy
classes become :class:`ChumpyStub` (which just keeps the pickled state, the array is in ``state["x"]``); every
other global is refused with :class:`UnsafePickleError` before anything is imported or called.

A crafted file can still try two things with admitted names, and both are stopped: pickle's BUILD on a class sets
attributes on it (so the unpickler hands out throwaway subclasses and fresh function wrappers, never a mutable
object that outlives the load), and array constructors take any shape (so every allocation is capped by what the
file can hold, and ``ndarray`` itself cannot be called).
"""
from __future__ import annotations

import codecs
import copyreg
import logging
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle names a type or function that is not a plain array type (a ``ValueError`` too, like every file
    a loader refuses)."""


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
_REFUSED_SCALARS = {"void"}  # numpy.void(n) allocates n bytes
MAX_DENSE_ELEMENTS = 2 ** 27  # a sparse matrix made dense: 1 GiB of float64 (SMPL-X's J_regressor has 0.6 M)


class _PickledNdarray(np.ndarray):
    """What the unpickler hands out for ``numpy.ndarray``: only valid as ``_reconstruct``'s first argument (which
    swaps the real class back in); calling it, which would allocate any shape, is refused."""

    def __new__(cls, *args, **kwargs):
        raise UnsafePickleError("the pickle calls numpy.ndarray directly (an array of any size); SMPL pickles "
                                "never do.")


def _is_mutable_class(value) -> bool:
    # heap types without Py_TPFLAGS_IMMUTABLETYPE accept setattr (scipy's classes); numpy's and builtins' do not
    return isinstance(value, type) and bool(value.__flags__ & (1 << 9)) and not value.__flags__ & (1 << 8)


def _elements(shape) -> int:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        raise UnsafePickleError(f"the pickle asks for an array of shape {shape!r}.")
    return math.prod(int(d) for d in dims)


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
    """Unpickler that admits numpy arrays/dtypes/scalars, scipy.sparse matrices and chumpy stubs only.

    ``max_bytes`` caps every array (elements × item size); by default it is the size of the file read, since no
    honest pickle holds an array larger than itself.
    """

    def __init__(self, file, *args, max_bytes: int | None = None, **kwargs):
        super().__init__(file, *args, **kwargs)
        if max_bytes is None:
            try:
                max_bytes = os.fstat(file.fileno()).st_size
            except (AttributeError, OSError, ValueError):  # an in-memory stream
                max_bytes = len(file.getbuffer()) if hasattr(file, "getbuffer") else 2 ** 30
        self.max_bytes = int(max_bytes)

    def _check_size(self, count: int, itemsize: int) -> None:
        if count * itemsize > self.max_bytes:
            raise UnsafePickleError(f"the pickle asks for an array of {count} elements ({count * itemsize} bytes) "
                                    f"but the file has only {self.max_bytes} bytes.")

    def _reconstruct(self, real):
        def reconstruct(subtype, shape, dtype, *rest):
            if subtype is _PickledNdarray:
                subtype = np.ndarray
            if not (isinstance(subtype, type) and issubclass(subtype, np.ndarray)):
                raise UnsafePickleError(f"the pickle reconstructs an array as {subtype!r}.")
            try:
                itemsize = np.dtype(dtype.decode("latin1") if isinstance(dtype, bytes) else dtype).itemsize
            except (TypeError, ValueError) as exc:
                raise UnsafePickleError(f"the pickle names an unknown array type {dtype!r}.") from exc
            self._check_size(_elements(shape), max(itemsize, 1))
            return real(subtype, shape, dtype, *rest)

        return reconstruct

    def _scalar(self, real):
        def scalar(dtype, *rest):
            self._check_size(1, getattr(dtype, "itemsize", 0))
            return real(dtype, *rest)

        return scalar

    def find_class(self, module: str, name: str):
        found = self._admitted(module, name)
        if _is_mutable_class(found):  # BUILD on a class sets its attributes: let it change a throwaway copy
            return type(found.__name__, (found,), {"__module__": found.__module__, "__qualname__": found.__qualname__})
        return found

    def _admitted(self, module: str, name: str):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            if name == "ndarray":
                return _PickledNdarray
            if name == "_reconstruct":
                return self._reconstruct(_numpy_global(name))
            if name == "scalar":
                return self._scalar(_numpy_global(name))
            return _numpy_global(name)
        if (module == "numpy" and name in np.sctypeDict and isinstance(np.sctypeDict[name], type)
                and np.sctypeDict[name].__name__ not in _REFUSED_SCALARS):
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
            return _object_reconstructor()
        if module == "_codecs" and name == "encode":
            return lambda text, encoding="latin1": _latin1_encode(text, encoding)  # a fresh function per load
        raise UnsafePickleError(
            f"refused to load '{module}.{name}': SMPL pickles may only hold numpy/scipy arrays (and chumpy arrays). "
            "This file is not an SMPL model or has been tampered with; nothing in it was executed.")


def _object_reconstructor():
    """``copyreg._reconstructor`` for plain classes only (``base`` is object): with another base it would call
    ``base.__new__(cls, state)``, e.g. ndarray's with any shape."""
    def reconstructor(cls, base, state):
        if base is not object:
            raise UnsafePickleError(f"the pickle builds an object on {base!r}; SMPL pickles only use plain classes.")
        return copyreg._reconstructor(cls, base, state)

    return reconstructor


def to_plain_array(value, key: str = "?"):
    """Chumpy stub → ndarray, scipy sparse → dense ndarray, anything else unchanged."""
    if isinstance(value, ChumpyStub):
        return value.to_array(key)
    if hasattr(value, "toarray") and type(value).__module__.startswith("scipy.sparse"):
        count = math.prod(int(d) for d in value.shape)
        if count > MAX_DENSE_ELEMENTS:
            raise ValueError(f"SMPL file entry '{key}' is a sparse {value.shape[0]}×{value.shape[1]} matrix "
                             f"({count} entries when made dense, more than {MAX_DENSE_ELEMENTS}): not an SMPL model.")
        return np.asarray(value.toarray())
    return value


def load_smpl_pickle(path) -> dict:
    """Load an SMPL/SMPL-X ``.pkl`` (official chumpy files included) into a dict of plain numpy arrays.

    Raises `UnsafePickleError` for any non-array content and `ValueError` for a pickle that is not a dict.
    """
    from ...weights import download_hint, unreadable_file

    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = RestrictedUnpickler(f, encoding="latin1").load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"SMPL model file '{path}' was refused: {exc} {download_hint(path, 'smpl_neutral')}"
                                    ) from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                UnicodeError, struct.error) as exc:
            reason = "the file is empty or cut short" if isinstance(exc, EOFError) else f"{type(exc).__name__}: {exc}"
            raise unreadable_file(path, "SMPL model file", reason, "smpl_neutral") from None
    if not isinstance(data, dict):
        raise unreadable_file(path, "SMPL model file", f"it holds a {type(data).__name__}, not the dict of arrays an "
                              "SMPL model file holds", "smpl_neutral")
    return {str(k): to_plain_array(v, str(k)) for k, v in data.items()}
