"""Hooks: bad answers are refused with one clear message and leave nothing behind;
hostile values are data, never code; the post-gen hook is safe to run again."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import tomllib

import pytest
from helpers import NOT_TEMPLATE, OPTIONS, TEMPLATE_DIR, TOOLS_BIN, VARIANTS, BakedProject, bake, run


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")


def default_answers(**overrides) -> dict:
    answers = {name: value[0] if isinstance(value, list) else value for name, value in OPTIONS.items()}
    answers["project_slug"] = "data_platform_airflow"
    return answers | overrides


BAD_ANSWERS = [
    ("project_slug", "../escape"),
    ("project_slug", "nested/path"),
    ("project_slug", "1st_project"),
    ("project_slug", "My-Project"),
    ("project_slug", "with space"),
    ("project_slug", "airflow"),
    ("project_slug", "dags"),
    ("project_slug", "plugins"),
    ("project_slug", "tests"),
    ("project_slug", "json"),
    ("project_slug", "class"),
    ("contact_email", "not-an-email"),
    ("contact_email", "two@@example.com"),
    ("contact_email", "team@localhost"),
    ("python_version", "3.10"),
    ("python_version", "3.15"),
    ("python_version", "2.7"),
    ("executor", "SequentialExecutor"),
    ("executor", "LocalKubernetesExecutor"),
    ("project_name", "   "),
    ("description", "two\nlines"),
    ("owner_team", "tab\tseparated"),
    ("owner_team", "team'); drop"),
    ("owner_team", "x" * 65),
    ("include_examples", "maybe"),
    ("auth_manager", "simple"),
    ("alert_chat", "teams"),
    ("alert_pager", "opsgenie"),
    ("secrets_backend", "azure_key_vault"),
    ("deploy_target", "ftp"),
    ("ci_provider", "jenkins"),
    ("metrics", "datadog"),
    # Line and paragraph separators, NEL and other controls end a YAML string early.
    ("project_name", "Data\u2028injected: key"),
    ("project_name", "Data\u2029Platform"),
    ("description", "one\u0085two"),
    ("owner_team", "team\x1bx"),
    ("description", "right-to-left \u202e override"),
    # Template syntax runs as code when cookiecutter renders the answer.
    *[
        (field, f"x {delimiter} y")
        for field in ("project_name", "description", "owner_team", "contact_email", "project_slug")
        for delimiter in ("{" + "{", "}" + "}", "{" + "%", "%" + "}", "{" + "#", "#" + "}")
    ],
]


def validate(answers: dict) -> None:
    pre_gen.validate(answers, OPTIONS)


def test_defaults_are_valid():
    validate(default_answers())


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS, ids=[f"{f}={v!r}" for f, v in BAD_ANSWERS])
def test_validate_names_the_field(field, value):
    with pytest.raises(pre_gen.InvalidAnswer) as error:
        validate(default_answers(**{field: value}))
    assert error.value.field == field


CLI_BAD_ANSWERS = [
    ("project_slug", "../escape", "must be a plain folder name"),
    ("project_slug", "airflow", "would shadow"),
    ("contact_email", "nobody", "is not an email address"),
    # Cookiecutter itself refuses a value outside a choice list...
    ("python_version", "3.9", "provided for choice variable python_version"),
    ("executor", "CeleryKubernetes", "provided for choice variable executor"),
]


@pytest.mark.parametrize(("field", "value", "message"), CLI_BAD_ANSWERS, ids=[c[0] for c in CLI_BAD_ANSWERS])
def test_cookiecutter_refuses_bad_input_and_writes_nothing(tmp_path, field, value, message):
    output = tmp_path / "out"
    output.mkdir()
    result = run(
        [str(TOOLS_BIN / "cookiecutter"), "--no-input", "-o", str(output), str(TEMPLATE_DIR), f"{field}={value}"],
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert list(output.iterdir()) == []


HOSTILE = "x'''\"\"\" \\ $(touch {marker}) `touch {marker}`; __import__('os').system('touch {marker}') #"


def test_hostile_values_are_never_executed_and_survive_as_data(tmp_path):
    marker = tmp_path / "pwned"
    hostile = HOSTILE.format(marker=marker)
    overrides = {"project_slug": "safe_slug", "description": hostile, "project_name": hostile}
    project = BakedProject(bake(tmp_path / "out", **overrides), overrides)
    assert not marker.exists()
    assert tomllib.loads(project.read("pyproject.toml"))["project"]["description"] == hostile
    assert f"# {hostile}" in project.read("README.md")
    run([str(TOOLS_BIN / "ruff"), "check", "--no-cache", "."], cwd=project.path)


def test_free_text_errors_name_the_character():
    with pytest.raises(pre_gen.InvalidAnswer, match=r"U\+2028 \(LINE SEPARATOR\) is not allowed"):
        validate(default_answers(project_name="a\u2028b"))
    with pytest.raises(pre_gen.InvalidAnswer, match="must not contain template syntax"):
        validate(default_answers(description="{" + "{ 7 * 7 }" + "}"))


def test_a_new_option_in_cookiecutter_json_is_checked_without_editing_the_hook():
    options = OPTIONS | {"alert_sms": ["twilio", "none"], "include_runbooks": True, "team_channel": "#data"}
    answers = default_answers(alert_sms="twilio", include_runbooks=False, team_channel="#data-platform")
    pre_gen.validate(answers, options)
    for field, value, problem in [
        ("alert_sms", "sns", "'sns' is not one of twilio, none"),
        ("include_runbooks", "no", "'no' is not true or false"),
        ("team_channel", "two\nlines", "must be a single line"),
    ]:
        with pytest.raises(pre_gen.InvalidAnswer, match=problem) as error:
            pre_gen.validate(answers | {field: value}, options)
        assert error.value.field == field


JINJA_PAYLOAD = "{" + "{ cycler.__init__.__globals__.os.system('touch {marker}') }" + "}"


@pytest.mark.parametrize("field", ["project_name", "description", "owner_team", "project_slug"])
def test_template_syntax_in_an_answer_never_runs_and_writes_nothing(tmp_path, field):
    marker = tmp_path / "pwned"
    output = tmp_path / "out"
    output.mkdir()
    payload = JINJA_PAYLOAD.replace("{marker}", str(marker))
    command = [
        str(TOOLS_BIN / "cookiecutter"),
        "--no-input",
        "-o",
        str(output),
        str(TEMPLATE_DIR),
        f"{field}={payload}",
    ]
    result = run(command, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert f"invalid answer for {field}: must not contain template syntax" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not marker.exists(), "the answer ran as code"
    assert list(output.iterdir()) == []


def replay_with(tmp_path, field: str, value) -> tuple[object, object]:
    """Bake once, edit one answer in the replay file, replay it; returns (result, output folder)."""
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    cookiecutter_cli = [str(TOOLS_BIN / "cookiecutter"), "--config-file", str(config)]
    run([*cookiecutter_cli, "--no-input", "-o", str(tmp_path / "first"), str(TEMPLATE_DIR)], cwd=tmp_path)
    replay_file = tmp_path / "replay" / f"{TEMPLATE_DIR.name}.json"
    replay = json.loads(replay_file.read_text())
    replay["cookiecutter"][field] = value
    replay_file.write_text(json.dumps(replay))
    output = tmp_path / "out"
    output.mkdir()
    result = run([*cookiecutter_cli, "--replay", "-o", str(output), str(TEMPLATE_DIR)], cwd=tmp_path, check=False)
    return result, output


CHOICE_OPTIONS = {name: value for name, value in OPTIONS.items() if isinstance(value, list) and name[0] != "_"}
YES_NO_OPTIONS = [name for name, value in OPTIONS.items() if isinstance(value, bool)]


@pytest.mark.parametrize(
    ("field", "value"), [("project_name", "Data\u2028injected: key"), ("description", "{" + "{ 7 * 7 }" + "}")]
)
def test_replayed_free_text_is_validated(tmp_path, field, value):
    # ...but a replay file (or an edited .cruft.json) skips cookiecutter's own checks, so the hook repeats them.
    result, output = replay_with(tmp_path, field, value)
    assert result.returncode != 0
    assert f"invalid answer for {field}: " in result.stderr, result.stderr
    assert list(output.iterdir()) == []


@pytest.mark.parametrize("field", [*CHOICE_OPTIONS, *YES_NO_OPTIONS])
def test_a_replayed_answer_outside_its_choices_fails_naming_it_and_writes_nothing(tmp_path, field):
    # A stale or edited answer: a choice since dropped, or "yes" written as text for a boolean.
    value = "yes" if field in YES_NO_OPTIONS else "dropped-choice"
    result, output = replay_with(tmp_path, field, value)
    assert result.returncode != 0
    allowed = "true or false" if field in YES_NO_OPTIONS else f"one of {', '.join(CHOICE_OPTIONS[field])}"
    assert f"ERROR: invalid answer for {field}: {value!r} is not {allowed}" in result.stderr, result.stderr
    assert list(output.iterdir()) == []


def test_cruft_update_refuses_template_syntax_from_cruft_json(tmp_path):
    # .cruft.json is replayed through cookiecutter's prompt rendering on every update: the
    # extension in local_extensions.py must stop the answer before it runs.
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    for args in (
        ["init", "--quiet"],
        ["add", "--all"],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "A"],
    ):
        run(["git", *args], cwd=template, env=env)
    run(
        [str(TOOLS_BIN / "cruft"), "create", "--no-input", "--output-dir", str(tmp_path / "out"), str(template)],
        tmp_path,
        env,
    )
    project = tmp_path / "out" / "data_platform_airflow"
    marker = tmp_path / "pwned"
    state = json.loads((project / ".cruft.json").read_text())
    state["context"]["cookiecutter"]["description"] = JINJA_PAYLOAD.replace("{marker}", str(marker))
    (project / ".cruft.json").write_text(json.dumps(state))
    readme = (project / "README.md").read_text()
    (template / "CHANGELOG.md").write_text("moved\n")
    run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "B"], cwd=template, env=env)
    for args in (
        ["init", "--quiet"],
        ["add", "--all"],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "P"],
    ):
        run(["git", *args], cwd=project, env=env)
    result = run([str(TOOLS_BIN / "cruft"), "update", "-y"], cwd=project, env=env, check=False)
    assert result.returncode != 0
    # cruft shows the error at the end of its traceback, wrapped to the terminal's width.
    output = " ".join((result.stdout + result.stderr).split())
    assert "invalid answer for description: must not contain template syntax" in output
    assert not marker.exists(), "the answer from .cruft.json ran as code"
    assert (project / "README.md").read_text() == readme


def test_hooks_read_answers_through_json_not_as_code():
    for hook in ("pre_gen_project.py", "post_gen_project.py"):
        source = (TEMPLATE_DIR / "hooks" / hook).read_text()
        assert 'json.loads(r"""{{ cookiecutter | tojson }}""")' in source
        # The pre-gen hook also reads cookiecutter.json's options, which local_extensions.py hands it.
        options = 'json.loads(r"""{{ template_options | tojson }}""")'
        assert source.count("{{") == 1 + (hook == "pre_gen_project.py") == 1 + source.count(options)


def test_post_gen_is_idempotent_and_keeps_existing_secrets(baked, tmp_path):
    project = baked("hybrid").copy_to(tmp_path)
    before = {name: project.read(name) for name in project.files()}
    answers = default_answers(**VARIANTS["hybrid"]) | {
        "project_slug": project.slug,
        "__is_hybrid": "True",
        "__uses_kubernetes": "True",
    }
    post_gen.finish(project.path, answers)
    post_gen.finish(project.path, answers)
    assert {name: project.read(name) for name in project.files()} == before


def test_post_gen_makes_no_network_calls_and_never_reads_repo_dir():
    source = (TEMPLATE_DIR / "hooks" / "post_gen_project.py").read_text()
    tree = ast.parse(source)
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "base64", "json", "os", "secrets", "sys", "pathlib"}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert "_repo_dir" not in names


def test_cookiecutter_json_prompts_cover_every_public_option():
    public = [name for name in OPTIONS if not name.startswith("_")]
    prompts = OPTIONS["__prompts__"]
    assert set(prompts) == set(public)
    for name in public:
        if isinstance(OPTIONS[name], list):
            assert set(prompts[name]) - {"__prompt__"} == set(OPTIONS[name])
    assert isinstance(OPTIONS["include_examples"], bool)


def test_every_choice_passes_validation():
    for name, values in CHOICE_OPTIONS.items():
        for value in values:
            validate(default_answers(**{name: value}))


def test_derived_values_are_defined_once():
    # Executor conditions live in cookiecutter.json's private values, never spelled out in files.
    offenders = [
        str(path.relative_to(TEMPLATE_DIR))
        for path in (TEMPLATE_DIR / "{{cookiecutter.project_slug}}").rglob("*")
        if path.is_file() and "cookiecutter.executor in" in path.read_text(errors="ignore")
    ]
    assert offenders == []


def test_next_steps_print_their_comments_in_one_column():
    lines = load_hook("post_gen_project").next_steps("a_rather_long_project_name")
    assert lines[0].startswith("  Next: cd a_rather_long_project_name && make run")
    assert len({line.index("#") for line in lines}) == 1, lines
