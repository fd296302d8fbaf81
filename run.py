#!/usr/bin/env python
"""Hydra entry point: compose a config from ``conf/``, run it, return the objective (for sweepers).

    python run.py                                   # iGRPO on the embedded default
    python run.py -m variant=grpo,igrpo seed=0,1    # 4 runs, children of one MLflow parent run
    python run.py --cfg job                         # print the composed config
"""

import sys

from igrpo.job.cli import check_group_choices, quiet_third_party_logs

check_group_choices(sys.argv[1:])  # one-line error for variant=foo before Hydra prints a multi-line one
quiet_third_party_logs()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from igrpo.job.cli import run_hydra_app, run_job  # noqa: E402
from igrpo.config import register_configs  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_job(cfg)


if __name__ == "__main__":
    run_hydra_app(main, sys.argv[1:])  # Hydra's own errors as one line, exit 2
