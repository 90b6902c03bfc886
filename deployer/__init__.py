"""deployer: declarative Helm deployments from one spec and per-environment overlays."""

__version__ = "0.1.0"
