"""The vendor side: a SCIM 2.0 client and the payloads it sends."""
