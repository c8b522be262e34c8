"""The ITSM integration: the HTTP scoring service, its auth and audit trail, and the write-back."""
