"""helmfile's `hooks:` as deployer's release hooks (deployer/hooks.py), written down, never run.

helmfile runs a hook as `command` with `args` (no shell) in the state file's directory; deployer runs
`command` as argv in deployer.yaml's directory, so a relative command path is rewritten from one to
the other. Events:
- presync, postsync, preuninstall, postuninstall, cleanup: the same names in deployer;
- prepare (helmfile runs it on every command, diff and template included) becomes preapply, which
  deployer runs once before apply's first change: deployer never runs a command while it plans;
- preapply (helmfile: before this release's install, upgrade or uninstall under `helmfile apply`)
  becomes presync and preuninstall, deployer's events at those points (deployer's own preapply
  runs once per run);
- a top-level hook only ever sees helmfile's global prepare and cleanup: it goes to `defaults`.
The template expressions helmfile fills in a hook's args (`{{ .Release.Name }}`...) become the
variables deployer gives a hook (`$DEPLOYER_RELEASE`...), through `sh -c`.

For a templated state file the hooks are read from the user's file (helmfile was handed a copy with
every `hooks:` emptied, so that it runs none): the block under each `hooks:` key, when it is YAML
without template actions of its own.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from deployer.importer.findings import WHY_DEPENDENCIES, Finding
from deployer.importer.sandbox import Stripped
from deployer.yamlsource import display_path

SAME = ("presync", "postsync", "preuninstall", "postuninstall", "cleanup")
PREPARE_WHY = (
    "deployer never runs a command while it plans or renders (diff, template): imported as preapply, "
    "which runs once before apply's first change. If the render needs what it generates, commit its "
    "output, or run it as a CI step before deployer (README, Hooks)"
)
PREAPPLY_WHY = (
    "helmfile's preapply runs before this release's install, upgrade or uninstall: imported as presync "
    "and preuninstall (deployer's preapply runs once per run, before its first change)"
)
# helmfile's hook template data -> the variable deployer gives a hook.
_VARIABLES = {
    ".Release.Name": "DEPLOYER_RELEASE",
    ".Release.Namespace": "DEPLOYER_NAMESPACE",
    ".Release.Chart": "DEPLOYER_CHART",
    ".Release.Version": "DEPLOYER_CHART_VERSION",
    ".Environment.Name": "DEPLOYER_ENVIRONMENT",
    ".Environment.KubeContext": "DEPLOYER_KUBE_CONTEXT",
    ".Release.KubeContext": "DEPLOYER_KUBE_CONTEXT",
    ".Event.Name": "DEPLOYER_EVENT",
}
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_ESCAPED = re.compile(r"\{\{`(.*?)`\}\}", re.S)  # {{`{{ .Release.Name }}`}} in a templated file

_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")

Note = Callable[[str], None]


def convert(
    declared: Any, *, top_level: bool, base_dir: Path, out_dir: Path, note: Note
) -> list[dict[str, Any]]:
    """deployer's hooks for helmfile's `declared` hooks, in their order; `note(why)` for each part that
    is not carried over as it was."""
    if not isinstance(declared, list):
        if declared not in (None, [], {}):
            note("not a list of hooks; not carried over: write deployer hooks: (README, Hooks)")
        return []
    out = []
    for i, hook in enumerate(declared):
        converted = _one(hook, i, top_level=top_level, base_dir=base_dir, out_dir=out_dir, note=note)
        if converted is not None:
            out.append(converted)
    return out


def _one(
    hook: Any, i: int, *, top_level: bool, base_dir: Path, out_dir: Path, note: Note
) -> dict[str, Any] | None:
    label = f"hook {i + 1}"
    if not isinstance(hook, dict):
        note(f"{label} is not a mapping; not carried over")
        return None
    if isinstance(hook.get("name"), str) and hook["name"]:
        label = f"hook {hook['name']}"
    events = _events(hook.get("events"), label, top_level=top_level, note=note)
    if not events:
        return None
    argv = _argv(hook, label, base_dir, out_dir, note)
    if argv is None:
        return None
    out: dict[str, Any] = {"events": events, "command": argv}
    if hook.get("showlogs") in (True, "true"):
        out["showLogs"] = True
    return out


def _events(raw: Any, label: str, *, top_level: bool, note: Note) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        note(f"{label} has no events; not carried over")
        return []
    out: list[str] = []
    for event in (str(e) for e in raw):
        if top_level and event not in ("prepare", "cleanup"):
            note(
                f"{label}: helmfile never runs a top-level hook on {event} (only prepare and cleanup); "
                f"not carried over: put it on the releases it is for"
            )
            continue
        if event == "prepare":
            note(f"{label}: prepare: {PREPARE_WHY}")
            chosen = ["preapply"]
        elif event == "preapply":
            note(f"{label}: preapply: {PREAPPLY_WHY}")
            chosen = ["presync", "preuninstall"]
        elif event in SAME:
            chosen = [event]
        else:
            note(
                f"{label}: deployer has no {event} event; not carried over for it: choose one of "
                "presync, postsync, preuninstall, postuninstall, preapply, cleanup (README, Hooks)"
            )
            chosen = []
        out += [e for e in chosen if e not in out]
    return out


def _argv(hook: dict[str, Any], label: str, base_dir: Path, out_dir: Path, note: Note) -> list[str] | None:
    kubectl = hook.get("kubectlApply")
    if isinstance(kubectl, dict) and not hook.get("command"):
        flag, target = ("-k", kubectl.get("kustomize")) if kubectl.get("kustomize") else ("-f", None)
        target = target or kubectl.get("filename")
        if not target:
            note(f"{label}: kubectlApply names no filename or kustomize; not carried over")
            return None
        path = _from_spec(str(target), base_dir, out_dir)
        return ["sh", "-c", f'kubectl --context "$DEPLOYER_KUBE_CONTEXT" apply {flag} {_quoted(path)}']
    command = hook.get("command")
    if not isinstance(command, str) or not command.strip():
        note(f"{label} has no command; not carried over")
        return None
    args = hook.get("args") or []
    if not isinstance(args, list):
        args = [args]
    argv = [_from_spec(command, base_dir, out_dir), *(_text(a) for a in args)]
    actions = [m.group(1) for a in argv for m in _ACTION.finditer(a)]
    unknown = sorted({a for a in actions if a not in _VARIABLES})
    if unknown:
        note(
            f"{label} uses template data deployer does not give a hook ({', '.join(unknown)}); not "
            "carried over: rewrite it with the DEPLOYER_* variables (README, Hooks)"
        )
        return None
    if not actions:
        return argv
    # helmfile fills the actions in; deployer gives the same facts as variables, which argv without a
    # shell cannot read: one `sh -c` script with each argument double-quoted.
    return ["sh", "-c", " ".join(_quoted(a) for a in argv)]


def _from_spec(path: str, base_dir: Path, out_dir: Path) -> str:
    """A path relative to the state file's directory, as deployer.yaml's directory reaches it."""
    if not path.startswith(("./", "../")) or base_dir.resolve() == out_dir.resolve():
        return path
    rel = os.path.relpath((base_dir / path).resolve(), out_dir.resolve())
    return rel if rel.startswith("../") else f"./{rel}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quoted(arg: str) -> str:
    """`arg` for sh, each known template action as its variable (`$DEPLOYER_RELEASE`; braced only
    where a name character follows, and then `$${...}` in deployer.yaml, which is interpolated)."""
    if _SAFE.fullmatch(arg):
        return arg
    out = []
    pos = 0
    for match in _ACTION.finditer(arg):
        out.append(_escape(arg[pos : match.start()]))
        name = _VARIABLES[match.group(1)]
        braced = re.match(r"[A-Za-z0-9_]", arg[match.end() : match.end() + 1])
        out.append("${" + name + "}" if braced else "$" + name)
        pos = match.end()
    out.append(_escape(arg[pos:]))
    return '"' + "".join(out) + '"'


def _escape(text: str) -> str:
    return re.sub(r'([\\$"`])', r"\\\1", text)


def block(text: str, line: int) -> Any:
    """The hooks declared under the `hooks:` key on `line` (1-based) of a templated file, as YAML
    reads them once helmfile's escaping ({{`...`}}) is undone; None when the block holds template
    actions of its own (a hook inside an if) or is not YAML."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None
    first = lines[line - 1]
    found = re.match(r"^(\s*(?:-\s+)*)hooks\s*:(.*)$", first)
    if not found:
        return None
    col = len(found.group(1))
    body = [" " * col + "hooks:" + found.group(2)]
    for following in lines[line:]:
        stripped = following.strip()
        indent = len(following) - len(following.lstrip())
        ends = indent < col or (indent == col and not stripped.startswith("- "))
        if stripped and not stripped.startswith(("#", "{{")) and ends:
            break
        body.append(following)
    while body and (not body[-1].strip() or body[-1].strip().startswith("{{")):
        body.pop()  # blank lines, and the end of a condition around the release, are not the block's
    if any(b.strip().startswith("{{") for b in body):
        return None  # a hook inside a template condition or loop: helmfile decides per environment
    joined = _ESCAPED.sub(lambda m: m.group(1), "\n".join(body))
    if any(m.group(1) not in _VARIABLES for m in _ACTION.finditer(joined)):
        return None
    try:
        data = yaml.safe_load(textwrap.dedent(joined))
    except yaml.YAMLError:
        return None
    return data.get("hooks") if isinstance(data, dict) else None


def from_stripped(
    stripped: Iterable[Stripped], main: Path, main_shown: str, bases: Iterable[Path], out_dir: Path
) -> tuple[dict[str | None, list[dict[str, Any]]], list[Finding]]:
    """The hooks of a templated state file, read from the user's files where the sandbox emptied
    them: by release name (None: the top-level hooks of the file and its bases, for `defaults`);
    and what was not carried over."""
    found: dict[str | None, list[dict[str, Any]]] = {}
    findings: list[Finding] = []
    mine = {main.resolve(), *(b.resolve() for b in bases)}
    texts: dict[Path, str] = {}
    for cut in stripped:
        if cut.file.resolve() not in mine:
            continue  # a nested state file's: imported (and reported) with that file (importer/layout.py)
        shown = main_shown if cut.file.resolve() == main.resolve() else display_path(cut.file)
        what = f"releases[{cut.release}].{cut.key}" if cut.release else cut.key
        if cut.key != "hooks":
            findings.append(Finding(shown, cut.line, what, WHY_DEPENDENCIES))
            continue
        if cut.file not in texts:
            texts[cut.file] = cut.file.read_text(encoding="utf-8")
        line = texts[cut.file].splitlines()[cut.line - 1] if cut.line else ""
        top = cut.release is None and not line.startswith((" ", "-"))
        declared = block(texts[cut.file], cut.line) if (top or cut.release) else None
        if declared is None:
            why = (
                "these hooks use template actions of their own (a condition, .Values) or sit in a "
                "release template; not carried over: write them as deployer hooks: on the releases "
                "they are for (README, Hooks)"
            )
            findings.append(Finding(shown, cut.line, what, why))
            continue

        def note(why: str, shown: str = shown, line: int = cut.line, what: str = what) -> None:
            findings.append(Finding(shown, line, what, why))

        converted = convert(declared, top_level=top, base_dir=cut.file.parent, out_dir=out_dir, note=note)
        found.setdefault(cut.release, []).extend(converted)
    return found, findings
