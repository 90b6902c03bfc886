from __future__ import annotations

import pytest

from deployer.errors import Mark, SpecError
from deployer.interpolation import Interpolator
from deployer.yamlsource import load_text

AT = Mark("deployer.yaml", 3, 5)


def sub(text: str, **env: str) -> str:
    return Interpolator(env)(text, AT)


def test_variables_defaults_and_literals() -> None:
    assert sub("${A}", A="x") == "x"
    assert sub("pre-${A}-post", A="x") == "pre-x-post"
    assert sub("${A:-fallback}") == "fallback"
    assert sub("${A:-fallback}", A="") == "fallback"
    assert sub("${A:-fallback}", A="set") == "set"
    assert sub("$${A} costs $5", A="x") == "${A} costs $5"


def test_required_variable_reports_its_message_and_position() -> None:
    with pytest.raises(SpecError) as info:
        sub("${TOKEN:?set TOKEN to the deploy token}")
    assert info.value.render() == (
        "error: deployer.yaml:3:5: TOKEN is not set: set TOKEN to the deploy token\n"
        "  hint: export TOKEN=... before running deployer"
    )


def test_plain_scalars_get_their_type_after_substitution_and_quoted_stay_strings() -> None:
    doc = load_text(
        "a: ${N}\nb: '${N}'\nc: ${FLAG}\n", "f.yaml", interpolate=Interpolator({"N": "5", "FLAG": "yes"})
    )
    assert doc.data == {"a": 5, "b": "5", "c": True}  # YAML 1.1, like Helm: yes is a boolean


def test_values_files_are_not_interpolated() -> None:
    doc = load_text("snippet: ${NOT_A_VAR}\n", "values.yaml")
    assert doc.data == {"snippet": "${NOT_A_VAR}"}
