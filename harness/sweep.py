"""`python -m harness.sweep FILE`: a hyperparameter search (Ray Tune over an Optuna space).

    python -m harness.sweep search_spaces/quickstart.yaml
    python -m harness.sweep search_spaces/hephaestus.yaml --smoke
    python -m harness.sweep search_spaces/hephaestus.yaml --address auto --storage /shared/results --gpus-per-trial 0.25
    python -m harness.sweep search_spaces/hephaestus.yaml --resume
"""

import sys

from harness.command import command
from harness.cli import run_command

main = command("sweep")

if __name__ == "__main__":
    sys.exit(run_command(main))
