"""``rewardkit registry register|list|show|diff|alias|promote|rollback|golden``: model versions, aliases and
gated promotion (docs/registry.md). Every command takes ``--json``; a mistake is one line naming what and why,
and changes nothing."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does this (default: user@host).")]
WhyOpt = Annotated[str, typer.Option("--why", help="Why: recorded in the alias history.")]
MlflowOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow-uri",
        envvar="RK_MLFLOW_URI",
        help="Also mirror into this MLflow Model Registry (needs the mlflow extra; env RK_MLFLOW_URI).",
    ),
]


def who(by: str | None) -> str:
    if by:
        return by
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def open_factory() -> Any:
    from rewardkit.cli.db_cmd import _open

    return _open()


def registry_errors() -> tuple[type[Exception], ...]:
    from rewardkit.loop.config import LoopConfigError
    from rewardkit.loop.lease import LeaseBusy
    from rewardkit.registry.policy import PolicyError
    from rewardkit.registry.versions import RegistryError

    return (RegistryError, PolicyError, LoopConfigError, LeaseBusy)


def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a library function; its expected errors become one-line UserErrors."""
    try:
        return fn(*args, **kwargs)
    except registry_errors() as exc:
        raise UserError(str(exc)) from None


def mirror(uri: str | None, factory: Any, name: str, version: int, alias: str | None = None) -> dict[str, Any] | None:
    if not uri:
        return None
    from rewardkit.registry import mlflow_mirror
    from rewardkit.registry.versions import get_version

    info = run(get_version, factory, name=name, version=version)
    try:
        if alias:
            return {"mlflow_uri": uri, "alias": alias, "mlflow_version": mlflow_mirror.mirror_alias(uri, info, alias)}
        return {"mlflow_uri": uri, "mlflow_version": mlflow_mirror.mirror_version(uri, info)}
    except Exception as exc:  # noqa: BLE001 - the store committed; the mirror's failure is reported, not undone
        raise UserError(f"done in rewardkit, but mirroring to MLflow at {uri} failed: {exc}") from None


def _print_version(v: dict[str, Any], aliases: list[str]) -> None:
    tag = f"  [{', '.join(aliases)}]" if aliases else ""
    stdout.print(
        f"{v['name']} v{v['version']}{tag}  sha256 {v['sha256'][:12]}  snapshot {(v['snapshot_id'] or '-')[:12]}"
    )
    stdout.print(f"  path {v['path']}")
    stdout.print(f"  created {v['created_at']} by {v['created_by']}")


def print_checks(checks: list[dict[str, Any]], indent: str = "") -> None:
    """A promotion verdict's gates, one line each: PASS/FAIL, the gate, what it measured."""
    for check in checks:
        stdout.print(
            f"{indent}{'PASS' if check['passed'] else 'FAIL'} {check['gate']}: {check['detail']}", highlight=False
        )


def register(app: typer.Typer) -> None:
    reg = typer.Typer(help="Model versions, aliases (champion, challenger) and gated promotion.", no_args_is_help=True)
    app.add_typer(reg, name="registry")

    @reg.command("register")
    def register_(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        path: Annotated[Path, typer.Argument(help="A reward-model folder (save_pretrained + rewardkit.json).")],
        snapshot: Annotated[str | None, typer.Option("--snapshot", help="The snapshot it was trained on.")] = None,
        by: ByOpt = None,
        mlflow_uri: MlflowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Register PATH as the next version of NAME (a content-pinned copy; the same files again: the same version)."""
        from rewardkit.registry.versions import register_version

        factory = open_factory()
        info, created = run(register_version, factory, name=name, source=path, created_by=who(by), snapshot_id=snapshot)
        out = {**info.as_json(), "created": created, "mlflow": mirror(mlflow_uri, factory, name, info.version)}
        if json_:
            emit_json(out)
            return
        stdout.print(f"{'registered' if created else 'already registered as'} {name} v{info.version}")
        _print_version(out, [])

    @reg.command("list")
    def list_(
        name: Annotated[str | None, typer.Argument(help="Only this model.")] = None, json_: JsonOpt = False
    ) -> None:
        """Every registered version, with the aliases that point to it."""
        from rewardkit.registry.versions import VersionInfo
        from rewardkit.store import registry as q
        from rewardkit.store import session_scope

        with session_scope(open_factory()) as s:
            versions = [VersionInfo.of(r).as_json() for r in q.list_model_versions(s, name=name)]
            aliases = [(a.name, a.alias, a.version) for a in q.list_aliases(s, name=name)]
        if name is not None and not versions:
            raise UserError(f"no registered model named {name!r}")
        for v in versions:
            v["aliases"] = [a for n, a, ver in aliases if n == v["name"] and ver == v["version"]]
        if json_:
            emit_json(versions)
            return
        for v in versions:
            _print_version(v, v["aliases"])

    @reg.command()
    def show(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        version: Annotated[int | None, typer.Option("--version", help="This version.")] = None,
        alias: Annotated[str | None, typer.Option("--alias", help="The version this alias points to.")] = None,
        json_: JsonOpt = False,
    ) -> None:
        """One version in full (default: the champion), with its alias history."""
        from rewardkit.registry.aliases import history
        from rewardkit.registry.versions import resolve_version

        factory = open_factory()
        if version is None and alias is None:
            alias = "champion"
        info = run(
            resolve_version, factory, name=name, version=version, alias=alias if version is None else None, verify=False
        )
        out = {**info.as_json(), "history": run(history, factory, name=name)}
        if json_:
            emit_json(out)
            return
        _print_version(out, [alias] if alias else [])
        stdout.print(f"  train config {info.train_config}")
        stdout.print(f"  eval summary {info.eval_summary}")
        for h in out["history"][:10]:
            forced = " FORCED" if h["forced"] else ""
            move = f"v{h['from_version']} -> v{h['to_version']} {h['kind']}{forced}"
            stdout.print(f"  {h['at']} {h['alias']}: {move} by {h['who']}: {h['why']}")

    @reg.command()
    def diff(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        a: Annotated[int, typer.Argument(help="Version A.")],
        b: Annotated[int, typer.Argument(help="Version B.")],
        json_: JsonOpt = False,
    ) -> None:
        """What differs between two versions: files, data, training config, golden evaluation."""
        from rewardkit.registry.versions import get_version

        factory = open_factory()
        va, vb = (run(get_version, factory, name=name, version=v).as_json() for v in (a, b))
        changes: dict[str, Any] = {}
        for key in ("sha256", "snapshot_id", "snapshot_parent_id", "created_by", "source"):
            if va[key] != vb[key]:
                changes[key] = [va[key], vb[key]]
        for section in ("train_config", "eval_summary"):
            keys = sorted(set(va[section]) | set(vb[section]))
            diffs = {
                k: [va[section].get(k), vb[section].get(k)] for k in keys if va[section].get(k) != vb[section].get(k)
            }
            if diffs:
                changes[section] = diffs
        if json_:
            emit_json({"name": name, "a": a, "b": b, "changes": changes})
            return
        if not changes:
            stdout.print(f"{name} v{a} and v{b} do not differ")
        for key, value in changes.items():
            if isinstance(value, dict):
                for k, (x, y) in value.items():
                    stdout.print(f"{key}.{k}: {x} -> {y}")
            else:
                stdout.print(f"{key}: {value[0]} -> {value[1]}")

    @reg.command()
    def alias(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        alias: Annotated[str, typer.Argument(help="The alias (challenger, staging...; champion only when unset).")],
        version: Annotated[int, typer.Argument(help="The version it points to.")],
        why: WhyOpt = "",
        by: ByOpt = None,
        mlflow_uri: MlflowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Point ALIAS at VERSION (no gates; the champion moves by promote or rollback once it exists)."""
        from rewardkit.registry.aliases import set_alias

        factory = open_factory()
        move = run(set_alias, factory, name=name, alias=alias, version=version, who=who(by), why=why)
        out = {**move.as_json(), "mlflow": mirror(mlflow_uri, factory, name, version, alias)}
        emit_json(out) if json_ else stdout.print(f"{name}@{alias}: v{move.from_version} -> v{move.to_version}")

    @reg.command()
    def promote(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        version: Annotated[int, typer.Option("--version", help="The candidate version.")],
        policy: Annotated[
            Path | None, typer.Option("--policy", help="Promotion policy TOML (default: built-in).")
        ] = None,
        golden: Annotated[str | None, typer.Option("--golden", help="Golden snapshot id (default: newest).")] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Promote even if gates fail (recorded as forced).")
        ] = False,
        max_probe_rows: Annotated[
            int, typer.Option("--max-probe-rows", help="Probe at most this many responses.")
        ] = 1000,
        n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 1000,
        device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda...")] = "auto",
        why: WhyOpt = "",
        by: ByOpt = None,
        mlflow_uri: MlflowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Gate VERSION against the champion on the golden snapshot; promote it if the policy holds (exit 1 if not)."""
        from rewardkit.evaluate.run import EvalConfig
        from rewardkit.registry.aliases import promote as do_promote
        from rewardkit.registry.policy import load_policy

        factory = open_factory()
        pol = run(load_policy, policy)
        try:
            config = EvalConfig(max_probe_rows=max_probe_rows, n_boot=n_boot)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        result = run(
            do_promote, factory, name=name, version=version, who=who(by), policy=pol, golden=golden, force=force,
            why=why, eval_config=config, device=device,
        )  # fmt: skip
        out = {
            **result.as_json(),
            "mlflow": mirror(mlflow_uri, factory, name, version, "champion") if result.move else None,
        }
        if json_:
            emit_json(out)
        else:
            print_checks(result.verdict["checks"])
            if result.move:
                forced = " (FORCED past failing gates)" if result.move.forced else ""
                stdout.print(f"promoted {name} v{version} to champion (was v{result.move.from_version}){forced}")
            else:
                stdout.print(f"not promoted: {name} v{version} failed the gates; the champion is unchanged")
        if not result.move:
            raise typer.Exit(1)

    @reg.command()
    def rollback(
        name: Annotated[str, typer.Argument(help="The model's registry name.")],
        alias: Annotated[str, typer.Option("--alias", help="The alias to move back.")] = "champion",
        to: Annotated[
            int | None, typer.Option("--to", help="This version (default: the one before the last move).")
        ] = None,
        why: WhyOpt = "",
        by: ByOpt = None,
        mlflow_uri: MlflowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Move ALIAS back to the version it pointed to before its last move (no gates: seconds)."""
        from rewardkit.registry.aliases import rollback as do_rollback

        factory = open_factory()
        move = run(do_rollback, factory, name=name, alias=alias, to=to, who=who(by), why=why)
        out = {**move.as_json(), "mlflow": mirror(mlflow_uri, factory, name, move.to_version, alias)}
        emit_json(out) if json_ else stdout.print(
            f"rolled back {name}@{alias}: v{move.from_version} -> v{move.to_version}"
        )

    @reg.command()
    def golden(
        snapshot: Annotated[str, typer.Argument(help="A snapshot id (or unique prefix) to mark golden.")],
        note: Annotated[str, typer.Option("--note", help="What it holds (e.g. 'human labels, held out').")] = "",
        by: ByOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Mark a snapshot golden: human labels held out of training, on which promotions are gated."""
        from rewardkit.data.snapshot import SnapshotNotFound, read_manifest, resolve_snapshot
        from rewardkit.store import registry as q
        from rewardkit.store import session_scope

        try:
            folder = resolve_snapshot(snapshot)
        except SnapshotNotFound as exc:
            raise UserError(str(exc)) from None
        sid = read_manifest(folder)["id"]
        with session_scope(open_factory()) as s:
            q.mark_golden(s, snapshot_id=sid, by=who(by), note=note)
        emit_json({"golden": sid}) if json_ else stdout.print(f"snapshot {sid} is golden")
