"""Django admin for deployments: deliberately empty.

Deployments live in each client's schema, and the Django admin runs on the
platform host, in the public schema, where those tables do not exist; an
admin page for them would fail. Support reads a client's deployments and their
history through the portals; rollouts (public) are in the factory's admin.
"""
