"""Search as you type: htmx asks for the results alone and swaps them in; without JavaScript the same
search forms load whole pages, as before."""
from lxml import html as lxml_html

from .pages import submit

HTMX = {"HX-Request": "true"}


def tags_in(fragment: str) -> list[str]:
    doc = lxml_html.fromstring(fragment)
    return [a.text for a in doc.xpath("//table//tbody//th/a")]


def test_typing_in_the_instrument_search_returns_the_matching_results_alone(app, staff_client, factory):
    flute = factory.instrument(factory.instrument_type("Flute", family="woodwind", sizes=()), make="Yamaha")
    factory.instrument(make="Stentor")
    response = staff_client.get("/instruments?q=yam", headers=HTMX)
    assert tags_in(response.get_data(as_text=True)) == [flute.asset_tag]


def test_the_instrument_results_fragment_is_not_a_whole_page(app, staff_client, factory):
    factory.instrument(make="Yamaha")
    fragment = staff_client.get("/instruments?q=yam", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="instrument-results">')


def test_the_fragment_says_how_many_match(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    for _ in range(3):
        factory.instrument(kind, make="Yamaha")
    factory.instrument(make="Stentor")
    fragment = staff_client.get("/instruments?q=yamaha", headers=HTMX).get_data(as_text=True)
    assert "3 instruments match." in fragment


def test_a_whole_tag_typed_shows_it_in_the_results_rather_than_leaving_the_page(app, staff_client, factory):
    violin = factory.instrument()
    response = staff_client.get(f"/instruments?q={violin.asset_tag}", headers=HTMX)
    assert tags_in(response.get_data(as_text=True)) == [violin.asset_tag]


def test_without_javascript_the_search_form_loads_the_page_with_the_results(app, staff_client, factory):
    flute = factory.instrument(factory.instrument_type("Flute", family="woodwind", sizes=()), make="Yamaha")
    factory.instrument(make="Stentor")
    response = submit(staff_client, "/instruments", {"q": "yam"}, form="q")
    page = response.get_data(as_text=True)
    assert "<h1>Instruments</h1>" in page
    assert tags_in(page) == [flute.asset_tag]


def test_without_javascript_a_whole_tag_still_opens_the_instrument(app, staff_client, factory):
    violin = factory.instrument()
    response = submit(staff_client, "/instruments", {"q": violin.asset_tag}, form="q")
    assert response.location.endswith(f"/instruments/{violin.asset_tag}")


def test_filters_apply_to_the_results_as_they_change(app, staff_client, factory):
    broken = factory.instrument(condition_grade=5)
    factory.instrument(condition_grade=1)
    response = staff_client.get("/instruments?q=&condition=4", headers=HTMX)
    assert tags_in(response.get_data(as_text=True)) == [broken.asset_tag]


def test_typing_in_the_borrower_search_returns_the_matching_borrowers_alone(app, staff_client, factory):
    factory.pupil("Ada Adams")
    factory.pupil("Ben Brown")
    fragment = staff_client.get("/borrowers?q=adam", headers=HTMX).get_data(as_text=True)
    names = [a.text for a in lxml_html.fromstring(fragment).xpath("//a")]
    assert "Ada Adams" in names
    assert "Ben Brown" not in names


def test_the_borrower_fragment_is_not_a_whole_page(app, staff_client, factory):
    factory.pupil("Ada Adams")
    fragment = staff_client.get("/borrowers?q=adam", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="borrower-results">')


def test_without_javascript_the_borrower_search_loads_the_page(app, staff_client, factory):
    factory.pupil("Ada Adams")
    page = submit(staff_client, "/borrowers", {"q": "adam"}, form="q").get_data(as_text=True)
    assert "Borrowers matching “adam”" in page


def test_typing_a_borrowers_name_on_the_lend_form_lists_them_to_choose(app, staff_client, factory):
    ada = factory.pupil("Ada Adams")
    factory.pupil("Ben Brown")
    fragment = staff_client.get("/loans/new/borrowers?who=adam", headers=HTMX).get_data(as_text=True)
    values = lxml_html.fromstring(fragment).xpath("//input[@name='borrower']/@value")
    assert values == [f"pupil-{ada.id}"]


def test_the_borrower_chosen_stays_while_typing_another_name(app, staff_client, factory):
    ada = factory.pupil("Ada Adams")
    ben = factory.pupil("Ben Brown")
    fragment = staff_client.get(f"/loans/new/borrowers?who=brown&borrower=pupil-{ada.id}",
                                headers=HTMX).get_data(as_text=True)
    values = lxml_html.fromstring(fragment).xpath("//input[@name='borrower']/@value")
    assert values == [f"pupil-{ada.id}", f"pupil-{ben.id}"]


def test_lending_to_a_borrower_found_as_you_type_works_without_javascript_too(app, staff_client, factory):
    violin = factory.instrument()
    ada = factory.pupil("Ada Adams")
    found = submit(staff_client, f"/loans/new?tag={violin.asset_tag}", {"who": "adam"}, button="find")
    assert f'value="pupil-{ada.id}"' in found.get_data(as_text=True)


def test_nothing_found_on_the_lend_form_says_so(app, staff_client, factory):
    fragment = staff_client.get("/loans/new/borrowers?who=zzz", headers=HTMX).get_data(as_text=True)
    assert "No borrower's name contains “zzz”" in fragment
