"""Unit tests for connector.mapping.template: safe, compiled mapping templates."""

from __future__ import annotations

import pytest

from connector.mapping.template import TemplateError, TemplateSet, compile_template, fold, username

FIELDS = frozenset({"given_name", "family_name", "email", "title"})


def render(source: str, **context: str | None) -> str:
    return compile_template(source, FIELDS).render(context)


# -- placeholders and literal text -------------------------------------------------------


def test_single_placeholder_renders_field_value() -> None:
    assert render("{given_name}", given_name="Åsa") == "Åsa"


def test_placeholders_mixed_with_literal_text() -> None:
    assert render("{family_name}, {given_name}", given_name="Åsa", family_name="Ek") == "Ek, Åsa"


def test_literal_text_without_placeholders_is_kept() -> None:
    assert render("Elev") == "Elev"


def test_empty_template_renders_empty_string() -> None:
    assert render("") == ""


def test_missing_or_none_field_value_renders_empty() -> None:
    assert render("[{given_name}]", given_name=None) == "[]"
    assert render("[{given_name}]") == "[]"


def test_whitespace_around_field_and_filter_names_is_allowed() -> None:
    assert render("{ email | lower }", email="A@B.SE") == "a@b.se"


def test_fields_property_lists_used_fields() -> None:
    template = compile_template("{given_name} {family_name|upper}", FIELDS)
    assert template.fields == frozenset({"given_name", "family_name"})


# -- filters -----------------------------------------------------------------------------


def test_lower_filter() -> None:
    assert render("{email|lower}", email="Anna.Ek@Skola.SE") == "anna.ek@skola.se"


def test_upper_filter() -> None:
    assert render("{given_name|upper}", given_name="åsa") == "ÅSA"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("å", "a"),
        ("ä", "a"),
        ("ö", "o"),
        ("é", "e"),
        ("ß", "ss"),
        ("Åström", "Astrom"),
        ("Ängel Öberg", "Angel Oberg"),
    ],
)
def test_fold_filter_maps_to_ascii(value: str, expected: str) -> None:
    assert render("{given_name|fold}", given_name=value) == expected
    assert fold(value) == expected


def test_username_filter_keeps_only_safe_characters() -> None:
    result = render("{given_name|username}", given_name="Anna-Lena O'Brien Åström")
    assert result == "anna-lena.obrien.astrom"
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789._@-" for c in result)


def test_username_collapses_and_strips_whitespace() -> None:
    assert username("  Jöns   Émile  ") == "jons.emile"


def test_username_keeps_at_sign_and_digits() -> None:
    assert username("Kalle.Anka2@Skola.se") == "kalle.anka2@skola.se"


def test_first_word_filter() -> None:
    assert render("{given_name|first_word}", given_name="Anna Maria") == "Anna"


def test_first_word_of_empty_value_is_empty() -> None:
    assert render("{given_name|first_word}", given_name="   ") == ""


def test_default_filter_used_only_when_empty() -> None:
    assert render("{title|default:Elev}", title="") == "Elev"
    assert render("{title|default:Elev}", title=None) == "Elev"
    assert render("{title|default:Elev}", title="Lärare") == "Lärare"


def test_truncate_filter() -> None:
    assert render("{family_name|truncate:3}", family_name="Andersson") == "And"
    assert render("{family_name|truncate:20}", family_name="Ek") == "Ek"


def test_replace_filter() -> None:
    assert render("{family_name|replace: =-}", family_name="af Klint Berg") == "af-Klint-Berg"


def test_replace_filter_with_empty_new_value_deletes() -> None:
    assert render("{family_name|replace:'=}", family_name="O'Brien") == "OBrien"


def test_filters_apply_in_order() -> None:
    assert render("{given_name|upper|truncate:2}", given_name="åsa") == "ÅS"
    assert render("{given_name|truncate:2|default:X}", given_name="") == "X"


# -- literal braces ------------------------------------------------------------------------


def test_double_braces_are_literal_braces() -> None:
    assert render("{{x}}") == "{x}"


def test_double_braces_around_placeholder() -> None:
    assert render("{{{given_name}}}", given_name="Åsa") == "{Åsa}"


# -- errors ------------------------------------------------------------------------------


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(TemplateError, match="unknown field 'nickname'"):
        compile_template("{nickname}", FIELDS)


def test_unknown_filter_is_rejected() -> None:
    with pytest.raises(TemplateError, match="unknown filter 'shout'"):
        compile_template("{given_name|shout}", FIELDS)


def test_simple_filter_with_argument_is_rejected() -> None:
    with pytest.raises(TemplateError, match="takes no argument"):
        compile_template("{given_name|lower:x}", FIELDS)


@pytest.mark.parametrize("argument", ["", "x", "0", "-1", "2.5"])
def test_bad_truncate_argument_is_rejected(argument: str) -> None:
    with pytest.raises(TemplateError, match="truncate"):
        compile_template(f"{{given_name|truncate:{argument}}}", FIELDS)


@pytest.mark.parametrize("argument", ["", "abc", "=x"])
def test_bad_replace_argument_is_rejected(argument: str) -> None:
    with pytest.raises(TemplateError, match="replace"):
        compile_template(f"{{given_name|replace:{argument}}}", FIELDS)


@pytest.mark.parametrize("source", ["{given_name", "given_name}", "a { b", "x}"])
def test_unmatched_brace_is_rejected(source: str) -> None:
    with pytest.raises(TemplateError, match="unmatched"):
        compile_template(source, FIELDS)


# -- no code execution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{__import__('os').system('x')}",
        "{given_name.__class__}",
        "{given_name[0]}",
        "{given_name.upper()}",
        "{__builtins__}",
    ],
)
def test_python_expressions_are_unknown_fields(source: str) -> None:
    with pytest.raises(TemplateError, match="unknown field"):
        compile_template(source, FIELDS)


def test_format_spec_syntax_is_not_interpreted() -> None:
    # str.format would pad this; the template treats it as an unknown field instead.
    with pytest.raises(TemplateError, match="unknown field"):
        compile_template("{given_name:>10}", FIELDS)


def test_field_value_containing_braces_is_not_re_expanded() -> None:
    assert render("{given_name}", given_name="{family_name}", family_name="X") == "{family_name}"


@pytest.mark.parametrize(
    "sources",
    [
        {"a": "{email|lower}", "b": "{email|lower}", "c": "{{literal}} {given_name}"},
        {"a": "{family_name}, {given_name}", "b": "{given_name|fold|upper}-{given_name}"},
        {"a": "", "b": "no placeholders {{ }}", "c": "{family_name|default:X}"},
    ],
)
def test_a_template_set_renders_what_each_template_renders(sources: dict[str, str]) -> None:
    templates = {key: compile_template(source, FIELDS) for key, source in sources.items()}
    for context in (
        {"given_name": "Åsa {0}", "family_name": "Öberg", "email": "Åsa@Skola.SE"},
        {"given_name": "", "family_name": None, "email": "{}"},
    ):
        assert TemplateSet(templates).render(context) == {
            key: template.render(context) for key, template in templates.items()
        }
