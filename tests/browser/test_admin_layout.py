"""Django admin at 1440 px: the change lists fit the screen (the filters go above the list instead
of squeezing it), ids are not wrapped after their prefix, no console errors (favicon included)."""

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.factories import make_experiment, make_feedback, make_trace


def test_admin_change_lists_fit_a_1440_px_screen(watched, live, shots):
    page = watched
    page.set_viewport_size({"width": 1440, "height": 900})
    get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    experiment = make_experiment("admin-layout")
    for number in range(3):
        trace = make_trace(experiment, name=f"answer_question_{number}")
        make_feedback(trace, name="user_satisfaction", value=True, source_type="HUMAN", source_id="user_1")

    page.goto(f"{live}/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-pass-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    for path, shot in (
        ("traces/trace", "admin-traces-1440.png"),
        ("assessments/assessment", "admin-assessments-1440.png"),
    ):
        page.goto(f"{live}/admin/{path}/")
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        layout = page.evaluate(
            """() => {
                const filter = document.querySelector('#changelist-filter').getBoundingClientRect();
                const list = document.querySelector('#result_list').getBoundingClientRect();
                const results = document.querySelector('.results');
                return {filterAbove: filter.bottom <= list.top, filterWidth: filter.width,
                        listWidth: results.clientWidth, overflow: results.scrollWidth - results.clientWidth};
            }"""
        )
        page.screenshot(path=str(shots / shot))
        assert layout["filterAbove"], layout
        assert layout["filterWidth"] >= layout["listWidth"] - 2, layout  # a row across the page
        if path == "traces/trace":
            assert layout["overflow"] <= 0, layout  # every column in view
        id_cell = page.locator("#result_list tbody .field-trace_id").first
        assert id_cell.evaluate("cell => getComputedStyle(cell).wordBreak") == "break-all"
