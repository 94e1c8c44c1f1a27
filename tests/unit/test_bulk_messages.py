"""Bulk requests and answers (RFC 7644 section 3.7): batching within limits, matching results."""

from __future__ import annotations

from connector.targets.scim.bulk import BulkLimits, BulkOperation, bulk_request, parse_bulk_response


def test_batches_stay_within_the_operation_and_payload_limits() -> None:
    limits = BulkLimits(max_operations=3, max_payload_bytes=1_000)
    assert limits.batches([10] * 7) == [range(0, 3), range(3, 6), range(6, 7)]
    # 400-byte operations: two fit under 1,000 bytes with the envelope, three do not
    assert limits.batches([400] * 5) == [range(0, 2), range(2, 4), range(4, 5)]
    # one operation over the limit goes alone (and only it is refused)
    assert limits.batches([10, 5_000, 10]) == [range(0, 1), range(1, 2), range(2, 3)]
    assert limits.batches([]) == []


def test_every_operation_has_a_bulk_id_and_its_version() -> None:
    request = bulk_request(
        [
            BulkOperation("POST", "/Users", {"userName": "a"}),
            BulkOperation("PATCH", "/Users/1", {"Operations": []}, version='W/"3"'),
            BulkOperation("DELETE", "/Users/2"),
        ]
    )
    operations = request["Operations"]
    assert [o["bulkId"] for o in operations] == ["op0", "op1", "op2"]
    assert operations[1]["version"] == 'W/"3"'
    assert "data" not in operations[2] and "version" not in operations[0]


def test_results_are_matched_by_bulk_id_whatever_their_order() -> None:
    body = {
        "Operations": [
            {
                "bulkId": "op1",
                "status": "409",
                "response": {"detail": "taken", "scimType": "uniqueness"},
            },
            {
                "bulkId": "op0",
                "status": "201",
                "location": "https://v/Users/abc",
                "version": 'W/"1"',
            },
        ]
    }
    first, second, third = parse_bulk_response(body, 3)
    assert first.ok and first.resource_id == "abc" and first.version == 'W/"1"'
    assert second.status == 409 and second.scim_type == "uniqueness" and not second.ok
    assert third.status is None and not third.ok  # left out of the answer: not done


def test_results_without_bulk_ids_are_taken_in_order() -> None:
    body = {"Operations": [{"status": 200}, {"status": "204 No Content"}]}
    assert [r.status for r in parse_bulk_response(body, 2)] == [200, 204]
    assert [r.status for r in parse_bulk_response({"Operations": "junk"}, 2)] == [None, None]
