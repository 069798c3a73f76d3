"""`python -m harness.ablate FILE`: an ablation campaign (variants x datasets x seeds).

    python -m harness.ablate ablations/hephaestus.yaml --smoke
    python -m harness.ablate ablations/lightst.yaml --data-dir ~/data --address auto --storage /shared/results
"""

import sys

from harness.command import command
from harness.cli import run_command

main = command("ablation")

if __name__ == "__main__":
    sys.exit(run_command(main))
