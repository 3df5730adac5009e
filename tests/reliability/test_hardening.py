"""Hardened deployment: security headers, CSP without inline code, check --deploy, secrets from files."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(django_settings.BASE_DIR)
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


def run_manage(*args, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_check_deploy_is_clean_with_the_documented_production_env():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_extra=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_development_secret_key():
    result = run_manage("check", env_extra={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""})
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(PRODUCTION_ENV["DJANGO_SECRET_KEY"] + "\n")
    url_file = tmp_path / "database_url"
    url_file.write_text(f"sqlite:///{tmp_path / 'from-file.sqlite3'}\n")
    env = {
        **PRODUCTION_ENV,
        "DJANGO_SECRET_KEY": "",
        "DJANGO_SECRET_KEY_FILE": str(secret_file),
        "DATABASE_URL_FILE": str(url_file),
    }
    result = run_manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.SECRET_KEY == open(%r).read().strip(), s.DATABASES['default']['NAME'])"
        % str(secret_file),
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(tmp_path / "from-file.sqlite3")]


@pytest.mark.django_db
def test_every_response_carries_the_security_headers(client):
    for path in ("/healthz", "/api/v1/experiments", "/accounts/login/", "/api/docs/"):
        response = client.get(path)
        csp = response["Content-Security-Policy"]
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response.get("X-Frame-Options") == "DENY" or path == "/healthz", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", path  # no inline scripts, no eval, no CDN


@pytest.mark.django_db
def test_csp_relaxes_inline_styles_only_for_swagger_ui(client):
    assert "style-src 'self' 'unsafe-inline'" in client.get("/api/docs/")["Content-Security-Policy"]
    assert "style-src 'self';" in client.get("/api/v1/experiments")["Content-Security-Policy"]


@pytest.mark.django_db
def test_swagger_ui_loads_its_script_from_a_url_not_inline(client):
    page = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script> in Swagger UI"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_hsts_and_secure_cookies_in_production(settings):
    result = run_manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_INCLUDE_SUBDOMAINS)",
        env_extra=PRODUCTION_ENV,
    )
    assert result.stdout.split() == ["31536000", "True", "True", "True", "True"], result.stderr


@pytest.mark.django_db
def test_hsts_is_sent_over_tls_only(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    assert "Strict-Transport-Security" not in client.get("/healthz")
    assert client.get("/api/v1/experiments", secure=True)["Strict-Transport-Security"].startswith("max-age=3600")


@pytest.mark.django_db
def test_probes_answer_any_host_and_skip_the_tls_redirect(client, settings):
    """Load balancers probe the app port over plain HTTP with an IP as Host."""
    settings.ALLOWED_HOSTS = ["example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.0.0.5:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.5:8000").json() == {"status": "ok"}
    assert client.get("/api/v1/experiments", HTTP_HOST="example.com").status_code == 301


INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*["']""", re.IGNORECASE)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def csp_violations(text: str) -> list[str]:
    found = []
    for name, pattern in (
        ("inline event handler", INLINE_HANDLER),
        ("inline <script>", INLINE_SCRIPT),
        ("style attribute", STYLE_ATTRIBUTE),
        ("javascript: URL", JS_URL),
    ):
        found += [f"{name}: {match.group(0).strip()}" for match in pattern.finditer(text)]
    if re.search(r"<style[\s>]", text, re.IGNORECASE):
        found.append("inline <style> element")
    if re.search(r"\bhx-on", text):
        found.append("hx-on attribute (evaluated as inline script)")
    return found


def template_files():
    return sorted(p for p in (ROOT / "templates").rglob("*.html")) + sorted((ROOT / "static").rglob("*.html"))


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_and_static_pages_have_no_inline_code(path):
    """CSP blocks these; each would be a broken feature in production."""
    assert csp_violations(path.read_text()) == []


def test_no_template_loads_anything_from_the_network():
    for path in template_files():
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text), path
