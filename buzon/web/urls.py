from django.contrib.auth import views as auth_views
from django.urls import path

from buzon.web import ops, views, views_accounts, views_domains, views_help, views_inbox, views_password, views_stores

app_name = "web"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("inbox/", views_inbox.inbox, name="inbox"),
    path("inbox/<int:pk>/", views_inbox.message_detail, name="inbox-message"),
    path("inbox/attachments/<int:pk>/", views_inbox.attachment_download, name="attachment"),
    path("customers/", views_inbox.customers, name="customers"),
    path("tickets/", views_inbox.tickets, name="tickets"),
    path("job-applicants/", views_inbox.job_applicants, name="job-applicants"),
    path("notifications/", views_inbox.notification_list, name="notifications"),
    path("notifications/read/", views_inbox.notifications_read, name="notifications-read"),
    path("agent/status/", views_inbox.agent_status, name="agent-status"),
    path("passwords/", views_password.pending_passwords, name="pending-passwords"),
    path("settings/email/", views.settings_index, name="settings"),
    path("settings/email/accounts/", views_accounts.account_list, name="account-list"),
    path("settings/email/accounts/new/", views_accounts.account_form, name="account-new"),
    path("settings/email/accounts/test/", views_accounts.account_test, name="account-test"),
    path("settings/email/accounts/preset-hint/", views_accounts.preset_hint, name="account-preset-hint"),
    path("settings/email/accounts/<int:pk>/", views_accounts.account_view, name="account-view"),
    path("settings/email/accounts/<int:pk>/edit/", views_accounts.account_form, name="account-edit"),
    path("settings/email/accounts/<int:pk>/test/", views_accounts.account_test, name="account-test-saved"),
    path("settings/email/accounts/<int:pk>/status/", views_accounts.account_status, name="account-status"),
    path("settings/email/accounts/<int:pk>/sync/", views_accounts.account_sync_now, name="account-sync"),
    path("settings/email/accounts/<int:pk>/delete/", views_accounts.account_delete, name="account-delete"),
    path("settings/email/accounts/<int:pk>/default/<str:direction>/", views_accounts.account_make_default,
         name="account-default"),
    path("settings/email/domains/", views_domains.domain_list, name="domain-list"),
    path("settings/email/domains/new/", views_domains.domain_form, name="domain-new"),
    path("settings/email/domains/<int:pk>/edit/", views_domains.domain_form, name="domain-edit"),
    path("settings/email/domains/<int:pk>/delete/", views_domains.domain_delete, name="domain-delete"),
    path("settings/stores/", views_stores.store_list, name="store-list"),
    path("settings/stores/new/", views_stores.store_form, name="store-new"),
    path("settings/stores/<int:pk>/edit/", views_stores.store_form, name="store-edit"),
    path("settings/stores/<int:pk>/delete/", views_stores.store_delete, name="store-delete"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("settings/processes/", ops.processes, name="processes"),
    path("help/troubleshooting/", views_help.troubleshooting, name="troubleshooting"),
    path("help/troubleshooting/<slug:slug>/", views_help.troubleshooting_topic_page, name="troubleshooting-topic"),
]
