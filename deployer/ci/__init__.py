"""Glue for CI systems (the GitHub Action in action.yml, the GitLab template in ci/): run as
`python -m deployer.ci.<module>`. They drive the `deployer` command as a user's job would, through
a subprocess, and import nothing else of deployer, so they stay outside the CLI's layering."""
