from __future__ import annotations

import argparse

from deployer.capabilities import for_environment
from deployer.commands.common import project
from deployer.desired import resolve


def validate(args: argparse.Namespace) -> int:
    proj = project(args)
    envs = [args.environment] if args.environment else proj.environment_names
    count = 0
    for env in envs:
        count = len(resolve(proj, env, decrypt=not args.no_decrypt))
        for_environment(proj, env)  # environments/<env>/capabilities.yaml, when there is one
    names = ", ".join(envs) if envs else "no environments"
    files = f" in {1 + len(proj.included)} files" if proj.included else ""
    print(f"{proj.doc.file}: ok ({count} releases{files}; checked {names})")
    return 0
