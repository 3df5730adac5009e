"""The insights page and its HTMX panels: access, errors, links, query counts."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from traces.models import Membership

from .test_insights_selectors import listed


@pytest.fixture
def member(rated, django_user_model):
    experiment, _ = rated
    user = django_user_model.objects.create_user("carol", password="x")
    Membership.objects.create(user=user, experiment=experiment, role="viewer")
    return user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def base(experiment):
    return f"/experiments/{experiment.pk}/insights/"


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/experiments/\d+/traces/\?[^"]+)"', html)]


def test_page_loads_panels_one_request_each(rated, member_client):
    experiment, _ = rated
    html = member_client.get(base(experiment), {"range": "7d"}).content.decode()
    assert html.count('hx-trigger="load"') == 2  # cards and trends; breakdown waits for a pick
    assert "panels/cards/" in html and "panels/trends/" in html
    assert "span name" in html and "tag release" in html and "metadata topic" in html
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html)


@pytest.mark.parametrize("panel", ["cards", "trends"])
def test_every_link_in_a_panel_yields_its_count(rated, member_client, panel):
    experiment, _ = rated
    html = member_client.get(
        base(experiment) + f"panels/{panel}/",
        {"range": "7d", "filter": "tags.env = 'prod'"},
        headers={"HX-Request": "true"},
    ).content.decode()
    pairs = re.findall(r'<a href="(/experiments/\d+/traces/\?[^"]+)"[^>]*data-traces="(\d+)"', html)
    assert len(pairs) > 10
    for href, count in pairs:
        assert listed(experiment, unescape(href)) == int(count)


def test_breakdown_panel(rated, member_client):
    experiment, _ = rated
    html = member_client.get(
        base(experiment) + "panels/breakdown/", {"range": "7d", "by": "tag:release", "name": "user_satisfaction"}
    ).content.decode()
    assert "v1" in html and "v2" in html and "positive rate" in html
    for href in hrefs(html):
        assert "tags.release" in parse_qs(urlsplit(href).query)["filter"][0]
    bad = member_client.get(
        base(experiment) + "panels/breakdown/", {"range": "7d", "by": "colour", "name": "user_satisfaction"}
    )
    assert bad.status_code == 200 and "by: must be tag:&lt;key&gt;" in bad.content.decode()


def test_bad_filter_and_range_are_shown(rated, member_client):
    experiment, _ = rated
    html = member_client.get(base(experiment) + "panels/cards/", {"filter": "tags.env = "}).content.decode()
    assert 'role="alert"' in html and "Filter:" in html
    html = member_client.get(base(experiment), {"range": "1y"}).content.decode()
    assert "range: must be one of 24h, 7d, 30d or custom" in html
    html = member_client.get(base(experiment), {"start": "2026-02-10", "end": "2026-02-01"}).content.decode()
    assert "end: must not be before start" in html


def test_custom_range(rated, member_client):
    experiment, _ = rated
    response = member_client.get(base(experiment) + "panels/trends/", {"start": "2020-01-01", "end": "2020-01-03"})
    assert response.status_code == 200 and "per hour" not in response.content.decode()


def test_outsider_gets_404_and_anonymous_is_redirected(rated, client, django_user_model):
    experiment, _ = rated
    assert client.get(base(experiment)).status_code == 302
    client.force_login(django_user_model.objects.create_user("mallory", password="x"))
    assert client.get(base(experiment)).status_code == 404
    assert client.get(base(experiment) + "panels/cards/").status_code == 404


def test_trace_list_links_to_insights(rated, member_client):
    experiment, _ = rated
    assert base(experiment) in member_client.get(f"/experiments/{experiment.pk}/traces/").content.decode()


def test_panel_queries_do_not_grow_with_names(rated, member_client, django_assert_max_num_queries):
    experiment, _ = rated
    # session, user, experiment, role, definitions, name types, then the panel's own (9 / 3)
    with django_assert_max_num_queries(16):
        member_client.get(base(experiment) + "panels/cards/", {"range": "30d"})
    with django_assert_max_num_queries(10):
        member_client.get(base(experiment) + "panels/trends/", {"range": "30d"})
