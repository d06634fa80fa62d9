"""Words for people, shared by messages and pages: no Flask, no models."""


def plural(noun: str) -> str:
    """The plural of an English noun as the app uses them ('family' -> 'families', 'day' -> 'days')."""
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def counted(count: int, noun: str) -> str:
    """'1 instrument', '2 instruments', for messages and pages alike."""
    return f"{count:,} {noun if count == 1 else plural(noun)}"
