"""The calendar feeds as iCalendar (RFC 5545) text, built with the icalendar package."""
from datetime import datetime

from icalendar import Calendar, Event

from .services import CalendarEvent


def calendar_text(events: list[CalendarEvent], *, name: str, domain: str, stamp: datetime) -> bytes:
    """An iCalendar document of all-day events, one per delivery, collection and due date."""
    calendar = Calendar()
    calendar.add("prodid", "-//loanservice//bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for item in sorted(events, key=lambda e: (e.day, e.uid)):
        event = Event()
        event.add("uid", f"{item.uid}@{domain}")
        event.add("dtstamp", stamp)
        event.add("dtstart", item.day)  # a date: an all-day event
        event.add("summary", item.summary)
        event.add("description", item.description)
        calendar.add_component(event)
    return calendar.to_ical()
