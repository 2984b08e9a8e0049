"""The self-hosted auth framework, wire-compatible with better-auth."""
