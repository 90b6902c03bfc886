"""`deployer import helmfile`: turn a helmfile.yaml into deployer.yaml, overlays and a report.

- `source`: reads the state file, directly or resolved per environment by the real helmfile;
- `convert`: pure, from the per-environment states to the files to write and the findings;
- `findings`: what could not be carried over, with file:line, as text and Markdown.
"""
