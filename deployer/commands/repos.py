from __future__ import annotations

import argparse
import asyncio

from deployer.commands.common import helm_and_charts, progress, project


def repos(args: argparse.Namespace) -> int:
    proj = project(args)
    log = progress()
    _helm, charts = helm_and_charts(args, proj, log)

    async def run() -> list[str]:
        return list(await asyncio.gather(*(charts.repos.ensure(r) for r in proj.spec.repositories)))

    results = asyncio.run(run())
    for repo, result in zip(proj.spec.repositories, results, strict=True):
        print(f"{repo.name}\t{repo.url}\t{result}")
    return 0
