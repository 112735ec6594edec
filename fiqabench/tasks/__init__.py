"""Task specs (YAML + Jinja templates + data), the registry, and one module per task kind."""
