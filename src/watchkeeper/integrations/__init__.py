"""Integrations: notifiers and ITSM sync, one sub-package per external system."""
