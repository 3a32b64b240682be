"""Built-in body models by name: what Load Body Model offers besides SMPL files, and what the CLI and demo load.

A loader is registered under the name the node shows (``"anny (built-in)"``) with the model folder it keeps its
files or cache in, a cheap availability check (no heavy import: it runs while ComfyUI builds the node list) and a
``load(folder, callback=None)`` that returns an :class:`.interface.SMPLModel`. SMPL / SMPL-X files are not in this
table: they are files of ``models/smpl`` (:func:`.body_model.load_body_model`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

from .interface import SMPLModel


@dataclass(frozen=True)
class BodyLoader:
    """How to load one built-in body.

    Attributes:
        name (`str`): the choice shown in Load Body Model (stable: saved workflows bind to it).
        folder (`str`): the model folder (under ComfyUI's ``models/``) it keeps its files or cache in.
        load (`Callable[[folder, callback], SMPLModel]`): builds the body; ``callback(done, total)`` reports
            progress of a first-use build.
        unavailable (`Callable[[], str | None]`): why it cannot load on this machine (``None`` when it can).
        tooltip (`str`): what the node says about it.
    """

    name: str
    folder: str
    load: Callable[..., SMPLModel]
    unavailable: Callable[[], str | None]
    tooltip: str


_LOADERS: dict[str, BodyLoader] = {}


def register_body_loader(loader: BodyLoader) -> None:
    _LOADERS[loader.name] = loader


def body_names() -> list[str]:
    """Names of the built-in bodies, in registration order."""
    return list(_LOADERS)


def body_loader(name: str) -> BodyLoader:
    if name not in _LOADERS:
        raise ValueError(f"unknown built-in body {name!r}; available: {', '.join(map(repr, _LOADERS)) or 'none'}.")
    return _LOADERS[name]


def load_body(name: str, folder, callback=None) -> SMPLModel:
    """Load the built-in body ``name`` keeping its files in ``folder``."""
    return body_loader(name).load(folder, callback=callback)


# -- the built-in Anny body -------------------------------------------------------------------------------------

ANNY = "anny (built-in)"


def _anny_unavailable() -> str | None:
    if importlib.util.find_spec("anny") is None:
        return "the 'anny' package is not installed (pip install anny==0.6.2, or scripts/setup_env.sh)"
    return None


def _load_anny(folder, callback=None) -> SMPLModel:
    from .anny_cache import load_anny_body

    return load_anny_body(folder, callback=callback)


register_body_loader(BodyLoader(
    name=ANNY, folder="anny", load=_load_anny, unavailable=_anny_unavailable,
    tooltip=("'anny (built-in)': a licence-free human body shipped with the anny package (Apache-2.0 code, CC0 "
             "assets); its one-time cache (~1 min, ~50 MB) is built in models/anny on first use (unavailable when "
             "the anny package is missing: python cli.py doctor tells). ")))
