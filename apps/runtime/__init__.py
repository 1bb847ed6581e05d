"""The governed runtime: tasks, planners, the gateway every agent action passes, tools and approvals."""
