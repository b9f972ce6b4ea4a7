"""``python -m rewardkit.train --data SNAPSHOT --out DIR``: the ``rewardkit train`` command, for launchers.

    torchrun --nproc_per_node 2 -m rewardkit.train --data SNAPSHOT --out runs/rm1
    accelerate launch --multi_gpu --num_processes 2 -m rewardkit.train --data SNAPSHOT --out runs/rm1

The same typer command as ``rewardkit train`` (``cli/train_cmd.py``), so options, help and error lines are the
same; only rank 0 prints the result. The process group the run opened is closed on the way out (the launcher
warns about, and some backends hang on, a group left open).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    import typer

    from rewardkit.cli.output import UserError, escape, stderr
    from rewardkit.cli.train_cmd import train_command

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train_command)  # a single command: its options are the program's own
    try:
        app(args=argv, prog_name="python -m rewardkit.train")
    except UserError as exc:
        stderr.print(f"[red]rewardkit train: error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    finally:
        if "torch.distributed" in sys.modules:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    main()
