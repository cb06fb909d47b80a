"""The RES ceiling of a proposal set (metrics/res_ceiling.py, `gcgbench res-ceiling`; a&s upper_bound_res.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcgbench.api.types import RLE
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.metrics.res_ceiling import proposal_ceiling


def _box(x0, y0, x1, y1, height=10, width=10) -> RLE:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return RLE.from_mask(mask)


def test_hand_computed_ceiling():
    gt_a, gt_b = _box(0, 0, 4, 4), _box(5, 5, 10, 10)                  # areas 16 and 25
    half, exact, far = _box(0, 0, 4, 2), _box(0, 0, 4, 4), _box(8, 0, 10, 2)
    result = proposal_ceiling([gt_a, gt_b, gt_a], [[half, exact, far], [far], []])
    assert result.best == (1, None, None) and result.ious == (1.0, 0.0, 0.0)
    assert result.intersections == (16, 0, 0) and result.unions == (16, 25, 16)
    assert result.giou == pytest.approx(1 / 3) and result.ciou == pytest.approx(16 / 57)
    tie = proposal_ceiling([gt_a], [[half, _box(0, 2, 4, 4)]])          # equal IoU: the first (best-scored) wins
    assert tie.best == (0,) and tie.ious == (0.5,)
    with pytest.raises(ValueError, match="size"):
        proposal_ceiling([gt_a], [[_box(0, 0, 1, 1, 5, 5)]])


def test_cli_ground_truth_proposals_reach_one(tmp_path, capsys):
    root = write_sample(tmp_path / "data", n_images=6)
    from gcgbench.api.task import DataPaths
    from gcgbench.tasks.registry import get_task

    docs = get_task("res_refcoco_val").docs(DataPaths(root))
    records = [{"image_id": d.truth["image_id"], "segmentation": d.phrases[0].masks[0].to_json(), "score": 0.5}
               for d in docs]
    (tmp_path / "proposals.json").write_text(json.dumps(records))
    assert main(["res-ceiling", "--task", "res_refcoco_val", "--proposals", str(tmp_path / "proposals.json"),
                 "--data-root", str(root), "--output", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "res_ceiling.json").read_text())
    assert summary["giou"] == 1.0 and summary["ciou"] == 1.0 and len(summary["per_sample"]) == len(docs)
    assert "gIoU 100.0" in capsys.readouterr().out
    assert main(["res-ceiling", "--task", "gcg_val", "--proposals", str(tmp_path / "proposals.json"),
                 "--data-root", str(root)]) == 2
