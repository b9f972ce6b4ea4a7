"""``python -m rewardkit ...``: the ``rewardkit`` command, for launchers that start a module, not a script.

    torchrun --nproc_per_node 2 -m rewardkit train --data SNAPSHOT --out runs/rm1
    accelerate launch --multi_gpu --num_processes 2 -m rewardkit train --data SNAPSHOT --out runs/rm1

The same typer app as the console script, so options, help and error lines are the same; under a launcher only
rank 0 prints the result, and the process group the run opened is closed on the way out (``cli/train_cmd.py``).
It lives at the top of the package, not in ``rewardkit.train``: the training package must not import the CLI
built on it.
"""

from rewardkit.cli.main import run

if __name__ == "__main__":
    run()
