"""Knowledge retrieval: similar past tickets, what fixed them, and which runbook applies."""
