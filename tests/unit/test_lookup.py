"""Lookup before create (connector.targets.scim.lookup): which vendor account a new user or group
links to, and when the answer is too ambiguous to change anything."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from connector.targets.scim.client import ScimClient
from connector.targets.scim.lookup import LookupMixin, VendorIndex, resolve
from connector.targets.scim.outcome import Conflict
from connector.targets.scim.transport import ScimError

NAMES = {"userName": "anna@school.se", "emails.value": "anna@mail.se"}


def user(vendor_id: str, ext: str | None = None, name: str = "", *emails: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"id": vendor_id, "userName": name}
    if ext is not None:
        resource["externalId"] = ext
    if emails:
        resource["emails"] = list(emails)
    return resource


# resolve: the rules, from what each part of the lookup found.


def test_one_account_by_external_id_is_linked_whatever_the_names_find() -> None:
    mine, other = user("1", "e1"), user("2", None, "anna@school.se")
    found = {"externalId": [mine], "userName": [other]}
    assert resolve("e1", found, NAMES) is mine


def test_two_accounts_with_the_same_external_id_are_a_conflict() -> None:
    found = {"externalId": [user("1", "e1"), user("2", "e1")]}
    with pytest.raises(Conflict) as raised:
        resolve("e1", found, NAMES)
    assert str(raised.value) == "2 vendor accounts carry the same externalId"


def test_one_account_by_name_without_an_external_id_is_linked() -> None:
    match = user("1", None, "anna@school.se")
    assert resolve("e1", {"externalId": [], "userName": [match]}, NAMES) is match


def test_the_same_account_found_by_two_names_is_one_candidate() -> None:
    match = user("1", "", "anna@school.se", {"value": "anna@mail.se"})
    found = {"externalId": [], "userName": [match], "emails.value": [dict(match)]}
    assert resolve("e1", found, NAMES) == match


def test_an_account_by_name_with_our_own_external_id_is_linked() -> None:
    match = user("1", "e1", "anna@school.se")
    assert resolve("e1", {"userName": [match]}, NAMES) is match


def test_two_accounts_by_one_name_are_a_conflict() -> None:
    found = {"externalId": [], "userName": [user("1"), user("2")]}
    with pytest.raises(Conflict) as raised:
        resolve("e1", found, NAMES)
    assert str(raised.value) == "2 vendor accounts match the same userName"


def test_different_accounts_by_different_names_are_a_conflict() -> None:
    found = {"externalId": [], "userName": [user("1")], "emails.value": [user("2")]}
    with pytest.raises(Conflict) as raised:
        resolve("e1", found, NAMES)
    assert str(raised.value) == "2 different vendor accounts match by userName, emails.value"


def test_an_account_by_name_that_belongs_to_another_external_id_is_a_conflict() -> None:
    found = {"externalId": [], "userName": [user("1", "someone-else")]}
    with pytest.raises(Conflict) as raised:
        resolve("e1", found, NAMES)
    assert str(raised.value) == "the matching vendor account belongs to another externalId"


def test_nothing_found_is_none() -> None:
    assert resolve("e1", {"externalId": [], "userName": [], "emails.value": []}, NAMES) is None
    assert resolve("e1", {}, NAMES) is None


# VendorIndex: this cycle's listing, asked instead of the vendor.


def test_the_index_finds_by_external_id_exactly_and_by_names_whatever_their_case() -> None:
    anna = user("1", "E1", "Anna@School.se", {"value": "Anna@Mail.se"}, "not-a-dict", {"x": 1})
    group = {"id": "g1", "externalId": "G1", "displayName": "Klass 7A"}
    index = VendorIndex([anna], [group])
    found = index.lookup(
        "Users", "E1", {"userName": "ANNA@school.se", "emails.value": "anna@MAIL.se"}
    )
    assert found == {"externalId": [anna], "userName": [anna], "emails.value": [anna]}
    assert index.lookup("Users", "e1", {})["externalId"] == []
    assert index.lookup("Groups", "G1", {"displayName": "klass 7a"}) == {
        "externalId": [group],
        "displayName": [group],
    }
    # Users and groups are apart: a group's name does not find a user, nor the other way.
    assert index.lookup("Users", "G1", {"userName": "klass 7a"}) == {
        "externalId": [],
        "userName": [],
    }
    assert index.lookup("Groups", "E1", {"displayName": "anna@school.se"}) == {
        "externalId": [],
        "displayName": [],
    }


def test_the_index_keeps_every_account_under_a_shared_key() -> None:
    first, second = user("1", "", "anna"), user("2", None, "ANNA")
    index = VendorIndex([first, second], [])
    assert index.lookup("Users", "", {"userName": "anna"}) == {
        "externalId": [],  # an empty externalId finds nothing
        "userName": [first, second],
    }


def test_the_index_does_not_key_empty_names_or_emails() -> None:
    blank = user("1", None, "", {"value": ""}, {"value": None})
    index = VendorIndex([blank], [])
    assert index.lookup("Users", "", {"userName": "", "emails.value": ""}) == {
        "externalId": [],
        "userName": [],
        "emails.value": [],
    }


def test_classify_tells_which_part_of_a_combined_filter_each_result_matched() -> None:
    mine = user("1", "e1", "someone")
    by_name = user("2", None, "ANNA@school.se")
    by_email = user("3", "x", "other", "junk", {"value": "ANNA@mail.se"})
    no_email = user("4", "E1", "x", {"type": "work"})
    found = VendorIndex.classify([mine, by_name, by_email, no_email], "e1", NAMES)
    assert found == {"externalId": [mine], "userName": [by_name], "emails.value": [by_email]}


# LookupMixin: the questions asked of the vendor.


class FakeVendor:
    """Answers `attribute eq "value"` filters, joined by `or`, from a list of users; refuses
    (with `status`) the attributes in `refused` and, if `refuse_or`, any combined filter."""

    def __init__(
        self,
        users: list[dict[str, Any]],
        *,
        refused: frozenset[str] = frozenset(),
        refuse_or: bool = False,
        status: int = 400,
    ) -> None:
        self.users = users
        self.refused = refused
        self.refuse_or = refuse_or
        self.status = status
        self.asked: list[tuple[str, str]] = []

    def search(self, resource_type: str, filter_: str) -> list[dict[str, Any]]:
        self.asked.append((resource_type, filter_))
        clauses = [clause.split(" eq ", 1) for clause in filter_.split(" or ")]
        if (self.refuse_or and len(clauses) > 1) or any(a in self.refused for a, _ in clauses):
            raise ScimError("GET", f"/{resource_type}", self.status, "cannot filter")
        wanted = [(attribute, json.loads(value)) for attribute, value in clauses]
        return [
            u
            for u in self.users
            if any(
                u.get("externalId") == value
                if attribute == "externalId"
                else VendorIndex.classify([u], "", {attribute: value})[attribute]
                for attribute, value in wanted
            )
        ]


class Finder(LookupMixin):
    def __init__(
        self, vendor: FakeVendor, *, index: VendorIndex | None = None, combined: bool = True
    ) -> None:
        self.client: ScimClient = vendor  # type: ignore[assignment]
        self.index = index
        self._external_id_filter = True
        self._combined_filter = combined


def test_with_a_listing_the_vendor_is_not_asked_unless_fresh() -> None:
    anna = user("1", "e1", "anna@school.se")
    vendor = FakeVendor([anna])
    finder = Finder(vendor, index=VendorIndex([], []))
    assert finder._find_existing("Users", "e1", NAMES) is None
    assert vendor.asked == []
    assert finder._find_existing("Users", "e1", NAMES, fresh=True) == anna
    assert len(vendor.asked) == 1


def test_the_listing_links_by_external_id_and_by_name() -> None:
    renamed = user("1", "e1", "old@school.se")
    anna = user("2", None, "anna@school.se")
    finder = Finder(FakeVendor([]), index=VendorIndex([renamed, anna], []))
    assert finder._find_existing("Users", "e1", NAMES) == renamed
    assert finder._find_existing("Users", "e2", NAMES) == anna


def test_a_combined_filter_links_an_account_found_by_external_id_alone() -> None:
    renamed = user("1", "e1", "old@school.se")
    assert Finder(FakeVendor([renamed]))._find_existing("Users", "e1", NAMES) == renamed


def test_without_an_external_id_filter_our_own_account_found_by_name_is_linked() -> None:
    # The state was lost, and the vendor cannot filter on externalId: the account by userName
    # carries our externalId, so it is ours, not a conflict.
    mine = user("1", "e1", "anna@school.se")
    vendor = FakeVendor([mine], refused=frozenset({"externalId"}))
    assert Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES) == mine


def test_an_account_without_the_attribute_matches_no_name_not_even_none() -> None:
    bare = {"id": "1", "emails": [{"type": "work"}]}
    names = {"userName": "None", "emails.value": "None"}
    assert VendorIndex.classify([bare], "e1", names) == {
        "externalId": [],
        "userName": [],
        "emails.value": [],
    }


def test_one_combined_filter_asks_for_every_attribute_at_once() -> None:
    anna = user("1", None, "anna@school.se")
    vendor = FakeVendor([anna, user("2", "e2", "bertil")])
    finder = Finder(vendor)
    assert finder._find_existing("Users", 'e"1', NAMES) == anna
    assert vendor.asked == [
        (
            "Users",
            'externalId eq "e\\"1" or userName eq "anna@school.se" '
            'or emails.value eq "anna@mail.se"',
        )
    ]


def test_a_combined_filter_finding_an_account_of_another_external_id_is_a_conflict() -> None:
    vendor = FakeVendor([user("1", "e9", "anna@school.se")])
    with pytest.raises(Conflict):
        Finder(vendor)._find_existing("Users", "e1", NAMES)


@pytest.mark.parametrize("status", [400, 501])
def test_a_vendor_that_cannot_combine_filters_is_asked_one_by_one(status: int) -> None:
    anna = user("1", None, "x", {"value": "anna@mail.se"})
    vendor = FakeVendor([anna], refuse_or=True, status=status)
    finder = Finder(vendor)
    with structlog.testing.capture_logs() as logs:
        assert finder._find_existing("Users", "e1", NAMES) == anna
    assert finder._combined_filter is False
    assert {"event": "scim.filter.unsupported", "attribute": "or", "log_level": "warning"} in logs
    assert vendor.asked[1:] == [
        ("Users", 'externalId eq "e1"'),
        ("Users", 'userName eq "anna@school.se"'),
        ("Users", 'emails.value eq "anna@mail.se"'),
    ]
    # Not asked again with `or` next time.
    vendor.asked.clear()
    finder._find_existing("Users", "e1", NAMES)
    assert len(vendor.asked) == 3


def test_a_combined_filter_failing_otherwise_fails_the_lookup() -> None:
    vendor = FakeVendor([], refuse_or=True, status=500)
    finder = Finder(vendor)
    with pytest.raises(ScimError):
        finder._find_existing("Users", "e1", NAMES)
    assert finder._combined_filter is True


def test_one_by_one_an_account_found_by_external_id_ends_the_lookup() -> None:
    mine = user("1", "e1", "old-name")
    vendor = FakeVendor([mine, user("2", None, "anna@school.se")])
    assert Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES) == mine
    assert vendor.asked == [("Users", 'externalId eq "e1"')]


def test_one_by_one_two_accounts_by_external_id_are_a_conflict() -> None:
    vendor = FakeVendor([user("1", "e1"), user("2", "e1")])
    with pytest.raises(Conflict):
        Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES)


@pytest.mark.parametrize("status", [400, 501])
def test_a_vendor_that_cannot_filter_on_external_id_is_asked_by_names(status: int) -> None:
    anna = user("1", None, "anna@school.se")
    vendor = FakeVendor([anna], refused=frozenset({"externalId"}), status=status)
    finder = Finder(vendor, combined=False)
    with structlog.testing.capture_logs() as logs:
        assert finder._find_existing("Users", "e1", NAMES) == anna
    assert finder._external_id_filter is False
    assert {
        "event": "scim.filter.unsupported",
        "attribute": "externalId",
        "log_level": "warning",
    } in logs
    vendor.asked.clear()
    assert finder._find_existing("Users", "e1", NAMES) == anna
    assert [f for _, f in vendor.asked] == [
        'userName eq "anna@school.se"',
        'emails.value eq "anna@mail.se"',
    ]


def test_an_external_id_filter_failing_otherwise_fails_the_lookup() -> None:
    vendor = FakeVendor([], refused=frozenset({"externalId"}), status=500)
    finder = Finder(vendor, combined=False)
    with pytest.raises(ScimError):
        finder._find_existing("Users", "e1", NAMES)
    assert finder._external_id_filter is True


@pytest.mark.parametrize("status", [400, 501])
def test_an_e_mail_filter_the_vendor_cannot_answer_is_skipped(status: int) -> None:
    anna = user("1", None, "anna@school.se")
    vendor = FakeVendor([anna], refused=frozenset({"emails.value"}), status=status)
    assert Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES) == anna


def test_an_e_mail_filter_failing_otherwise_fails_the_lookup() -> None:
    vendor = FakeVendor([], refused=frozenset({"emails.value"}), status=500)
    with pytest.raises(ScimError):
        Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES)


def test_a_user_name_filter_the_vendor_cannot_answer_fails_the_lookup() -> None:
    # Without userName nothing can be shown not to exist: creating could duplicate an account.
    vendor = FakeVendor([], refused=frozenset({"userName"}))
    with pytest.raises(ScimError):
        Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES)


def test_one_by_one_accounts_by_names_follow_the_same_rules() -> None:
    vendor = FakeVendor(
        [user("1", None, "anna@school.se"), user("2", None, "x", {"value": "anna@mail.se"})]
    )
    with pytest.raises(Conflict):
        Finder(vendor, combined=False)._find_existing("Users", "e1", NAMES)
    assert Finder(FakeVendor([]), combined=False)._find_existing("Users", "e1", NAMES) is None


def test_search_one_links_one_and_refuses_several() -> None:
    anna = user("1", "e1", "anna")
    assert Finder(FakeVendor([anna]))._search_one("Users", 'externalId eq "e1"', "x") == anna
    assert Finder(FakeVendor([]))._search_one("Users", 'externalId eq "e1"', "x") is None
    vendor = FakeVendor([anna, user("2", "e1")])
    with pytest.raises(Conflict) as raised:
        Finder(vendor)._search_one("Users", 'externalId eq "e1"', "externalId")
    assert str(raised.value) == "2 vendor users match the same externalId"
    assert vendor.asked == [("Users", 'externalId eq "e1"')]
