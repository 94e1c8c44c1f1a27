"""connector: keeps a municipality's students and school staff in step with a vendor's SCIM API."""

__version__ = "0.1.0"
