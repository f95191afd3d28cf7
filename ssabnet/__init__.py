"""SSABNet: small-object detection in drone (UAV) imagery.

The public API used by the CLI, the Streamlit app, the FiftyOne integration and the notebooks.
Everything else is internal. Heavy optional packages (fiftyone, streamlit) are never imported here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ssabnet.config import Config, load_config  # noqa: E402
from ssabnet.data import DetectionDataset, load_dataset  # noqa: E402
from ssabnet.evaluation import Evaluator, load_predictions  # noqa: E402
from ssabnet.losses import box_loss, loss_curves  # noqa: E402
from ssabnet.model import build_model  # noqa: E402
from ssabnet.run_import import import_predictions  # noqa: E402
from ssabnet.runs import discover_runs, load_run  # noqa: E402

# The engine and the scene generator pull in OpenCV: imported on first use so ``import ssabnet``
# stays light.
_LAZY_EXPORTS = {
    "fit": "ssabnet.engine.train",
    "predict": "ssabnet.engine.predict",
    "load_checkpoint": "ssabnet.engine.predict",
    "LoadedCheckpoint": "ssabnet.engine.predict",
    "generate_dataset": "ssabnet.data.synthetic",
}


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'ssabnet' has no attribute {name!r}")


__all__ = ["Config", "load_config", "build_model", "Evaluator", "__version__"]
__all__ += list(_LAZY_EXPORTS)
__all__ += ["box_loss", "loss_curves"]
__all__ += ["DetectionDataset", "load_dataset"]
__all__ += ["load_predictions", "import_predictions", "discover_runs", "load_run"]
