"""The values helmfile computes for a release from templates (`.gotmpl` values files, which read
`.Values`, `.Environment.Values`, `env`, `requiredEnv`...), carried into the import per environment.

helmfile is the only faithful implementation of its templates, so it renders them: `helmfile -e ENV
write-values` (in the import's sandbox: no hook runs, PATH and KUBECONFIG reach nothing, the process
environment's variables are markers) writes, per release, the values it would pass to helm, merged.
Each such release's `values:` is then rewritten, environment by environment, as:

- its entries before the first `.gotmpl` one, unchanged (plain files stay files, named by path);
- the part of the rendered rest that every environment shares, one inline map (the same in each
  environment, so the converter keeps it in deployer.yaml);
- what this environment has on top, one inline map (the converter writes it as the overlay).

Merged back, the entries give helmfile's rendered values exactly (checked here; a release whose
values do not merge back keeps its `.gotmpl` entry, which the converter reports). A rendered value
that looks secret and does not come from the environment (a literal in a template or in environment
values) becomes `!var VAR`, a sensitive variable whose value is `${VAR}` (masked in every output),
with a report line at the line of the file that writes it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from deployer.errors import Mark
from deployer.importer import values as vals
from deployer.importer.conceal import looks_secret
from deployer.importer.parts import Locator, text_locator
from deployer.merge import merge_values
from deployer.yamlsource import display_path

# (environment, helmfile arguments after the global ones) -> the finished process
Run = Callable[[str, list[str]], "subprocess.CompletedProcess[str]"]
Key = tuple[str, str]  # (namespace, name)
Note = tuple[str, int, str, str]  # (file, line, what, why)
SECRET_MARKER = "zzdeployerhidden{}zz"
T = TypeVar("T")


@dataclass
class Rendered:
    """What the templates gave, and what the import must say about it."""

    notes: list[Note] = field(default_factory=list)
    hidden: dict[str, str] = field(default_factory=dict)  # marker -> VAR, for secret-looking literals
    # markers of values read from encrypted environment secrets (sops_standin): secrets, whatever
    # their key, so each value holding one becomes a sensitive variable
    sops: frozenset[str] = frozenset()


def templated(release: Mapping[str, Any]) -> bool:
    entries = release.get("values") or []
    return any(isinstance(e, str) and e.endswith(".gotmpl") for e in entries)


def _key(release: Mapping[str, Any]) -> Key:
    return str(release.get("namespace") or ""), str(release.get("name") or "")


def _candidates(data: Mapping[str, Any]) -> list[Key]:
    """The releases whose values helmfile must render: a `.gotmpl` values file, installed (helmfile
    writes no values for the others), and no `secrets:` (helmfile would decrypt them; the import never
    writes a decrypted value)."""
    out: list[Key] = []
    for release in data.get("releases") or []:
        if not isinstance(release, Mapping) or not templated(release) or release.get("secrets"):
            continue
        if release.get("installed", True) in (False, "false"):
            continue
        out.append(_key(release))
    return sorted(set(out))


def write_values(run: Run, env: str, data: Mapping[str, Any], out_dir: Path) -> tuple[dict[Key, Any], str]:
    """helmfile's rendered values of this environment's templated releases; and helmfile's message
    when it could not render some (the others are rendered one name at a time)."""
    keys = _candidates(data)
    if not keys:
        return {}, ""
    target = out_dir / env
    template = str(target) + "/{{ .Release.Namespace }}/{{ .Release.Name }}.yaml"
    names = sorted({name for _, name in keys})
    problem = ""
    for group in [names] if len(names) == 1 else [names, *([n] for n in names)]:
        args = ["--skip-deps", "--skip-refresh", "write-values", "--output-file-template", template]
        for name in group:
            args += ["--selector", f"name={name}"]
        proc = run(env, args)
        if proc.returncode == 0 and len(group) > 1:
            break
        if proc.returncode != 0:
            problem = problem or proc.stderr or proc.stdout or "no message"
    out: dict[Key, Any] = {}
    for namespace, name in keys:
        path = target / namespace / f"{name}.yaml" if namespace else target / f"{name}.yaml"
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        out[(namespace, name)] = loaded if isinstance(loaded, dict) else {}
    return out, problem


def each(work: Callable[[str], T], names: Sequence[str]) -> list[T]:
    """`work` on each environment side by side (each is a helmfile process), results in order; the
    first environment's error, in order, is raised."""
    if len(names) < 2:
        return [work(n) for n in names]
    with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 2, 4)) as pool:
        return list(pool.map(work, names))


def render(
    run: Run,
    explain: Callable[[str], tuple[Mark, str]],
    states: Mapping[str, dict[str, Any]],
    *,
    out_dir: Path,
    base_dir: Path,
    texts: Mapping[Path, str],
    locate: Callable[[str], tuple[str, int]],
    result: Rendered | None = None,
) -> Rendered:
    """Each templated release's values rendered by helmfile in every environment (`run`), carried
    into the states; `explain` turns helmfile's stderr into the file:line it names and its message,
    `locate(release name)` is where a release is written; `result`: added to (one numbering of the
    secret-looking values' markers for several states)."""
    result = Rendered() if result is None else result
    rendered: dict[str, dict[Key, Any]] = {}
    done = each(lambda env: write_values(run, env, states[env], out_dir), list(states))
    for env, (rendered[env], problem) in zip(states, done, strict=True):
        if problem:
            mark, message = explain(problem)
            result.notes.append(
                (
                    mark.file,
                    mark.line,
                    f"values of environment '{env}'",
                    f"helmfile could not render them ({message}); the .gotmpl values files are not "
                    "carried over: fix the error, then import again",
                )
            )
    carry(states, rendered, base_dir=base_dir, texts=texts, locate=locate, result=result)
    return result


def render_nested(
    run: Run,
    explain: Callable[[str], tuple[Mark, str]],
    subs: Mapping[Path, Mapping[str, dict[str, Any]]],
    *,
    out_dir: Path,
    texts: Mapping[Path, str],
    into: Rendered,
) -> None:
    """The nested state files' `.gotmpl` values (`subs`: each file's printed state per environment),
    rendered by helmfile from the top file (`run`: so with the values the top file hands them;
    helmfile's selectors reach nested releases), one `write-values` per environment for all of them,
    then carried into each file's states as the top file's are."""
    envs = sorted({env for per_env in subs.values() for env in per_env})

    def each_env(env: str) -> tuple[dict[Key, Any], str]:
        releases = [r for per_env in subs.values() for r in (per_env.get(env) or {}).get("releases") or []]
        return write_values(run, env, {"releases": releases}, out_dir)

    rendered: dict[str, dict[Key, Any]] = {}
    for env, (rendered[env], problem) in zip(envs, each(each_env, envs), strict=True):
        if problem:
            mark, message = explain(problem)
            why = f"helmfile could not render them ({message}); the .gotmpl values files are not carried over"
            into.notes.append((mark.file, mark.line, f"nested values of environment '{env}'", why))
    for sub, per_env in sorted(subs.items()):
        try:
            text = texts.get(sub) or sub.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        locate = text_locator(text, display_path(sub))
        first = next(iter(per_env.values()), {})
        releases = [r for r in first.get("releases") or [] if isinstance(r, Mapping)]

        def where(release: str, releases: list[Any] = releases, locate: Locator = locate) -> tuple[str, int]:
            index = next((i for i, r in enumerate(releases) if r.get("name") == release), 0)
            return locate(("releases", index), release)

        carry(per_env, rendered, base_dir=sub.parent, texts=texts, locate=where, result=into)


def carry(
    states: Mapping[str, dict[str, Any]],
    rendered: Mapping[str, Mapping[Key, Any]],
    *,
    base_dir: Path,
    texts: Mapping[Path, str],
    locate: Callable[[str], tuple[str, int]],
    result: Rendered,
) -> None:
    """Each templated release's `values:` rewritten in every state (see the module's docstring)."""
    names: dict[str, str] = {}  # dotted path -> VAR: one variable per path, whatever the environment
    keys = sorted({k for env in rendered.values() for k in env})
    for key in keys:
        rests: dict[str, tuple[dict[str, Any], list[Any], Any]] = {}
        for env, data in states.items():
            release = _release(data, key)
            if release is None or key not in rendered.get(env, {}):
                continue
            entries = list(release.get("values") or [])
            first = next(i for i, e in enumerate(entries) if isinstance(e, str) and e.endswith(".gotmpl"))
            kept = entries[:first]
            try:
                below = _merged(kept, base_dir)
            except vals.EntryProblem:
                kept, below = [], {}
            want = rendered[env][key]
            rest = vals.diff(want, below)
            if merge_values(below, rest) != want:
                continue  # the converter reports the .gotmpl entry it cannot carry
            sources = _sources(entries[first:], base_dir, texts)
            rest = _Hider(key, names, result, sources, locate).hide(rest, ())
            rests[env] = (release, kept, rest)
        if not rests:
            continue
        shared = _common([r for _, _, r in rests.values()])
        for release, kept, rest in rests.values():
            own = vals.diff(rest, shared)
            release["values"] = [*kept, *([shared] if shared else []), *([own] if own else [])]


def sensitive_vars(hidden: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Each secret-looking value's marker written as `!var VAR` (marker -> text), a sensitive variable
    of defaults.vars (VAR -> its declaration) whose value is `${VAR}` (a marker -> VAR, as the
    required variables' markers are)."""
    literal = {marker: f"!var {var}" for marker, var in hidden.items()}
    required: dict[str, str] = {}
    variables: dict[str, Any] = {}
    for i, var in enumerate(sorted(set(hidden.values()))):
        required[f"zzdeployervarvalue{i}zz"] = var
        variables[var] = {"value": f"zzdeployervarvalue{i}zz", "sensitive": True}
    return literal, required, variables


def _release(data: Mapping[str, Any], key: Key) -> dict[str, Any] | None:
    for release in data.get("releases") or []:
        if isinstance(release, dict) and _key(release) == key:
            return release
    return None


def _merged(entries: Sequence[Any], base_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            out = merge_values(out, dict(entry))
        elif "://" in str(entry) or "::" in str(entry):
            raise vals.EntryProblem("remote")
        else:
            data = vals.read_values_file((base_dir / str(entry)).resolve())
            if vals.is_sops(data):
                raise vals.EntryProblem("encrypted")
            out = merge_values(out, data)
    return out


def _common(maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What every map has at the same path with the same value (maps compared key by key)."""
    first, *others = maps
    out: dict[str, Any] = {}
    for key, value in first.items():
        theirs = [o.get(key) for o in others if key in o]
        if len(theirs) != len(others):
            continue
        if isinstance(value, Mapping) and all(isinstance(t, Mapping) for t in theirs):
            sub = _common([value, *(t for t in theirs if isinstance(t, Mapping))])
            if sub:
                out[key] = sub
        elif all(t == value and type(t) is type(value) for t in theirs):
            out[key] = copy.deepcopy(value)
    return out


def _sources(entries: Sequence[Any], base_dir: Path, texts: Mapping[Path, str]) -> list[tuple[Path, str]]:
    """The text of each file the rendered entries read, to find where a value is written: the
    `.gotmpl` values files first, then every environment values and other file the import read."""
    named = [(base_dir / str(e)).resolve() for e in entries if isinstance(e, str)]
    first = [(p, texts[p]) for p in named if p in texts]
    return first + [(p, t) for p, t in sorted(texts.items()) if p not in named]


@dataclass
class _Hider:
    """Replaces the secret-looking values of one release's rendered values by markers."""

    key: Key
    names: dict[str, str]  # dotted path -> VAR, shared by the environments
    result: Rendered
    sources: Sequence[tuple[Path, str]]
    locate: Callable[[str], tuple[str, int]]

    def hide(self, node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self.hide(v, (*path, str(i))) for i, v in enumerate(node)]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for k, value in node.items():
            here = (*path, str(k))
            secret = looks_secret(str(k), value) or derived(value) or self._from_sops(value)
            out[k] = self._marker(here, str(k), value) if secret else self.hide(value, here)
        return out

    def _from_sops(self, value: Any) -> bool:
        return isinstance(value, str) and any(m in value.lower() for m in self.result.sops)

    def _marker(self, here: tuple[str, ...], key: str, value: Any) -> str:
        dotted = ".".join(here)
        var = self.names.get(dotted)
        if var is None:
            var = _variable([self.key[1], *here], set(self.names.values()))
            self.names[dotted] = var
            file, line = _where(key, str(value), self.sources) or self.locate(self.key[1])
            written = f"!var {var}, a sensitive variable (defaults.vars) whose value is ${{{var}}}"
            why = (
                f"is read from encrypted environment secrets (sops), which the import never decrypts: "
                f"written as {written}; set {var} where deployer runs (a CI secret), or move the value "
                "to a sops-encrypted values file"
                if self._from_sops(value)
                else f"is computed by the template from a variable of the environment (b64enc...), which "
                f"deployer does not compute: written as {written}; set {var} to the computed value where "
                "deployer runs"
                if derived(value)
                else f"looks like a secret, written in clear in the files helmfile rendered: written as "
                f"{written}, never its value; set {var} where deployer runs (a CI secret), or read it in "
                'the file with requiredEnv "VAR" (imported as ${VAR}), or move it to a sops-encrypted '
                "values file"
            )
            self.result.notes.append((file, line, f"releases[{self.key[1]}].values: {dotted}", why))
        marker = next((m for m, v in self.result.hidden.items() if v == var), None)
        if marker is None:
            marker = SECRET_MARKER.format(len(self.result.hidden))
            self.result.hidden[marker] = var
        return marker


def derived(value: Any) -> bool:
    """A value the templates computed from a variable's marker, which would be wrong once the marker
    becomes ${VAR}: base64 of it (b64enc) is recognised; other functions (sha256sum...) are not."""
    if not isinstance(value, str) or len(value) < 16:
        return False
    try:
        decoded = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return False
    return b"zzdeployer" in decoded.lower()


def _variable(parts: Sequence[str], taken: set[str]) -> str:
    base = re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_") or "SECRET"
    if base[0].isdigit():
        base = f"V_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _where(key: str, value: str, sources: Sequence[tuple[Path, str]]) -> tuple[str, int] | None:
    """The first line of the files that writes `value` in clear; else the first that sets `key`."""
    for needle in (re.escape(value), rf"(?:^|[\s{{,-]){re.escape(key)}\s*:"):
        pattern = re.compile(needle)
        for path, text in sources:
            for i, line in enumerate(text.splitlines()):
                if pattern.search(line):
                    return display_path(path), i + 1
    return None
