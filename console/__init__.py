"""The web console for campaign managers, QA reviewers, auditors and admins (server-rendered, role-based)."""
