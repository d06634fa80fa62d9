"""Column types for the domain's enums: each stored as its value in a VARCHAR, guarded by a named CHECK."""
import enum
from collections.abc import Iterable

from sqlalchemy import CheckConstraint, Enum


def enum_values(members: Iterable[enum.Enum]) -> list[str]:
    """The values the database stores for these members, in their order."""
    return [member.value for member in members]


def enum_column(enum_cls: type[enum.Enum], length: int) -> Enum:
    """A VARCHAR(length) column type that reads and writes ``enum_cls`` members by value.

    The type makes no constraint of its own: the model names its CHECK with ``values_check``, so the
    schema the migrations built stays as it is.
    """
    return Enum(enum_cls, native_enum=False, values_callable=enum_values, length=length,
                create_constraint=False, validate_strings=True)


def sql_values(members: Iterable[enum.Enum]) -> str:
    """The members' values as an SQL list, e.g. ``'open', 'pending'``, for a CHECK or an index's WHERE."""
    return ", ".join(f"'{value}'" for value in enum_values(members))


def values_check(column: str, members: Iterable[enum.Enum], name: str) -> CheckConstraint:
    """A CHECK named ``name`` that ``column`` holds one of the members' values."""
    return CheckConstraint(f"{column} IN ({sql_values(members)})", name=name)
