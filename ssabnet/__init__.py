"""SSABNet: small-object detection in drone (UAV) imagery.

The public API used by the CLI, the Streamlit app, the FiftyOne integration and the notebooks.
Everything else is internal. Heavy optional packages (fiftyone, streamlit) are never imported here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ssabnet.config import Config, load_config  # noqa: E402

__all__ = ["Config", "load_config", "__version__"]
