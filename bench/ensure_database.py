"""Create the PostgreSQL database named by DATABASE_URL when it does not exist yet (used by
`make serve` and `make bench`; the server itself is never reconfigured)."""

import os
import sys
import urllib.parse


def ensure_database(url: str) -> bool:
    """True when the database had to be created."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must be a postgres:// URL")
    if ensure_database(url):
        print(f"created database {urllib.parse.urlsplit(url).path.lstrip('/')}")
