"""Every `limr ...` command line in README.md and docs/ parses with the CLI's own parser.

A documented command or flag that does not exist (a renamed option, a removed subcommand) fails here, so the
docs cannot drift from the CLI. Commands come from fenced code blocks (shell continuation lines joined) and
inline code spans; placeholders (FILE, <run>, ...) are fine: the leaf command parses resiliently, which skips
type conversion and required-argument checks but still rejects unknown options and subcommands.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path

import pytest
import typer

from limr.cli.main import app

# typer vendors its own click: its UsageError is BadParameter's base (unknown options and commands raise it)
UsageError = typer.BadParameter.__mro__[1]

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", "(", ")"}
_WRAPPERS = {"--", "-m", "exec", "then", "do", "time", "nice", "xargs"}  # `limr` right after one of these runs it


def _commands(text: str) -> list[str]:
    """Shell snippets that may hold a `limr` command: code block lines (continuations joined), inline spans."""
    out: list[str] = []
    for block in _FENCE.findall(text):
        out += block.replace("\\\n", " ").splitlines()
    prose = _FENCE.sub("", text)
    out += _INLINE.findall(prose)
    return [s for s in out if re.search(r"(^|[\s(;&|$])limr\s+[a-z-]", s)]


def _argvs(snippet: str) -> list[list[str]]:
    """The argument lists after each `limr` that is run as a command in the snippet."""
    try:
        lex = shlex.shlex(snippet.lstrip("$ "), posix=True, punctuation_chars=True)
        lex.whitespace_split, lex.commenters = True, "#"
        tokens = list(lex)
    except ValueError:  # an unbalanced quote in prose: not a command line
        return []
    argvs, i = [], 0
    while i < len(tokens):
        prev = tokens[i - 1] if i else None
        starts = prev is None or prev in _OPERATORS or prev in _WRAPPERS or re.fullmatch(r"\w+=\S*", prev or "")
        if tokens[i] == "limr" and starts:
            j = i + 1
            while j < len(tokens) and tokens[j] not in _OPERATORS:
                j += 1
            argvs.append(tokens[i + 1 : j])
            i = j
        i += 1
    return argvs


def _cases() -> list[tuple[str, list[str]]]:
    cases = []
    for doc in DOCS:
        for snippet in _commands(doc.read_text()):
            for argv in _argvs(snippet):
                cases.append((f"{doc.name}: limr {' '.join(argv)}"[:150], argv))
    return cases


CASES = _cases()


@functools.cache
def _root():
    return typer.main.get_command(app)


def _check_options(cmd, args: list[str]) -> None:
    """Every option in `args` (up to a bare `--`) is one `cmd` declares."""
    known = {"--help"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for a in args:
        if a == "--":
            return
        name = a.split("=", 1)[0]
        if a.startswith("-") and len(a) > 1 and not re.fullmatch(r"-\d.*", a) and name not in known:
            raise UsageError(f"no such option {name!r} for {cmd.name!r}")


def parse(argv: list[str]):
    """Resolve subcommands strictly (group options and all), check every option exists, then let the command parse
    resiliently (placeholders such as FILE or N stand where values go); returns the leaf command."""
    cmd = _root()
    args = list(argv)
    while hasattr(cmd, "list_commands"):  # a group: its own options, then a subcommand
        rest = [a for a in args if not a.startswith("-")]
        head = args[: args.index(rest[0])] if rest else args
        _check_options(cmd, head)
        ctx = cmd.make_context(cmd.name, list(args), resilient_parsing=True)
        args = [*ctx._protected_args, *ctx.args]  # what follows the group's options
        if not args or args[0] in ("--help", "-h") or not re.fullmatch(r"[a-z][a-z0-9-]*", args[0]):
            return cmd  # `limr datasets ...`: a placeholder for any subcommand
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise UsageError(f"no such command {args[0]!r} under {cmd.name!r}")
        cmd, args = sub, args[1:]
    _check_options(cmd, args)
    cmd.make_context(cmd.name, args, resilient_parsing=True).close()
    return cmd


def test_the_docs_hold_commands_to_check():
    assert len(CASES) > 50
    assert any(argv[:1] == ["plan"] for _, argv in CASES)


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_documented_command_parses(argv: list[str]):
    parse(argv)


@pytest.mark.parametrize(
    "argv",
    [["score", "--openrlhf-samples", "x"], ["no-such-command"], ["serve", "nothing"], ["train", "--bogus"]],
)
def test_the_checker_rejects_what_does_not_exist(argv):
    with pytest.raises(UsageError):
        parse(argv)


def test_continuations_and_comments_are_handled():
    text = "```bash\nlimr train --config c.yaml \\\n  --prompts p.json   # the pool\n```\nand `limr plan --json`"
    argvs = [a for s in _commands(text) for a in _argvs(s)]
    assert argvs == [["train", "--config", "c.yaml", "--prompts", "p.json"], ["plan", "--json"]]
