"""The demo data `manage.py load_demo` writes (content in data.json, builders in builders.py)."""
