"""Pages as people see them on a phone and at a desk: the main menu, the lists."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from loanservice.schools.models import School
from loanservice.sets.models import ClassroomSet
from loanservice.sets.services import check_out_set
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import sign_in


def menu_link(page, name):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}


def test_on_a_phone_the_main_menu_folds_behind_a_menu_button(live_server, factory_for_server, phone):
    admin = factory_for_server.user("admin")
    sign_in(phone, live_server, admin.email)
    menu = phone.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu_link(phone, "Instruments")).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    menu_link(phone, "Borrowers").click()
    expect(phone.get_by_role("heading", name="Borrowers", level=1)).to_be_visible()


def test_escape_closes_the_menu_and_puts_the_keyboard_back_on_its_button(live_server, factory_for_server, phone):
    sign_in(phone, live_server, factory_for_server.user("staff").email)
    menu = phone.get_by_role("button", name="Menu")
    menu.click()
    menu_link(phone, "Instruments").focus()
    phone.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()


def test_at_a_desk_the_menu_is_a_row_of_links_without_a_button(live_server, factory_for_server, page):
    sign_in(page, live_server, factory_for_server.user("staff").email)
    expect(menu_link(page, "Instruments")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()


def test_without_javascript_a_phone_shows_the_whole_menu(live_server, factory_for_server, browser):
    context = browser.new_context(java_script_enabled=False, **PHONE)
    page = context.new_page()
    sign_in(page, live_server, factory_for_server.user("staff").email)
    expect(menu_link(page, "Instruments")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    context.close()


@pytest.mark.parametrize(("who", "path"), [("admin", "/admin/users"), ("admin", "/admin/schools"),
                                           ("admin", "/types"), ("school", "/")])
def test_lists_fit_a_phone_screen(live_server, factory_for_server, phone, who, path):
    school = factory_for_server.school("Riverside Primary School", contact_name="Amara Okafor",
                                       contact_email="music.lead@riverside-primary.example.org",
                                       address="1 River Road\nExampleton EX1 1AA")
    factory_for_server.instrument_type("Violin", sizes=("1/16", "1/10", "1/8", "1/4", "1/2", "3/4", "7/8", "4/4"),
                                       default_accessories="Case, bow, rosin, shoulder rest")
    user = factory_for_server.user(who, school=school if who == "school" else None)
    if who == "school":
        classroom_set = factory_for_server.classroom_set(name="Ukulele set A, Year 4")
        with in_app(live_server.app) as session:
            check_out_set(session, None, session.get(ClassroomSet, classroom_set.id), session.get(School, school.id),
                          due_on=today() + timedelta(days=60))
            session.commit()
    sign_in(phone, live_server, user.email)
    phone.goto(live_server.url + path)
    expect(phone.locator("table.list")).to_be_visible()
    overflow = phone.evaluate(
        "Math.max(...[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth))")
    assert overflow == 0, f"a list is cut off by {overflow}px on a 375px phone"
