"""The Django admin's app configuration, pointing it at the portal's own admin site
(accounts.admin_site.PortalAdminSite). Listed in INSTALLED_APPS in place of
"django.contrib.admin"; kept apart from admin_site.py because it is imported while the app
registry is still loading, before any model may be."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.PortalAdminSite"
