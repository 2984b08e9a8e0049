"""Identity providers for the auth pipeline."""
