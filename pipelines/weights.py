"""Reading weight and data files without executing code, and one kind of error for a file that cannot be read:
a ``ValueError`` naming the file, saying it is corrupt or refused, and where to get it again (from
``models_config/models.json``); never a raw library message, never the advice to disable safe loading."""
from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Iterator

import torch

MODEL_REGISTRY = Path(__file__).resolve().parents[1] / "models_config" / "models.json"


def download_hint(path: str | os.PathLike, model_id: str | None = None) -> str:
    """Where to get ``path`` again: the registry entry with its file name, else the entry ``model_id``."""
    try:
        entries = json.loads(MODEL_REGISTRY.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError):
        entries = []
    name = Path(path).name
    entry = next((e for e in entries if name == Path(e["name"]).name or name in e.get("alternatives", ())), None)
    if entry is None and model_id:
        entry = next((e for e in entries if e["id"] == model_id), None)
    if entry is None:
        return "Replace it with a fresh copy from where you got it (models_config/models.json lists the sources)."
    return f"Download it again from {entry['source']} and replace the file."


def unreadable_file(path, what: str, reason: str, model_id: str | None = None, remedy: str | None = None,
                    refused: bool = False) -> ValueError:
    """The error for a file a loader cannot read (``refused``: safe loading turned it down)."""
    state = "was refused" if refused else "is corrupt or incomplete"
    return ValueError(f"{what} '{path}' {state}: {reason}. {remedy or download_hint(path, model_id)}")


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def describe_load_error(exc: BaseException) -> tuple[str, bool]:
    """(a short reason, refused?) for an exception from torch.load/safetensors/numpy, without library advice."""
    text = str(exc)
    found = _GLOBAL.search(text)
    if found:
        return (f"it asks to load '{found[1]}', which safe loading does not admit (only tensors and plain "
                "containers are read; nothing in the file was run)", True)
    if "Weights only load failed" in text or "weights_only" in text:
        return ("it holds objects that safe loading does not admit (nothing in the file was run)", True)
    if isinstance(exc, EOFError) or not text.strip():
        return "the file is empty or cut short", False
    if isinstance(exc, (zipfile.BadZipFile, OSError)) or "PytorchStreamReader" in text or "zip" in text.lower():
        return "the file is truncated or not the archive it should be", False
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}", False


def _reraise_as_unreadable(exc: Exception, path, what: str, model_id: str | None, remedy: str | None = None):
    if isinstance(exc, (FileNotFoundError, PermissionError, MemoryError)):
        raise exc
    reason, refused = describe_load_error(exc)
    raise unreadable_file(path, what, reason, model_id, remedy, refused) from exc


def load_pickle_weights_only(path: str | os.PathLike, what: str = "Weight file", model_id: str | None = None,
                             remedy: str | None = None):
    """``torch.load(weights_only=True)`` on the CPU, memory-mapped when the file allows it (zip format), so a
    multi-GB checkpoint is not read into memory twice. Extra allowed globals come from the caller's
    ``torch.serialization.safe_globals`` context. A file that cannot be read is a ``ValueError`` (see
    :func:`unreadable_file`)."""
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) pickles cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every library error becomes one clear message
        _reraise_as_unreadable(exc, path, what, model_id, remedy)


def load_safetensors(path: str | os.PathLike, what: str = "Weight file", model_id: str | None = None) -> dict:
    """All tensors of a ``.safetensors`` file on the CPU; a bad header or a cut file is a ``ValueError``."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, header errors
        _reraise_as_unreadable(exc, path, what, model_id)


def open_safetensors(path: str | os.PathLike, what: str = "Weight file", model_id: str | None = None):
    """``safe_open`` (use it in a ``with``); a bad header or a cut file is a ``ValueError``."""
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # noqa: BLE001
        _reraise_as_unreadable(exc, path, what, model_id)


@contextlib.contextmanager
def open_npz(path: str | os.PathLike, what: str, model_id: str | None = None,
             remedy: str | None = None) -> Iterator:
    """``np.load(allow_pickle=False)`` of an ``.npz``; an empty, cut or non-zip file is a ``ValueError``."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - EOFError, BadZipFile, ValueError("pickled data")
        _reraise_as_unreadable(exc, path, what, model_id, remedy)
    if not hasattr(data, "files"):
        raise unreadable_file(path, what, "it is a single .npy array, not an .npz archive of arrays", model_id,
                              remedy)
    with data:
        yield data


def npz_array(data, key: str, path, what: str, model_id: str | None = None, remedy: str | None = None,
              skip_objects: bool = False):
    """One array of an open ``.npz``; an entry holding pickled objects is refused (``ValueError``), or ``None``
    with ``skip_objects``; a damaged entry is a ``ValueError`` naming the file."""
    try:
        return data[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            if skip_objects:
                return None
            raise unreadable_file(path, what, f"its entry '{key}' holds pickled Python objects, which are not "
                                  "read (they could run code); store plain numeric arrays", model_id, remedy,
                                  refused=True) from exc
        _reraise_as_unreadable(exc, path, what, model_id, remedy)
    except Exception as exc:  # noqa: BLE001 - a cut member: zlib/zip errors
        _reraise_as_unreadable(exc, path, what, model_id, remedy)


def npz_header(data, key: str, path, what: str, model_id: str | None = None, remedy: str | None = None):
    """(shape, dtype) an entry of an open ``.npz`` declares, read from its header without reading the data."""
    import numpy.lib.format as npformat

    try:
        member_name = f"{key}.npy" if f"{key}.npy" in data.zip.namelist() else key
        with data.zip.open(member_name) as member:
            version = npformat.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(member)
            else:
                shape, _, dtype = npformat.read_array_header_2_0(member)
    except Exception as exc:  # noqa: BLE001 - a cut or foreign member: zip, zlib or header errors
        _reraise_as_unreadable(exc, path, what, model_id, remedy)
    return tuple(shape), dtype


def read_npz_entries(path, what: str, choose, check=None, model_id: str | None = None,
                     remedy: str | None = None) -> dict | None:
    """Read only the entries an ``.npz`` reader uses, once each, after checking their declared sizes.

    Args:
        choose (`callable`): ``choose(files, shapes) -> keys or None`` from the entry names and declared shapes
            (nothing read yet); ``None`` returns ``None``.
        check (`callable`, *optional*): ``check(key, shape, dtype)`` raises when a declared size is too large.
    """
    with open_npz(path, what, model_id, remedy) as data:
        headers = {key: npz_header(data, key, path, what, model_id, remedy) for key in data.files}
        keys = choose(list(data.files), {key: shape for key, (shape, _) in headers.items()})
        if keys is None:
            return None
        keys = [key for key in dict.fromkeys(keys) if key in headers]
        if check is not None:
            for key in keys:
                check(key, *headers[key])
        return {key: npz_array(data, key, path, what, model_id, remedy) for key in keys}
