"""A reviewer opens the agreement page in Debian's chromium: judge vs human shows κ with its
interval and band and the confusion matrix; a cell leads to exactly its traces."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from traces.models import Membership

from ..factories import make_experiment, make_feedback, make_trace
from .test_review_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (judge, human) per trace: 6 agree on true, 4 on false, 2 judge-true/human-false, 1 the reverse.
VERDICTS = [(True, True)] * 6 + [(False, False)] * 4 + [(True, False)] * 2 + [(False, True)]


@pytest.fixture
def judged(live):
    experiment = make_experiment("rag-demo")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    cells = {}
    for judge, human in VERDICTS:
        trace = make_trace(experiment, name=f"answer {len(cells.get((judge, human), ()))}")
        make_feedback(trace, "correct", judge, source_type="LLM_JUDGE", source_id="judge-v1", rationale="checked")
        make_feedback(trace, "correct", human, source_type="HUMAN", source_id="alice")
        cells.setdefault((judge, human), set()).add(trace.trace_id)
    unrelated = make_trace(experiment)
    make_feedback(unrelated, "correct", True, source_type="LLM_JUDGE", source_id="judge-v1")
    return {"experiment": experiment, "cells": cells, "live": live}


def test_judge_vs_human_kappa_matrix_and_a_cell_to_its_traces(watched, judged, shots):
    page, live, experiment = watched, judged["live"], judged["experiment"]
    sign_in(page, live)
    page.goto(f"{live}/experiments/{experiment.pk}/traces/")
    page.locator("#agreement-link").click()
    expect(page.get_by_role("heading", name=re.compile("Agreement"))).to_be_visible()
    # Opened on the suggested pair: the judge against the humans on `correct`.
    expect(page.locator("#ag-summary")).to_contain_text("13 matched pairs on 13 traces")
    kappa = page.locator("#stat-cohen_kappa")
    expect(kappa).to_contain_text("Cohen's κ")
    expect(kappa.locator(".ag-value")).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(kappa.locator(".ag-ci-range")).to_have_text(re.compile(r"^\[-?\d\.\d{3}, \d\.\d{3}\]$"))
    expect(kappa.locator(".band")).to_have_text(re.compile("poor|moderate|good"))
    matrix = page.locator("#confusion")
    expect(matrix).to_be_visible()
    expect(matrix.locator("td[data-a=true][data-b=false] a.ag-cell-link")).to_have_text("2")
    page.screenshot(path=str(shots / "agreement.png"), full_page=True)

    matrix.locator("td[data-a=true][data-b=false] a.ag-cell-link").click()
    expect(page).to_have_url(re.compile(r"/traces/\?filter="))
    rows = page.locator("#trace-table tbody tr")
    expect(rows).to_have_count(2)
    shown = {
        href.split("/traces/")[1].split("/")[0]
        for href in rows.locator("a.row-link").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    }
    assert shown == judged["cells"][(True, False)]
    page.screenshot(path=str(shots / "agreement-cell-traces.png"), full_page=True)
