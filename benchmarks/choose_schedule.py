"""The schedule each backbone's tuning runs chose on validation: one line ``model lr lr_step`` per model.

    python benchmarks/choose_schedule.py TUNE_DIR > TUNE_DIR/chosen.txt

Reads every ``<model>_lr<lr>_step<step>.json`` that ``experiments.training.train`` wrote into TUNE_DIR and
keeps, per model, the run with the highest validation MRR@20 at its best epoch (the first one on a tie, in
file-name order). Used by tune_schedule.sh (run_llm_table2.sh and run_beauty_grid.sh search with
llm4sbr_adapter.experiments.training.schedule_search instead).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    best: dict[str, tuple[float, float, int]] = {}
    for path in sorted(Path(sys.argv[1]).glob("*_lr*_step*.json")):
        run = json.loads(path.read_text())
        value = run["valid_at_best"]["MRR@20"]
        if run["model"] not in best or value > best[run["model"]][0]:
            best[run["model"]] = (value, run["config"]["lr"], run["config"]["lr_step"])
    for model, (_, lr, step) in best.items():
        print(model, lr, step)


if __name__ == "__main__":
    main()
