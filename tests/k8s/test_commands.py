"""The chart and manifests run exactly the commands the real `limr` CLI provides.

Every `limr ...` the cluster would execute (RayJob entrypoints, Deployment and init-container commands,
example manifests, the commands NOTES.txt tells users to type) is parsed by the CLI's own click command
tree and its `--help` run through the installed console script; the RayService's Serve config is built
with the real typed builder; the training config is loaded by the learner's config loader.
"""

from __future__ import annotations

import importlib
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.support import validate as v
from tests.k8s.support.objects import VALUES_FILES, find, one, pod_templates

LIMR = v.REPO / ".venv" / "bin" / "limr"


def _rendered_sets():
    yield from ((f, ()) for f in VALUES_FILES)
    # values.yaml ships without a RayJob: render one too
    yield "values.yaml", ("train.enabled=true", "train.prompts=/models/pool.jsonl", "train.resume=true")


def _invocations(render) -> dict[tuple[str, ...], str]:
    """Every `limr` argv (without "limr") the rendered charts and manifests run -> where it comes from."""
    found: dict[tuple[str, ...], str] = {}
    for values, sets in _rendered_sets():
        objects = render(values, set=sets)
        for job in find(objects, "RayJob"):
            argv = shlex.split(job["spec"]["entrypoint"])
            found[tuple(argv[1:])] = f"{values}: RayJob {job['metadata']['name']}"
            assert argv[0] == "limr"
        for where, t in pod_templates(objects):
            for c in t["spec"].get("initContainers", []) + t["spec"]["containers"]:
                if c.get("command", [None])[0] == "limr":
                    found[tuple(c["command"][1:] + c.get("args", []))] = f"{values}: {where}/{c['name']}"
    for path, doc in v.load_manifests():
        if doc["kind"] == "RayJob":
            _, argv = entrypoint_argv(doc["spec"]["entrypoint"])
            assert argv[0] == "limr", path
            found[tuple(argv[1:])] = str(path.relative_to(v.REPO))
    return found


def entrypoint_argv(entrypoint: str) -> tuple[str | None, list[str]]:
    """(working directory, argv) of a RayJob entrypoint (run by a shell): `limr ...` or `cd DIR && limr ...`."""
    argv = shlex.split(entrypoint)
    if argv[:1] == ["cd"]:
        assert argv[2] == "&&", entrypoint
        return argv[1], argv[3:]
    return None, argv


def _click_root():
    import typer.main

    from limr.cli.main import app

    return typer.main.get_command(app)


def _resolve(root, argv: tuple[str, ...]):
    """(command path, leaf command, remaining args) of an argv, walking the click group tree."""
    # duck-typed: typer may ship its own copy of click, so isinstance(click.Group) is not reliable
    cmd, path, rest = root, [], list(argv)
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        assert sub is not None, f"`limr {' '.join(path + [rest[0]])}` does not exist"
        cmd, path, rest = sub, [*path, rest[0]], rest[1:]
    assert path and not hasattr(cmd, "commands"), f"`limr {' '.join(argv)}` does not name a command"
    return path, cmd, rest


def test_should_collect_every_command_the_cluster_runs(render):
    heads = {argv[:2] if argv[0] in ("serve", "model", "data", "store") else argv[:1] for argv in _invocations(render)}
    assert heads == {
        ("train",),
        ("experiment",),
        ("serve", "scorer"),
        ("serve", "datasets"),
        ("model", "init-tiny"),
        ("data", "synthetic"),
        ("store", "provision"),
    }


def test_should_parse_every_rendered_command_with_the_real_cli(render):
    root = _click_root()
    for argv, where in _invocations(render).items():
        path, cmd, rest = _resolve(root, argv)
        # the CLI's own parser: unknown options, missing required ones and bad types all raise here
        ctx = cmd.make_context(f"limr {' '.join(path)}", list(rest))
        assert ctx.params, where
        if path == ["train"]:
            assert Path(ctx.params["config"]) == Path("/etc/limr/train.yaml"), where
            assert ctx.params["store"].startswith("s3://"), where
        if path == ["experiment"]:
            assert Path(ctx.params["config"]) == Path("/etc/limr/experiment.yaml"), where
            assert ctx.params["store"].startswith("s3://"), where


def test_should_run_help_of_each_command_through_the_installed_limr(render):
    if not LIMR.exists():
        pytest.skip(f"{LIMR} not installed (run scripts/setup.sh)")
    paths = {tuple(_resolve(_click_root(), argv)[0]) for argv in _invocations(render)}
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    helps = {}
    for path in sorted(paths):
        proc = subprocess.run([str(LIMR), *path, "--help"], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, f"limr {' '.join(path)} --help: {proc.stderr}"
        assert "Usage:" in proc.stdout
        helps[path] = proc.stdout
    # the options the chart passes are the ones `--help` documents
    for argv, where in _invocations(render).items():
        path, _, rest = _resolve(_click_root(), argv)
        for opt in (a.split("=")[0] for a in rest if a.startswith("--")):
            assert opt in helps[tuple(path)], f"{where}: {opt} not in `limr {' '.join(path)} --help`"


def test_should_run_the_commands_notes_tells_users_to_type(helm, tmp_path):
    import shutil

    chart = tmp_path / "limr"
    shutil.copytree(v.CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "limr.notes" . | quote }}\n'
    )
    proc = v.helm("template", "limr", str(chart), "-f", str(chart / "values-kind.yaml"))
    notes = next(d for d in yaml.safe_load_all(proc.stdout) if d and d["metadata"]["name"] == "notes")["data"]["notes"]
    commands = [line.split(" -- ", 1)[1] for line in notes.splitlines() if "ray job submit" in line]
    assert commands
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "limr"
        path, cmd, rest = _resolve(_click_root(), tuple(argv[1:]))
        cmd.make_context(f"limr {' '.join(path)}", rest)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_should_build_the_rollout_app_from_the_rendered_serve_config(render, values):
    objects = render(values)
    services = find(objects, "RayService")
    assert services
    actor = yaml.safe_load(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])["model"]["actor"]
    for svc in services:
        config = yaml.safe_load(svc["spec"]["serveConfigV2"])
        (app,) = config["applications"]
        module_name, attr = app["import_path"].split(":")
        builder = getattr(importlib.import_module(module_name), attr)
        from ray.serve import Application

        from limr.rollout.config import RolloutArgs

        args = RolloutArgs.model_validate(app["args"])  # the typed builder's own validation
        assert args.engine.model == actor  # rollout and learner start from the same weights
        assert isinstance(builder(app["args"]), Application)
        assert app["route_prefix"] == "/"


@pytest.mark.parametrize("values", [f for f in VALUES_FILES if f != "values.yaml"])
def test_should_load_the_mounted_train_config_with_the_learners_loader(render, values, tmp_path):
    from limr.learner.config import load_config

    objects = render(values)
    config = tmp_path / "train.yaml"
    config.write_text(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])
    argv = shlex.split(one(objects, "RayJob")["spec"]["entrypoint"])
    store = argv[argv.index("--store") + 1]
    cfg = load_config(config, {"run.store": store})
    assert cfg.name == "limr" and cfg.model.actor == yaml.safe_load(config.read_text())["model"]["actor"]
    assert cfg.data.prompts and cfg.data.prompts.startswith("/models/")
    assert cfg.metrics.port == 9464
    # the rollout service the run starts in the cluster gets arguments the typed builder accepts
    from limr.learner.generator.service import rollout_args
    from limr.rollout.config import RolloutArgs

    assert RolloutArgs.model_validate(rollout_args(cfg, "run")).engine.model == cfg.model.actor


def test_should_keep_the_gpu_values_in_step_with_the_learners_paper_config(render, tmp_path):
    from limr.learner.config import load_config

    config = tmp_path / "train.yaml"
    config.write_text(one(render("values-gpu.yaml"), "ConfigMap", "limr-config")["data"]["train.yaml"])
    cfg = load_config(config)
    paper = (
        cfg.batch.rollout_batch_size,
        cfg.rollout.samples_per_prompt,
        cfg.rollout.temperature,
        cfg.batch.train_batch_size,
        cfg.optim.actor_lr,
        cfg.optim.critic_lr,
        cfg.algorithm.kl_coef,
        cfg.rollout.max_new_tokens,
    )
    assert paper == (1024, 8, 1.2, 256, 5e-7, 9e-6, 0.01, 3072)
    repo_config = v.REPO / "configs" / "qwen2.5-math-7b.yaml"
    assert repo_config.exists(), "configs/qwen2.5-math-7b.yaml is part of the repo, in step with the chart"
    # everything but what the chart owns (name, model path, metrics port, where the pool and Ray Train's state
    # live) is the same
    ref = load_config(repo_config).model_dump()
    mine = cfg.model_dump()
    for d in (ref, mine):
        d.pop("name")
        d["model"].pop("actor")
        d["metrics"].pop("port")
        d["data"].pop("prompts")
        d["data"].pop("eval_prompts")
        d["trainer"].pop("ray_storage_path")
    assert mine == ref


def test_should_generate_the_kind_prompt_pool_with_the_init_command(render, tmp_path):
    from limr.data.pool import load_pool

    if not LIMR.exists():
        pytest.skip(f"{LIMR} not installed (run scripts/setup.sh)")
    cluster = one(render("values-kind.yaml"), "RayCluster")
    init = {c["name"]: c for c in cluster["spec"]["headGroupSpec"]["template"]["spec"]["initContainers"]}
    pool = init["synthetic-pool"]
    assert pool["command"] == ["limr"]
    argv = [a.replace("/models/", f"{tmp_path}/") for a in pool["args"]]
    subprocess.run([str(LIMR), *argv], check=True, timeout=120, capture_output=True)
    config = yaml.safe_load(one(render("values-kind.yaml"), "ConfigMap", "limr-config")["data"]["train.yaml"])
    train = load_pool(config["data"]["prompts"].replace("/models/", f"{tmp_path}/"))
    held_out = load_pool(config["data"]["eval_prompts"].replace("/models/", f"{tmp_path}/"))
    assert (len(train.ids), len(held_out.ids)) == (64, 32)
    assert not set(train.ids) & set(held_out.ids)


def test_should_train_whole_epochs_on_kind_so_the_scorer_can_publish(render, tmp_path):
    from limr.learner.config import load_config

    objects = render("values-kind.yaml")
    config = tmp_path / "train.yaml"
    config.write_text(one(objects, "ConfigMap", "limr-config")["data"]["train.yaml"])
    init = one(objects, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["initContainers"]
    args = next(c["args"] for c in init if c["name"] == "synthetic-pool")
    pool_size = int(args[args.index("--n-train") + 1])
    derived = load_config(config).derive(pool_size)
    assert derived.total_steps == 2 * derived.steps_per_epoch  # two complete epochs of events


def test_should_keep_the_kind_values_in_step_with_the_learners_tiny_config(render, tmp_path):
    from limr.learner.config import load_config

    repo_config = v.REPO / "configs" / "tiny-cpu.yaml"
    assert repo_config.exists(), "configs/tiny-cpu.yaml is part of the repo, in step with the chart"
    config = tmp_path / "train.yaml"
    config.write_text(one(render("values-kind.yaml"), "ConfigMap", "limr-config")["data"]["train.yaml"])
    mine, ref = load_config(config).model_dump(), load_config(repo_config).model_dump()
    # what the kind run resizes (pool, batch, workers, length of the run) or the chart owns (name, paths, port)
    resized = {
        "name": None,
        "model": ["actor"],
        "metrics": ["port", "progress"],
        "data": ["prompts", "eval_prompts", "eval_limit"],
        "rollout": ["samples_per_prompt"],
        "batch": ["rollout_batch_size", "train_batch_size", "micro_batch_size"],
        "trainer": ["num_workers", "cpus_per_worker", "torch_threads", "ray_storage_path"],
        "run": ["epochs", "max_steps", "checkpoint_every", "eval_every"],
    }
    for d in (mine, ref):
        for section, keys in resized.items():
            if keys is None:
                d.pop(section)
            else:
                for key in keys:
                    d[section].pop(key)
    assert mine == ref
