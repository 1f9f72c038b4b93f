"""gridwatch: grid-management dashboard for comprehensive social-governance centres (综治中心)."""

__version__ = "0.1.0"
