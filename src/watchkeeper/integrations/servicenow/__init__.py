"""ServiceNow (Table API): incidents out, state / assignee / work-note changes back."""
