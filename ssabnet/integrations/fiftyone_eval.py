"""SSABNet's matching registered as a FiftyOne evaluation run (imports ``fiftyone``).

FiftyOne's COCO evaluation (``fiftyone.utils.eval.coco``) matches boxes itself, in pure Python,
and knows no ignore regions. Here the matching comes from :meth:`ssabnet.Evaluator.matches`
(COCOeval's rules at IoU 0.5 with VisDrone ignore regions and 500 detections per image) and the
PR arrays from the same evaluator's COCOeval pass; FiftyOne's own classes store them:

* :class:`SsabnetEvaluationConfig` is a ``COCOEvaluationConfig`` (type ``"detection"``, method
  ``"ssabnet"``) whose config also records the ignore-region field and rule and the per-image
  cap, so the App shows how the numbers were made;
* :class:`SsabnetEvaluation` is a ``COCOEvaluation``: ``register_run`` / ``register_samples`` /
  ``save_run_results`` / ``cleanup`` / ``rename`` are FiftyOne's, so ``list_evaluations``,
  ``load_evaluation_results``, ``load_evaluation_view``, ``to_evaluation_patches``,
  ``delete_evaluation`` and the App's Model Evaluation panel work as after
  ``evaluate_detections``. It refuses to re-match a sample itself (``evaluate``): re-index with
  ``ssabnet fiftyone index`` instead;
* the results are FiftyOne's ``COCODetectionResults`` built from our matches and precision
  arrays, so ``results.mAP()`` is our ``AP`` (COCO AP@[.5:.95], 101 recall points, maxDets 500)
  and ``print_report()`` counts our TP/FP/FN at IoU 0.5.

Only :mod:`ssabnet.integrations.fiftyone` imports this module (lazily): ``import ssabnet`` never
imports fiftyone. FiftyOne finds the config class again by its dotted name when it loads the run
(the App server included), so the name of this module is part of the stored data.
"""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone.utils.eval.coco as fouc
import numpy as np

METHOD = "ssabnet"


class SsabnetEvaluationConfig(fouc.COCOEvaluationConfig):
    """A COCO-style evaluation whose matching was done by SSABNet's evaluator.

    Args (besides ``COCOEvaluationConfig``'s):
        max_dets_per_image: detections kept per image, highest scores first (VisDrone: 500).
            FiftyOne's ``max_preds`` caps per image *and class*; it is set to the same number
            and only describes the PR arrays, which come from our evaluator.
        ignore_regions_field: the sample field holding the ignore regions (``None``: none).
        ignore_region_rule: how a region drops a box (recorded for the reader).
        confidence_threshold: the F1-optimal score threshold of this field at IoU 0.5 (the
            FP views show predictions at or above it).
        source: the predictions file.
        ssabnet_AP, ssabnet_AP50: our evaluator's numbers (``ssabnet val`` on the same images).
    """

    def __init__(
        self,
        pred_field,
        gt_field,
        iou=0.5,
        classwise=True,
        iscrowd="iscrowd",
        compute_mAP=True,
        iou_threshs=None,
        max_preds=500,
        max_dets_per_image=500,
        ignore_regions_field=None,
        ignore_region_rule=None,
        confidence_threshold=None,
        source=None,
        ssabnet_AP=None,
        ssabnet_AP50=None,
        **kwargs,
    ):
        super().__init__(
            pred_field,
            gt_field,
            iou=iou,
            classwise=classwise,
            iscrowd=iscrowd,
            compute_mAP=compute_mAP,
            iou_threshs=iou_threshs,
            max_preds=max_preds,
            **kwargs,
        )
        self.max_dets_per_image = max_dets_per_image
        self.ignore_regions_field = ignore_regions_field
        self.ignore_region_rule = ignore_region_rule
        self.confidence_threshold = confidence_threshold
        self.source = source
        self.ssabnet_AP = ssabnet_AP
        self.ssabnet_AP50 = ssabnet_AP50

    @property
    def method(self):
        return METHOD


class SsabnetEvaluation(fouc.COCOEvaluation):
    """FiftyOne's COCO evaluation run, with the per-sample matching left to SSABNet."""

    def evaluate(self, _sample_or_frame, eval_key=None):
        raise NotImplementedError(
            "this evaluation was computed by SSABNet's evaluator (ignore regions, 500 detections "
            "per image); re-run it with `ssabnet fiftyone index`, or use FiftyOne's own "
            "evaluate_detections(method='coco') under another eval_key"
        )


def register_evaluation(
    dataset,
    eval_key: str,
    config: SsabnetEvaluationConfig,
    matches: Sequence[tuple],
    precision: np.ndarray,
    recall_sweep: np.ndarray,
    classes: Sequence[str],
) -> fouc.COCODetectionResults:
    """Register the run (its fields already written) and store its results.

    Args:
        dataset: the FiftyOne dataset (the run covers all its samples).
        eval_key: the evaluation key (``eval_<field>``).
        config: the run's config.
        matches: ``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` per TP, FP
            (``gt_label = None``) and FN (``pred_label = None``), FiftyOne's layout.
        precision: ``float[T, K, 101]`` (-1 for classes without ground truth).
        recall_sweep: ``float[T, K]``, the recall reached at each IoU threshold.
        classes: the ``K`` class names.
    """
    run = config.build()
    run.ensure_requirements()
    run.register_run(dataset, eval_key)
    run.register_samples(dataset, eval_key, dynamic=True)
    results = fouc.COCODetectionResults(
        dataset,
        config,
        eval_key,
        list(matches),
        precision,
        np.linspace(0.0, 1.0, 101),
        config.iou_threshs,
        list(classes),
        recall_sweep=recall_sweep,
        backend=run,
    )
    run.save_run_results(dataset, eval_key, results)
    run.add_fields_to_sidebar_group(
        dataset, eval_key, omit_fields=(config.pred_field, config.gt_field)
    )
    return results
