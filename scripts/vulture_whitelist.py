"""Names vulture (``make lint``) would report as unused that are used, by something it cannot
see. Each entry says who uses it; anything else vulture finds is dead code to delete."""

# ruff: noqa: B018 (each line is a bare expression naming a used attribute)
from types import SimpleNamespace

_ = SimpleNamespace()

_.__getattr__  # module __getattr__ (PEP 562): lazy exports of ssabnet and ssabnet.model
_.imgIds  # pycocotools/faster-coco-eval read COCOeval.params.* (ssabnet.evaluation.coco_protocol)
_.catIds
_.maxDets
_.areaRng
_.areaRngLbl
_.do_not_track  # read by fiftyone (ssabnet.integrations.fiftyone.configure_environment)
_.binary_location  # read by selenium (tests/test_app_browser.py)
_.log_message  # http.server.BaseHTTPRequestHandler hook (tests/test_data_catalog.py)
_.validate  # ultralytics DetectionTrainer hooks overridden by benchmarks/ablation_peer.py
_.final_eval
_.pytestmark  # read by pytest (tests/test_demo.py)
_.citation  # a dataset card's field (data_catalog/*.yaml), kept with the card's licence
_.images_with_detections  # a field of what ssabnet.evaluation.readers returns (public API)
_.SsabnetEvaluation  # found by FiftyOne from the run config's class name (fiftyone_eval.py)
