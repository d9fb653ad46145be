"""Optional integrations with other packages, each installed with its own extra."""
