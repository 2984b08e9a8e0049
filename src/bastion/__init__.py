"""Bastion: self-hosted authentication and access control for Python AI-agent servers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
