"""A nested helmfile's `selectors:`, applied at import as helmfile applies them: only the releases of
the nested state file that match are imported.

helmfile's semantics (pkg/state/release_filters.go, pkg/app/app.go's visitStates):
- a selector is `key=value` or `key!=value` terms joined by commas, all of which must hold (AND); a
  release matches the entry when any of its selectors does (OR); no selectors (or `selectors: []`)
  select every release;
- `key=value` holds when the release has the label with that value; `key!=value` when it has not
  (a release without the label passes);
- a release's labels are its `labels:` over the state's `commonLabels`, plus `name`, `namespace`
  and `chart` (the chart's last path element), which helmfile adds to every release;
- an entry without `selectors:` (or with `selectorsInherited: true`) takes its parent's selectors:
  the command line's for the top file's entries (none at import), else those its parent was read
  with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.importer.findings import Finding, Kept
from deployer.importer.parts import Locator
from deployer.importer.source import Source, State
from deployer.yamlsource import PathKey

_NEGATIVE = re.compile(r"^([a-zA-Z0-9_./+-]+)!=([a-zA-Z0-9_./+-]+)$")
_POSITIVE = re.compile(r"^([a-zA-Z0-9_./+-]+)=([a-zA-Z0-9_./+-]+)$")
_DIR = "dir"  # helmfile's path-based key (the defining file's directory): not applied here


@dataclass(frozen=True)
class Filter:
    positive: tuple[tuple[str, str], ...]
    negative: tuple[tuple[str, str], ...]

    def match(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.positive) and not any(
            labels.get(k) == v for k, v in self.negative
        )


class Unusable(ValueError):
    """A selector helmfile would refuse, or one the import cannot apply."""


def parse(text: str) -> Filter:
    positive: list[tuple[str, str]] = []
    negative: list[tuple[str, str]] = []
    for term in text.split(","):
        found = _NEGATIVE.match(term)
        into = negative
        if not found:
            found, into = _POSITIVE.match(term), positive
        if not found:
            raise Unusable(
                f"'{text}' is not key=value or key!=value terms joined by commas (helmfile refuses it)"
            )
        if found.group(1) == _DIR:
            raise Unusable(f"'{text}' selects by directory (dir=), which the import does not apply")
        into.append((found.group(1), found.group(2)))
    return Filter(tuple(positive), tuple(negative))


def effective(entry: Any, inherited: Sequence[str] | None) -> Sequence[str] | None:
    """The selectors a nested state file is read with: its entry's own, else its parent's."""
    if not isinstance(entry, Mapping) or entry.get("selectorsInherited"):
        return inherited
    own = entry.get("selectors")
    if own is None:
        return inherited
    return [str(s) for s in own] if isinstance(own, list) else [str(own)]


def entry(source: Source, text: str, item: Any) -> Any:
    """A helmfiles: entry as helmfile read it: a templated file's from the state helmfile printed
    (its text is not YAML), else as written."""
    if isinstance(item, Mapping) or not source.templated:
        return item
    for state in source.states.values():
        for printed in state.data.get("helmfiles") or []:
            if isinstance(printed, Mapping) and printed.get("path") == text:
                return printed
    return item


def labels_of(release: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in {**common, **(release.get("labels") or {})}.items()}
    labels["name"] = str(release.get("name", ""))
    labels["namespace"] = str(release.get("namespace") or "")
    labels["chart"] = str(release.get("chart") or "").split("/")[-1]
    return labels


def select(source: Source, selectors: Sequence[str] | None, at: tuple[str, int], what: str) -> list[Finding]:
    """Keep only the releases of each of the source's states that the selectors select; the report's
    lines (`at`, `what`: the helmfiles: entry): selectors that cannot be applied (every release is then
    kept), the releases left out, and a kept release's `needs:` of one left out."""
    if not selectors:
        return []
    try:
        filters = [parse(s) for s in selectors]
    except Unusable as exc:
        why = (
            f"selector {exc}: every release of the file is imported; select with -l when you run "
            "deployer, or write the selector as key=value terms"
        )
        return [Finding(*at, what, why)]
    findings: list[Finding] = []
    left_out: set[str] = set()
    kept: dict[int, list[int]] = {}  # the states of a file with bases share one data
    for state in source.states.values():
        releases = state.data.get("releases")
        if not isinstance(releases, list):
            continue
        if id(state.data) not in kept:
            common = state.data.get("commonLabels")
            common = common if isinstance(common, Mapping) else {}
            chosen = [
                i
                for i, r in enumerate(releases)
                if isinstance(r, Mapping) and any(f.match(labels_of(r, common)) for f in filters)
            ]
            kept[id(state.data)] = chosen
            gone = [r for i, r in enumerate(releases) if i not in chosen and isinstance(r, Mapping)]
            left_out |= {str(r.get("name", "")) for r in gone}
            names = {str(r.get("name", "")) for r in gone} | {
                f"{r.get('namespace') or ''}/{r.get('name', '')}" for r in gone
            }
            state.data["releases"] = [releases[i] for i in chosen]
            state.locate = _shifted(state.locate, chosen)
            findings += _without_needs(state, names)
        else:
            state.locate = _shifted(state.locate, kept[id(state.data)])
    if left_out:
        shown = " or ".join(selectors)
        why = Kept(
            f"the selectors ({shown}) do not select {', '.join(sorted(left_out))}, so helmfile never "
            "deploys them from this entry: not imported (import the file on its own if they are wanted)"
        )
        findings.append(Finding(*at, what, why))
    return findings


def _without_needs(state: State, gone: set[str]) -> list[Finding]:
    """A selected release's `needs:` of a release the selectors leave out: removed (deployer refuses a
    need that is not in the spec), with a line each."""
    out = []
    for i, release in enumerate(state.data.get("releases") or []):
        needs = release.get("needs") if isinstance(release, dict) else None
        if not isinstance(needs, list):
            continue
        for need in [n for n in needs if str(n) in gone]:
            needs.remove(need)
            name = str(release.get("name", ""))
            out.append(
                Finding(
                    *state.locate(("releases", i, "needs"), name),
                    f"releases[{name}].needs",
                    f"'{need}' is left out by the selectors of this file's helmfiles: entry, so it is no "
                    "longer in needs: (helmfile deploys this release without it); add it back once that "
                    "release is in the spec",
                )
            )
    return out


def _shifted(locate: Locator, kept: Sequence[int]) -> Locator:
    """The locator of the file as written: release i of the selected ones is release kept[i] there."""

    def shifted(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        index = key_path[1] if len(key_path) >= 2 and key_path[0] == "releases" else None
        if isinstance(index, int) and index < len(kept):
            key_path = ("releases", kept[index], *key_path[2:])
        return locate(key_path, release)

    return shifted
