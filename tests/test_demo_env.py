"""After tools/demo: the line it prints puts the demo's deployer and helm (and sandbox) in a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testing.tools import helm_binary

ROOT = Path(__file__).resolve().parents[1]


def test_the_printed_line_puts_the_repos_deployer_and_the_demos_helm_first_on_path() -> None:
    helm = helm_binary(3)
    script = 'eval "$(tools/demo --env)"; echo "${PATH%%:*}"; command -v helm; echo "$DEPLOYER_HELM"'
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, check=True, capture_output=True, text=True)

    assert done.stdout.splitlines() == [str(ROOT / ".venv" / "bin"), str(helm), str(helm)]


def test_the_demo_ends_with_that_line_and_offers_a_shell() -> None:
    demo = (ROOT / "tools" / "demo").read_text()
    tail = demo.split("run status -e dev", 1)[1]
    assert 'echo "  $(env_line "$KUBECONFIG")"' in tail
    assert 'exec "${SHELL:-bash}"' in tail
    demo_cmd = [str(ROOT / "tools" / "demo"), "--nope"]
    usage = subprocess.run(demo_cmd, check=False, capture_output=True, text=True)
    assert (usage.returncode, usage.stderr) == (2, "usage: tools/demo [--shell|--env]\n")
