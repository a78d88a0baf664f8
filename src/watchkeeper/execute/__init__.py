"""Act: runbooks (YAML), parameter binding, executors, and the step → verify → rollback engine."""
