"""The variant matrix: every value of every choice in cookiecutter.json is baked by some variant.

The render, Airflow and run tiers test what the VARIANTS in conftest.py bake, so a choice value
no variant picks is never rendered by the suite. A new value fails here until a variant bakes it.
"""

from __future__ import annotations

import pytest
from helpers import OPTIONS, VARIANTS

PUBLIC = {name: default for name, default in OPTIONS.items() if not name.startswith("_")}
# Every option with a fixed set of answers, and that set: a choice's list, or both booleans.
CHOICES = {
    name: default if isinstance(default, list) else [True, False]
    for name, default in PUBLIC.items()
    if isinstance(default, (list, bool))
}


def baked_value(overrides: dict, name: str):
    """What a variant bakes for an option: its override, else the default (a choice's first value)."""
    default = PUBLIC[name]
    return overrides.get(name, default[0] if isinstance(default, list) else default)


def test_there_are_choices_to_cover():
    assert {"executor", "alert_chat", "include_examples"} <= set(CHOICES)


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_value_of_the_choice_is_baked_by_a_variant(name):
    baked = {baked_value(overrides, name) for overrides in VARIANTS.values()}
    unbaked = [value for value in CHOICES[name] if value not in baked]
    assert not unbaked, f"no variant in tests/conftest.py VARIANTS bakes {name}={unbaked}: override it in one"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_override_names_an_option_and_one_of_its_values(variant):
    for name, value in VARIANTS[variant].items():
        assert name in PUBLIC, f"{variant}: {name!r} is not an option in cookiecutter.json"
        if name in CHOICES:
            # Compared with their types: 1 == True, but 1 is no answer to a yes/no option.
            allowed = {(type(choice), choice) for choice in CHOICES[name]}
            assert (type(value), value) in allowed, f"{variant}: {name}={value!r} is not one of {CHOICES[name]}"
        else:
            assert isinstance(value, str) and value, f"{variant}: {name} is free text, not {value!r}"
