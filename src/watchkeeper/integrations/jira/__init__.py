"""Jira Service Management (REST v3): issues out, transitions / assignee / comments back by webhook."""
