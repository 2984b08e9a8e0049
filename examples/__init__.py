"""Bastion's example programs (a package, so `bastion serve examples.sessions:app` works from
the repository's root)."""
