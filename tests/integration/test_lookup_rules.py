"""Lookup before create (connector.targets.scim.lookup), rule by rule, against a real
scim2-server on loopback: the lookup code is called directly instead of through whole syncs,
so each test takes milliseconds and mutmut can run them for every mutant of lookup.py.

The server is scim2-server's own application served from a thread (InProcessScimServer): in
mutmut's freshly forked test processes, starting the `scim2-server` command takes seconds.
A vendor that cannot evaluate a filter is the one thing faked (fault injection): the server
answers such a request with 400 or 501 instead of serving it.

Each rule is a case a broken lookup would get wrong: a name matched in another letter case,
an e-mail among several, a second account with the same name or externalId (a Conflict,
nothing linked), an account that belongs to another externalId, the listing of this cycle
used instead of requests, and the fallbacks for vendors that cannot combine or filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.lookup import LookupMixin, VendorIndex, resolve
from connector.targets.scim.outcome import Conflict
from tests.support.scim import SCIM_TOKEN, InProcessScimServer, ScimPeek

Refuse = Callable[[dict[str, Any]], int | None]


class Lookups(LookupMixin):
    """The Applier's lookups, with nothing else of the Applier."""

    def __init__(self, client: ScimClient, index: VendorIndex | None = None) -> None:
        self.client = client
        self.index = index
        self._external_id_filter = True
        self._combined_filter = True


class Vendor:
    """What a test needs: a fresh tenant, a peek to set the scene, and lookups through a
    real ScimClient. `refusing` makes the server answer some filters with an error."""

    def __init__(self, server: InProcessScimServer) -> None:
        self.server = server
        self.url = server.tenant_url()
        self.peek = ScimPeek(self.url)
        self.client = ScimClient(self.url, SCIM_TOKEN, max_retries=0)
        self.filters: list[str] = []

    def user(self, user_name: str, external_id: str | None = None, *emails: str) -> str:
        payload: dict[str, Any] = {"userName": user_name}
        if external_id is not None:
            payload["externalId"] = external_id
        if emails:
            payload["emails"] = [{"value": e} for e in emails]
        created: str = self.peek.create_user(payload)["id"]
        return created

    def lookups(self, index: VendorIndex | None = None) -> Lookups:
        return Lookups(self.client, index)

    def index(self) -> VendorIndex:
        return VendorIndex(self.peek.list("Users"), self.peek.list("Groups"))

    def refusing(self, refuse: Refuse) -> None:
        self.server.refuse = refuse

    def searches(self) -> int:
        return self.client.requests_by_method["GET"]


def filter_of(environ: dict[str, Any]) -> str:
    return parse_qs(str(environ.get("QUERY_STRING", ""))).get("filter", [""])[0]


def refuse_when(status: int, test: Callable[[str], bool]) -> Refuse:
    return lambda environ: status if filter_of(environ) and test(filter_of(environ)) else None


@pytest.fixture(scope="module")
def server() -> Iterator[InProcessScimServer]:
    with InProcessScimServer() as started:
        yield started


@pytest.fixture
def vendor(server: InProcessScimServer) -> Iterator[Vendor]:
    server.refuse = None
    made = Vendor(server)
    yield made
    server.refuse = None
    made.client.close()
    made.peek.__exit__()


NAMES = {"userName": "anna@edu.example.se", "emails.value": "anna@edu.example.se"}


# --- resolve: what a lookup's findings mean -------------------------------------------------


def account(vendor_id: str, external_id: str | None = None) -> dict[str, Any]:
    return {"id": vendor_id, **({"externalId": external_id} if external_id else {})}


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({}, None),
        ({"externalId": [account("1", "E1")]}, "1"),
        # The externalId decides, whatever the names match.
        ({"externalId": [account("1", "E1")], "userName": [account("2"), account("3")]}, "1"),
        ({"userName": [account("2")]}, "2"),
        ({"userName": [account("2", "E1")]}, "2"),  # its externalId is this one
        ({"userName": [account("2")], "emails.value": [account("2")]}, "2"),  # the same one
        ({"emails.value": [account("3")]}, "3"),
    ],
)
def test_resolve_links_one_account(found: dict[str, Any], expected: str | None) -> None:
    match = resolve("E1", found, NAMES)
    assert (match["id"] if match else None) == expected


@pytest.mark.parametrize(
    ("found", "message"),
    [
        ({"externalId": [account("1", "E1"), account("2", "E1")]}, "2 vendor accounts carry"),
        ({"userName": [account("1"), account("2")]}, "2 vendor accounts match the same userName"),
        (
            {"emails.value": [account("1"), account("2"), account("3")]},
            r"3 vendor accounts match the same emails\.value",
        ),
        (
            {"userName": [account("1")], "emails.value": [account("2")]},
            "2 different vendor accounts match by userName, emails.value",
        ),
        ({"userName": [account("1", "E2")]}, "belongs to another externalId"),
    ],
)
def test_resolve_refuses_an_ambiguous_answer(found: dict[str, Any], message: str) -> None:
    with pytest.raises(Conflict, match=message):
        resolve("E1", found, NAMES)


def test_resolve_reads_only_the_names_it_is_given() -> None:
    found = {"userName": [account("1")], "emails.value": [account("2")]}
    assert resolve("E1", found, {"userName": "anna@edu.example.se"}) == account("1")


# --- VendorIndex: this cycle's listing -------------------------------------------------------


def test_the_index_finds_users_by_external_id_user_name_and_any_email(vendor: Vendor) -> None:
    anna = vendor.user("Anna@Edu.example.se", "E1", "first@x.se", "Anna@EDU.example.se")
    other = vendor.user("other@edu.example.se", "E2")
    index = vendor.index()

    found = index.lookup("Users", "E1", NAMES)

    assert [r["id"] for r in found["externalId"]] == [anna]
    assert [r["id"] for r in found["userName"]] == [anna]
    assert [r["id"] for r in found["emails.value"]] == [anna]
    assert index.lookup("Users", "E2", {})["externalId"][0]["id"] == other
    assert index.lookup("Users", "E2", {"emails.value": "FIRST@x.se"})["emails.value"][0]["id"] == (
        anna
    )
    # externalId is compared exactly, and a user is not a group.
    assert index.lookup("Users", "e1", {})["externalId"] == []
    assert index.lookup("Groups", "E1", NAMES) == {"externalId": [], **{n: [] for n in NAMES}}


def test_the_index_finds_groups_by_display_name_only(vendor: Vendor) -> None:
    group = {"id": "g1", "displayName": "Björkskolan", "externalId": "S1", "userName": "x"}
    index = VendorIndex([], [group])

    assert index.lookup("Groups", "S1", {"displayName": "BJÖRKSKOLAN"}) == {
        "externalId": [group],
        "displayName": [group],
    }
    assert index.lookup("Groups", "S9", {"userName": "x"})["userName"] == []
    assert index.lookup("Users", "S1", {"displayName": "Björkskolan"})["displayName"] == []


def test_the_index_holds_no_empty_keys() -> None:
    blank = {"id": "1", "externalId": "", "userName": "", "emails": [{"value": ""}]}
    odd = {"id": "2", "userName": "odd", "emails": ["odd@x.se", {"type": "work"}]}
    index = VendorIndex([blank, odd], [])

    assert index.lookup("Users", "", {"userName": "", "emails.value": ""}) == {
        "externalId": [],
        "userName": [],
        "emails.value": [],
    }
    assert index.lookup("Users", "X", {"emails.value": "odd@x.se"})["emails.value"] == []
    assert index.lookup("Users", "X", {"userName": "ODD"})["userName"] == [odd]


def test_the_index_keeps_every_account_under_a_shared_key() -> None:
    one = {"id": "1", "userName": "a", "emails": [{"value": "same@x.se"}]}
    two = {"id": "2", "userName": "b", "emails": [{"value": "same@x.se"}]}

    found = VendorIndex([one, two], []).lookup("Users", "X", {"emails.value": "same@x.se"})

    assert found["emails.value"] == [one, two]


def test_classify_sorts_a_combined_searchs_results() -> None:
    by_ext = {"id": "1", "externalId": "E1", "userName": "x"}
    by_name = {"id": "2", "userName": "ANNA@edu.example.se"}
    by_mail = {"id": "3", "userName": "y", "emails": ["bad", {"value": "Anna@Edu.Example.se"}]}
    no_mail = {"id": "4", "userName": "z", "emails": None, "externalId": "e1"}

    found = VendorIndex.classify([by_ext, by_name, by_mail, no_mail], "E1", NAMES)

    assert found == {"externalId": [by_ext], "userName": [by_name], "emails.value": [by_mail]}


# --- the lookups against the vendor ----------------------------------------------------------


def test_a_listing_answers_without_a_request_unless_fresh(vendor: Vendor) -> None:
    anna = vendor.user("anna@edu.example.se")
    index = VendorIndex([], [])  # listed before anna was made
    lookups = vendor.lookups(index)

    assert lookups._find_existing("Users", "E1", NAMES) is None
    assert vendor.searches() == 0
    assert lookups._find_existing("Users", "E1", NAMES, fresh=True)["id"] == anna  # type: ignore[index]
    assert vendor.searches() == 1
    assert vendor.lookups(vendor.index())._find_existing("Users", "E1", NAMES)["id"] == anna  # type: ignore[index]


@pytest.mark.parametrize("combined", [True, False], ids=["combined", "one-by-one"])
def test_lookups_find_by_each_attribute(vendor: Vendor, combined: bool) -> None:
    by_ext = vendor.user("someone@edu.example.se", "E1")
    by_name = vendor.user("ANNA@edu.example.se")
    by_mail = vendor.user("bo", None, "x@x.se", "bo@edu.example.se")
    lookups = vendor.lookups()
    lookups._combined_filter = combined

    def find(ext: str, **names: str) -> str | None:
        match = lookups._find_existing(
            "Users", ext, {k.replace("_", "."): v for k, v in names.items()}
        )
        return match["id"] if match else None

    assert find("E1", userName="nobody") == by_ext
    assert find("E9", userName="anna@edu.example.se") == by_name
    assert find("E9", userName="nobody", emails_value="bo@edu.example.se") == by_mail
    assert find("E9", userName="nobody", emails_value="nobody@x.se") is None
    with pytest.raises(Conflict):
        find("E9", userName="anna@edu.example.se", emails_value="bo@edu.example.se")
    with pytest.raises(Conflict, match="another externalId"):
        find("E9", userName="someone@edu.example.se")


def test_one_by_one_stops_at_the_external_id(vendor: Vendor) -> None:
    mine = vendor.user("mine", "E1")
    vendor.user("a", None, "same@x.se")
    vendor.user("b", None, "same@x.se")  # the name alone would be a conflict
    lookups = vendor.lookups()
    lookups._combined_filter = False

    assert lookups._find_existing("Users", "E1", {"emails.value": "same@x.se"})["id"] == mine  # type: ignore[index]
    assert vendor.searches() == 1
    with pytest.raises(Conflict, match=r"2 vendor accounts match the same emails\.value"):
        lookups._find_existing("Users", "E2", {"emails.value": "same@x.se"})


@pytest.mark.parametrize("status", [400, 501])
def test_a_vendor_that_cannot_combine_filters_is_asked_one_by_one(
    vendor: Vendor, status: int
) -> None:
    anna = vendor.user("anna@edu.example.se")
    vendor.refusing(refuse_when(status, lambda f: " or " in f))
    lookups = vendor.lookups()

    assert lookups._find_existing("Users", "E1", NAMES)["id"] == anna  # type: ignore[index]
    assert lookups._combined_filter is False
    assert vendor.searches() == 1 + 3  # the refused one, then externalId, userName, e-mail
    assert lookups._find_existing("Users", "E2", NAMES)["id"] == anna  # type: ignore[index]
    assert vendor.searches() == 4 + 3  # not asked to combine again


@pytest.mark.parametrize("status", [401, 404, 409])
def test_other_refusals_of_a_combined_filter_are_errors(vendor: Vendor, status: int) -> None:
    vendor.refusing(refuse_when(status, lambda f: " or " in f))
    lookups = vendor.lookups()

    with pytest.raises(ScimError):
        lookups._find_existing("Users", "E1", NAMES)
    assert lookups._combined_filter is True


@pytest.mark.parametrize("status", [400, 501])
def test_a_vendor_that_cannot_filter_on_external_id_is_asked_by_name(
    vendor: Vendor, status: int
) -> None:
    vendor.user("x", "E1")  # cannot be found by externalId at this vendor
    anna = vendor.user("anna@edu.example.se")
    vendor.refusing(refuse_when(status, lambda f: "externalId" in f))
    lookups = vendor.lookups()

    assert lookups._find_existing("Users", "E1", NAMES)["id"] == anna  # type: ignore[index]
    assert (lookups._combined_filter, lookups._external_id_filter) == (False, False)
    before = vendor.searches()
    assert lookups._find_existing("Users", "E1", NAMES)["id"] == anna  # type: ignore[index]
    assert vendor.searches() == before + 2  # userName and e-mail only


@pytest.mark.parametrize("status", [401, 404, 409])
def test_other_refusals_of_an_external_id_filter_are_errors(vendor: Vendor, status: int) -> None:
    vendor.refusing(refuse_when(status, lambda f: f.startswith("externalId eq")))
    lookups = vendor.lookups()
    lookups._combined_filter = False

    with pytest.raises(ScimError):
        lookups._find_existing("Users", "E1", NAMES)
    assert lookups._external_id_filter is True


@pytest.mark.parametrize("status", [400, 501])
def test_an_email_the_vendor_cannot_filter_on_is_skipped(vendor: Vendor, status: int) -> None:
    anna = vendor.user("anna@edu.example.se", None, "anna@edu.example.se")
    vendor.refusing(refuse_when(status, lambda f: f.startswith("emails.value")))
    lookups = vendor.lookups()
    lookups._combined_filter = False

    assert lookups._find_existing("Users", "E1", NAMES)["id"] == anna  # type: ignore[index]
    assert lookups._find_existing("Users", "E1", {"emails.value": "anna@edu.example.se"}) is None


@pytest.mark.parametrize(
    ("status", "refused"),
    [(400, "userName"), (501, "userName"), (401, "emails.value"), (409, "userName")],
)
def test_a_name_filter_refused_otherwise_is_an_error(
    vendor: Vendor, status: int, refused: str
) -> None:
    vendor.refusing(refuse_when(status, lambda f: f.startswith(refused)))
    lookups = vendor.lookups()
    lookups._combined_filter = False

    with pytest.raises(ScimError):
        lookups._find_existing("Users", "E1", NAMES)


def test_search_one_finds_none_one_or_a_conflict(vendor: Vendor) -> None:
    anna = vendor.user("anna", None, "anna@x.se")
    vendor.user("bo", None, "same@x.se")
    vendor.user("cia", None, "same@x.se")
    lookups = vendor.lookups()

    assert lookups._search_one("Users", 'userName eq "nobody"', "userName") is None
    assert lookups._search_one("Users", 'userName eq "anna"', "userName")["id"] == anna  # type: ignore[index]
    with pytest.raises(Conflict, match="2 vendor users match the same e-mail"):
        lookups._search_one("Users", 'emails.value eq "same@x.se"', "e-mail")


def test_a_duplicate_external_id_at_the_vendor_is_a_conflict(vendor: Vendor) -> None:
    vendor.user("a", "E1")
    vendor.user("b", "E1")
    lookups = vendor.lookups()

    with pytest.raises(Conflict, match="2 vendor accounts carry the same externalId"):
        lookups._find_existing("Users", "E1", {"userName": "nobody"})
    lookups._combined_filter = False
    with pytest.raises(Conflict, match="2 vendor accounts carry the same externalId"):
        lookups._find_existing("Users", "E1", {"userName": "nobody"})
