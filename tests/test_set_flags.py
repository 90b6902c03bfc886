"""`--set`, `--set-string`, `--set-file`, `--set-json` and `--set-literal` read as helm reads them
(pkg/strvals), checked against the parser's own cases and against the real helm 3 and helm 4."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.errors import UsageError
from deployer.merge import Layer, Origin, merge_layers
from deployer.render import dump_values
from deployer.setvalues import FLAG_ORDER, parse, parse_flags, stack, typed_value
from testing.cli import run


def files(name: str) -> str:
    return {"motd.txt": "hello,\nworld=1\n"}.get(name) or _missing(name)


def _missing(name: str) -> str:
    raise FileNotFoundError(2, "No such file or directory", name)


def values_of(*flags: str, lower: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values a command line (flag, text, flag, text, ...) gives over `lower`."""
    given: dict[str, list[str]] = {}
    for flag, text in zip(flags[::2], flags[1::2], strict=True):
        given.setdefault(flag, []).append(text)
    below = [Layer(values=lower, origins={})] if lower else []
    return merge_layers([*below, *stack(below, parse_flags(given, files))]).values


# --- the parser: helm's own cases (pkg/strvals/parser_test.go) and the issue's ----------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name1=null,f=false,t=true", {"name1": None, "f": False, "t": True}),
        ("name1=value1,name2=value2,", {"name1": "value1", "name2": "value2"}),
        ("name1=,name2=value2", {"name1": "", "name2": "value2"}),
        ("leading_zeros=00009", {"leading_zeros": "00009"}),
        ("zero_int=0,long_int=1234567890", {"zero_int": 0, "long_int": 1234567890}),
        (r"name1=one\,two,name2=three\=four", {"name1": "one,two", "name2": "three=four"}),
        ("name1=one two three", {"name1": "one two three"}),
        (
            "outer.inner1=value,outer.middle.inner=value",
            {"outer": {"inner1": "value", "middle": {"inner": "value"}}},
        ),
        ("name1.name2=", {"name1": {"name2": ""}}),
        ("name1={value1,value2},name2={1021,902}", {"name1": ["value1", "value2"], "name2": [1021, 902]}),
        ("list[0].foo=bar,list[0].hello=world", {"list": [{"foo": "bar", "hello": "world"}]}),
        ("list[0]=foo,list[3]=bar", {"list": ["foo", None, None, "bar"]}),
        ("noval[0]=", {"noval": [""]}),
        ("nested[1][1]=1", {"nested": [None, [None, 1]]}),
        (
            "name1.name2[1].foo=bar,name1.name2[0].foo=bar",
            {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}},
        ),
        # The cases.
        ("extra=1.10", {"extra": "1.10"}),
        ("port=8081,extra2=y", {"port": 8081, "extra2": "y"}),
        ("list[0]=x", {"list": ["x"]}),
        ("a.b[1].c=d,m[0][1]=z", {"a": {"b": [None, {"c": "d"}]}, "m": [[None, "z"]]}),
        (r"name=a\,b,dotted\.key=1", {"name": "a,b", "dotted.key": 1}),
        (
            "x=0755,y=1e3,z=0x10,s=-1,p=+5,big=12345678901234567890",
            {"x": "0755", "y": "1e3", "z": "0x10", "s": -1, "p": 5, "big": "12345678901234567890"},
        ),
        ("t=TRUE,f=False,n=NULL", {"t": True, "f": False, "n": None}),
        ("trailing=back\\", {"trailing": "back"}),
        ("e={}", {"e": [""]}),  # helm: an empty list literal is one empty string
    ],
)
def test_set_reads_as_helm_reads_it(text: str, expected: dict[str, Any]) -> None:
    assert values_of("--set", text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[("1.10", "1.10"), ("0755", "0755"), ("0", 0), ("-0", 0), ("-01", -1), ("1e3", "1e3"), ("", "")],
        *[("9223372036854775807", 2**63 - 1), ("9223372036854775808", "9223372036854775808")],
        *[("True", True), ("nULL", None), ("yes", "yes"), ("٣", "٣"), ("1_000", "1_000")],
    ],
)
def test_only_integer_literals_and_true_false_null_are_typed(text: str, value: Any) -> None:
    assert typed_value(text) == value
    assert type(typed_value(text)) is type(value)


def test_set_string_file_json_and_literal() -> None:
    assert values_of("--set-string", "n=5,b=true,l={1,x}") == {"n": "5", "b": "true", "l": ["1", "x"]}
    assert values_of("--set-file", "motd=motd.txt,empty=") == {"motd": "hello,\nworld=1\n", "empty": ""}
    assert values_of("--set-json", 'a={"b":[1,"2"]},n=,s= "x,y" ,t=true') == {
        "a": {"b": [1, "2"]},
        "n": None,
        "s": "x,y",
        "t": True,
    }
    assert values_of("--set-json", '{"a": {"b": 1}}') == {"a": {"b": 1}}
    assert values_of("--set-literal", r"a.b=x,y\,z=1") == {"a": {"b": r"x,y\,z=1"}}


def test_flags_apply_in_helms_fixed_order_whatever_the_command_line_order() -> None:
    assert FLAG_ORDER == ("--set-json", "--set", "--set-string", "--set-file", "--set-literal")
    got = values_of(
        "--set-literal", "k=literal", "--set-string", "k=string", "--set", "k=1", "--set-json", "k=2"
    )
    assert got == {"k": "literal"}
    assert values_of("--set-string", "k=string", "--set", "k=1") == {"k": "string"}


def test_an_index_changes_the_list_below_and_keeps_its_other_items() -> None:
    lower = {"servers": [{"name": "a", "port": 1}, {"name": "b", "port": 2}], "tags": ["x", "y", "z"]}
    got = values_of("--set", "servers[1].port=9,tags[1]=Y,tags[4]=new", lower=lower)
    assert got["servers"] == [{"name": "a", "port": 1}, {"name": "b", "port": 9}]
    assert got["tags"] == ["x", "Y", "z", None, "new"]
    # Across flags too: helm parses every flag into the same map.
    assert values_of("--set", "l[0]=a", "--set", "l[2]=c") == {"l": ["a", None, "c"]}


def test_a_value_of_another_type_is_replaced_as_the_merge_does() -> None:
    # helm fails here with a Go panic message ("interface conversion"); deployer's layers replace.
    assert values_of("--set", "a=1,a.b=2") == {"a": {"b": 2}}
    assert values_of("--set", "m[0]=x", lower={"m": {"k": "v"}}) == {"m": ["x"]}


def test_a_json_object_at_a_key_replaces_the_map_below() -> None:
    lower = {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2"}}
    got = values_of("--set-json", 'outer.inner1={"a":"1"},outer.inner3=[1,2]', lower=lower)
    assert got == {"outer": {"inner1": {"a": "1"}, "inner2": "value2", "inner3": [1, 2]}}


def test_each_assignment_is_the_origin_of_the_paths_it_sets() -> None:
    layers = stack([], parse("--set", r"port=8081,name=a\,b,list[0]=a,list[2]=c"))
    merged = merge_layers(layers)
    assert merged.origins[("port",)] == Origin("--set port=8081")
    assert merged.origins[("name",)] == Origin(r"--set name=a\,b")
    # --explain shows a list as one leaf: the origin is on the list's own path.
    assert merged.origins[("list",)] == Origin("--set list[2]=c")
    assert [(o.origin, o.value) for o in merged.overridden[("list",)]] == [(Origin("--set list[0]=a"), ["a"])]


def test_a_sensitive_path_is_named_without_its_value() -> None:
    layers = stack([], parse("--set-json", 'db={"password":"hunter2"},port=1'), sensitive=["db.password"])
    origins = merge_layers(layers).origins
    assert origins[("db", "password")] == Origin("--set-json db=<sensitive>")
    assert origins[("port",)] == Origin("--set-json port=1")


@pytest.mark.parametrize(
    ("flag", "text", "reason"),
    [
        ("--set", "name1,name2=value2", 'key "name1" has no value (cannot end with ,)'),
        ("--set", "name1=value1,,,,name2=value2,", 'key "" has no value (cannot end with ,)'),
        ("--set", "name1.name2", 'key "name1.name2" has no value'),
        ("--set", "noval[0]", 'key "noval[0]" has no value'),
        ("--set", "=x", 'empty key in "=x"'),
        ("--set", "a..b=1", 'empty key in "a..b=1"'),
        ("--set", "name1={1021,902", "list must terminate with '}'"),
        ("--set", "list[0].foo=bar,list[-30].hello=world", "negative -30 index not allowed"),
        ("--set", "a[65537]=x", "index of 65537 is greater than maximum supported index of 65536"),
        ("--set", "a[x]=1", 'error parsing index: strconv.Atoi: parsing "x": invalid syntax'),
        ("--set", "a[1", "error parsing index: EOF"),
        ("--set", "illegal[0]name.foo=bar", 'unexpected data at end of array index: "name"'),
        (
            "--set",
            ".".join(f"n{i}" for i in range(32)) + "=v",
            "value name nested level is greater than maximum supported nested level of 30",
        ),
        (
            "--set-json",
            "a={1}",
            "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 4 (char 3)",
        ),
        ("--set-json", "a=NaN", "invalid JSON: NaN is not JSON"),
        ("--set-file", "f=nope.txt", "cannot read 'nope.txt': No such file or directory"),
    ],
)
def test_bad_syntax_is_a_usage_error_naming_the_flag_and_its_text(flag: str, text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(flag, text, files)
    assert caught.value.message == f"invalid {flag} '{text}': {reason}"
    assert caught.value.hint


def test_values_files_quote_every_string_helm_would_read_as_something_else() -> None:
    text = dump_values(
        {"y": "y", "n": "N", "e": "1e3", "o": "08", "x": "0o17", "d": "2024-1-2 3:4:5", "s": "yes2"}
    )
    assert yaml.safe_load(text) == {
        "y": "y",
        "n": "N",
        "e": "1e3",
        "o": "08",
        "x": "0o17",
        "d": "2024-1-2 3:4:5",
        "s": "yes2",
    }
    assert "'y': 'y'" in text and "'n': 'N'" in text and "e: '1e3'" in text and "o: '08'" in text
    assert "s: yes2" in text  # nothing else gets quotes


# --- parity with the real helm ------------------------------------------------------------------

PROJECT = {
    "deployer.yaml": """\
        environments: {dev: {}}
        releases:
          - name: rel
            chart: ./chart
            namespace: default
            sensitive: [db.password]
            values: [values/rel.yaml]
        """,
    "values/rel.yaml": "servers: [{name: a, port: 1}, {name: b, port: 2}]\n",
    "more.yaml": "tags: [x, y, w]\n",
    "snippet.txt": "line one, with a comma\nkey: value\n",
    "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "chart/values.yaml": "keep: 1\ny: chart default\nlist: [d0, d1]\n",
    "chart/templates/cm.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: values}
        data:
          values: {{ .Values | toJson | quote }}
        """,
}

# Each flag set, and what helm gives for the keys it sets (the parity test compares everything).
PARITY = [
    (["--set", "extra=1.10"], {"extra": "1.10"}),
    (["--set", "port=8081,extra2=y"], {"port": 8081, "extra2": "y"}),
    (["--set", "list[0]=x"], {"list": ["x"]}),  # replaces the chart's default list
    (["--set", "list[0]=a,list[2]=c"], {"list": ["a", None, "c"]}),
    (["--set", "a.b[1].c=d"], {"a": {"b": [None, {"c": "d"}]}}),
    (["--set", r"name=a\,b"], {"name": "a,b"}),
    (["--set", "x=0755"], {"x": "0755"}),
    (["--set", "x=true,y=null,z="], {"x": True, "z": ""}),  # y=null removes the chart default
    (["--set", "big=12345678901234567890"], {"big": "12345678901234567890"}),
    (["--set", "s=-1"], {"s": -1}),
    (["--set-string", "n=5"], {"n": "5"}),
    (["--set-file", "f=snippet.txt"], {"f": "line one, with a comma\nkey: value\n"}),
    (["--set", "l={a,1},e=1e3,o=08,no=n"], {"l": ["a", 1], "e": "1e3", "o": "08", "no": "n"}),
    (["--set", "k=1", "--set-string", "k=2"], {"k": "2"}),
    (["--set", "servers[1].port=9"], {"servers": [{"name": "a", "port": 1}, {"name": "b", "port": 9}]}),
    (["--values", "more.yaml", "--set", "tags[1]=Y"], {"tags": ["x", "Y", "w"]}),
    (["--set-json", 'j={"a":[1,"2"]},k=', "--set-literal", r"lit=a,b\c"], {"j": {"a": [1, "2"]}, "k": None}),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("set-flags")
    for name, body in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(body))
    return root


def configmap_values(manifest: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(manifest) if d and d.get("kind") == "ConfigMap"]
    assert len(docs) == 1, manifest
    values: dict[str, Any] = json.loads(docs[0]["data"]["values"])
    return values


def helm_values(helm: Path, project: Path, flags: list[str]) -> dict[str, Any]:
    """What the real helm gives: the release's values file as -f (helm's own lowest user layer),
    then the flags."""
    home = project / ".helm-home"
    env = {**os.environ, **{f"HELM_{d}_HOME": str(home / d) for d in ("CACHE", "CONFIG", "DATA")}}
    argv = [str(helm), "template", "rel", "./chart", "-f", "values/rel.yaml", *flags]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return configmap_values(done.stdout)


@pytest.mark.helm
@pytest.mark.parametrize(("flags", "expected"), PARITY, ids=[" ".join(f) for f, _ in PARITY])
def test_deployer_gives_the_values_helm_gives(
    helm: Path, project: Path, flags: list[str], expected: dict[str, Any]
) -> None:
    cache = project / ".deployer-cache"
    result = run(
        ["template", "-e", "dev", *flags],
        project,
        {"DEPLOYER_HELM": str(helm), "DEPLOYER_CACHE_DIR": str(cache)},
    )
    assert result.code == 0, result.err
    ours = configmap_values(result.out)
    theirs = helm_values(helm, project, flags)
    assert ours == theirs
    assert {k: theirs.get(k) for k in expected} == expected


# --- --explain and errors through the CLI -------------------------------------------------------


def test_explain_names_the_flag_and_the_one_assignment(project: Path) -> None:
    argv = [
        "values",
        "-e",
        "dev",
        "rel",
        "--set",
        "port=8081,servers[1].port=9,db.password=hunter2",
        "--explain",
    ]
    result = run(argv, project)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "db.password = <sensitive>    # --set db.password=<sensitive>",
        "port = 8081    # --set port=8081",
        'servers = [{"name": "a", "port": 1}, {"name": "b", "port": 9}]    # --set servers[1].port=9',
        '    overrides [{"name": "a", "port": 1}, {"name": "b", "port": 2}]    # values/rel.yaml:1:10',
    ]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--set", "port=8081,,x=1"],
            "error: invalid --set 'port=8081,,x=1': key \"\" has no value (cannot end with ,)\n"
            "  hint: write --set key=value[,key=value]: a.b=x nests, a[0]=x sets a list item, a={x,y} is a "
            "list; escape , . = [ with a backslash\n",
        ),
        (
            ["--set-file", "motd=missing.txt"],
            "error: invalid --set-file 'motd=missing.txt': cannot read 'missing.txt': "
            "No such file or directory\n"
            "  hint: the path is relative to the current directory\n",
        ),
        (
            ["--set-json", "a=[1,"],
            "error: invalid --set-json 'a=[1,': invalid JSON: Expecting value: line 1 column 6 (char 5)\n"
            "  hint: write --set-json key=JSON[,key=JSON], or one JSON object: --set-json '{\"key\": 1}'\n",
        ),
    ],
)
def test_a_bad_flag_exits_1_with_the_message_and_no_traceback(
    project: Path, flags: list[str], expected: str
) -> None:
    result = run(["values", "-e", "dev", "rel", *flags], project)
    assert (result.code, result.out, result.err) == (1, "", expected)
    assert "Traceback" not in result.err
