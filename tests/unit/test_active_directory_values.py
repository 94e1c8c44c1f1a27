"""Active Directory's value formats, with AD-shaped values."""

from __future__ import annotations

import uuid

import pytest

from connector.sources.ldap_entries import (
    EntryError,
    account_disabled,
    guid_from_bytes,
    normalise_dn,
    split_ranged,
)


def test_object_guid_is_read_in_active_directory_byte_order() -> None:
    # AD shows this GUID as {3F2504E0-4F89-11D3-9A0C-0305E82C3301}; on the wire the first
    # three fields are little-endian.
    raw = bytes.fromhex("E004253F894FD3119A0C0305E82C3301")

    assert guid_from_bytes(raw) == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert guid_from_bytes(raw) != str(uuid.UUID(bytes=raw))  # not big-endian


def test_object_guid_of_the_wrong_length_is_an_entry_error() -> None:
    with pytest.raises(EntryError, match="15 bytes"):
        guid_from_bytes(b"\x00" * 15)


@pytest.mark.parametrize(
    ("value", "disabled"),
    [
        ("512", False),  # NORMAL_ACCOUNT
        ("514", True),  # NORMAL_ACCOUNT | ACCOUNTDISABLE
        ("66048", False),  # NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
        ("66050", True),  # ... | ACCOUNTDISABLE
        ("2", True),
        (None, False),
        ("", False),
    ],
)
def test_user_account_control_disabled_flag(value: str | None, disabled: bool) -> None:
    assert account_disabled(value) is disabled


def test_user_account_control_that_is_not_a_number_is_an_entry_error() -> None:
    with pytest.raises(EntryError):
        account_disabled("enabled")


def test_ranged_attributes_are_recognised() -> None:
    attributes = {
        "member;range=0-1499": [b"x"],
        "cn": ["Lärare".encode()],
        "memberOf;Range=0-*": [b"y"],
    }

    assert split_ranged(attributes) == {"member": (0, "1499"), "memberof": (0, "*")}


def test_group_dns_compare_ignoring_case_and_spaces() -> None:
    assert normalise_dn("CN=Lärare-Skola1, OU=Grupper,DC=kommun,DC=se") == normalise_dn(
        "cn=lärare-skola1,ou=grupper, dc=kommun, dc=se"
    )


class _RangedDirectory:
    """Answers follow-up range requests the way Active Directory does (no slapd does this)."""

    def __init__(self, values: list[bytes], page: int) -> None:
        self.values, self.page = values, page
        self.requests: list[str] = []
        self.response: list[dict[str, object]] = []

    def search(self, dn: str, search_filter: str, search_scope: str, attributes: list[str]) -> None:
        (requested,) = attributes
        self.requests.append(requested)
        start = int(requested.split("=")[1].split("-")[0])
        end = start + self.page - 1
        last = end >= len(self.values) - 1
        name = f"member;range={start}-{'*' if last else end}"
        self.response = [{"raw_attributes": {name: self.values[start : end + 1]}}]


def test_ranged_attribute_is_fetched_to_the_end() -> None:
    from connector.config import LdapSourceConfig
    from connector.sources.ldap_directory import LdapDirectorySource

    values = [f"cn=user{i},dc=x".encode() for i in range(3500)]
    directory = _RangedDirectory(values, page=1500)
    source = LdapDirectorySource(
        LdapSourceConfig.model_validate(
            {
                "type": "ldap",
                "name": "ad",
                "kind": "staff",
                "servers": ["ldaps://dc.example"],
                "base_dns": ["dc=x"],
                "active_directory": True,
                "attributes": {"key": "objectGUID"},
                "protected_identity": {"assume_not_protected": True},
            }
        )
    )

    complete = source.search.complete_ranged(
        directory, "cn=g,dc=x", {"member;range=0-1499": values[:1500]}
    )  # type: ignore[arg-type]

    assert complete["member"] == values
    assert directory.requests == ["member;range=1500-*", "member;range=3000-*"]
