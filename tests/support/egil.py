"""An EGIL target's config and a small school roster, for the EGIL tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.config import EgilTargetConfig, ExternalIdConfig
from connector.mapping.profile import load_mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person, Placement, School, StudyGroup
from connector.people.scope import Scoped
from connector.targets.egil.ids import EgilIds
from connector.targets.egil.objects import EgilBuilder
from tests.support.ids import ID_KEY
from tests.support.paths import REPO
from tests.support.workspace import Workspace

EGIL_MAPPING = REPO / "mappings" / "egil.yaml"
NORR, SODER = "11111111", "22222222"
SCHOOLS = (School(NORR, "Norrskolan", ("GR",)), School(SODER, "Söderskolan", ("GY",)))
IDS = ExternalIdMaker(ExternalIdConfig(key=ID_KEY))
EGIL_IDS = EgilIds(IDS)
API_KEY = "egil-test-key-7c1"


def egil_config(base_url: str = "https://egil.example/scim/v2", **extra: Any) -> EgilTargetConfig:
    data: dict[str, Any] = {
        "kind": "egil",
        "name": "egil",
        "base_url": base_url,
        "token": "t0ken",
        "mapping": str(EGIL_MAPPING),
        "organisation": {"display_name": "Exempels kommun", "municipality_code": "1234"},
        "school_unit_groups": {SODER: "Gymnasiet"},
        "employment_roles": {"Lärare": "Lärare", "Rektor": "Rektor"},
        **extra,
    }
    return EgilTargetConfig.model_validate(data)


def student(
    key: str,
    school: str = NORR,
    class_name: str | None = "7A",
    *,
    groups: tuple[StudyGroup, ...] = (),
    given: str = "Elev",
    family: str | None = None,
    protected: bool = False,
) -> Person:
    placement = Placement(school, "GR" if school == NORR else "GY", "7", class_name)
    return Person(
        key,
        Kind.STUDENT,
        given,
        f"Nr{key}" if family is None else family,
        f"{key.lower()}@elev.example.se",
        None,
        protected,
        (placement,),
        study_groups=groups,
    )


def teacher(
    key: str,
    *schools: str,
    role: str = "Lärare",
    teaches: tuple[StudyGroup, ...] = (),
    protected: bool = False,
) -> Person:
    placements = tuple(Placement(code, role=role) for code in schools or (NORR,))
    return Person(
        key,
        Kind.STAFF,
        "Lärar",
        f"Nr{key}",
        f"{key.lower()}@skola.example.se",
        None,
        protected,
        placements,
        study_groups=teaches,
    )


def taught(name: str, school: str = NORR, kind: str = "Undervisning") -> StudyGroup:
    return StudyGroup(school, name, kind, "teacher")  # type: ignore[arg-type]


def studied(name: str, school: str = NORR) -> StudyGroup:
    return StudyGroup(school, name, "Undervisning", "student")


def scoped(*persons: Person, protected: tuple[Person, ...] = ()) -> Scoped:
    return Scoped(
        persons=list(persons),
        schools={s.code: s for s in SCHOOLS},
        protected=list(protected),
    )


def builder(**extra: Any) -> EgilBuilder:
    return EgilBuilder(egil_config(**extra), load_mapping(EGIL_MAPPING), IDS)


def uuid_of(person: Person) -> str:
    return EGIL_IDS.person(IDS.for_person(person))


class EgilWorkspace(Workspace):
    """A workspace whose one target is an EGIL server."""

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root, url)
        self.other_targets: list[dict[str, Any]] = []  # beside the EGIL one, in one config
        self.target: dict[str, Any] = {
            "kind": "egil",
            "name": "egil",
            "base_url": url,
            "api_key": API_KEY,
            "max_retries": 0,
            "organisation": {"display_name": "Exempels kommun", "municipality_code": "1234"},
            "school_unit_groups": {SODER: "Gymnasiet"},
            "employment_roles": {"Lärare": "Lärare", "Rektor": "Rektor"},
        }

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["vendor"], config["mapping"]
        config["targets"] = [*self.other_targets, self.target]
        config["lifecycle"] = {"delete_after_days": 0}
        return config
