"""Routes of /api/v1/: each context's viewsets register on the one router here."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from buzon.api import audit as api_audit
from buzon.api import canned as api_canned
from buzon.api import conversations as api_conversations
from buzon.api import crm as api_crm
from buzon.api import mailboxes as api_mailboxes
from buzon.api import messages as api_messages
from buzon.api import notes as api_notes
from buzon.api import outbound as api_outbound
from buzon.api import outbound_batch as api_outbound_batch
from buzon.api import people as api_people
from buzon.api import search as api_search
from buzon.api import stores as api_stores
from buzon.api import tokens as api_tokens

router = DefaultRouter()

# Email configuration (buzon/api/mailboxes.py, buzon/api/stores.py).
router.register("email-domains", api_mailboxes.EmailDomainViewSet, basename="email-domain")
router.register("email-accounts", api_mailboxes.EmailAccountViewSet, basename="email-account")
router.register("stores", api_stores.StoreViewSet, basename="store")
router.register("audit", api_audit.AuditEntryViewSet, basename="audit")  # buzon/api/audit.py, staff only
router.register("tokens", api_tokens.ApiTokenViewSet, basename="token")  # the user's own (buzon/api/tokens.py)

# Mail brought in and sent (buzon/api/messages.py).
router.register("messages", api_messages.MessageViewSet, basename="message")

# Outgoing mail (buzon/api/outbound.py).
router.register("email-templates", api_outbound.EmailTemplateViewSet, basename="email-template")

# Records mail feeds (buzon/api/crm.py).
router.register("customers", api_crm.CustomerViewSet, basename="customer")
router.register("contacts", api_crm.ContactViewSet, basename="contact")
router.register("tickets", api_crm.TicketViewSet, basename="ticket")
router.register("job-applicants", api_crm.JobApplicantViewSet, basename="job-applicant")
router.register("agents", api_crm.AgentViewSet, basename="agent")
router.register("agent-groups", api_crm.AgentGroupViewSet, basename="agent-group")
router.register("users", api_people.UserViewSet, basename="user")  # people (buzon/api/people.py)
router.register("notifications", api_crm.NotificationViewSet, basename="notification")

# Listed before the router's routes, so "messages/send/" is never read as a message id.
urlpatterns: list[URLPattern | URLResolver] = [
    path("messages/send/", api_outbound.SendView.as_view(), name="message-send"),
    path("messages/send/batch/", api_outbound_batch.BatchSendView.as_view(), name="message-send-batch"),
    path("messages/<int:pk>/pipeline/", api_crm.MessagePipelineView.as_view(), name="message-pipeline"),
    path("messages/<int:pk>/delivery/", api_outbound.DeliveryView.as_view(), name="message-delivery"),
    path("sender-confirmations/<int:account_id>/<str:step>/", api_outbound.SenderConfirmationView.as_view(),
         name="sender-confirmation"),
    path("dkim/<int:domain_id>/", api_outbound.DkimView.as_view(), name="dkim"),
    path("search/", api_search.SearchView.as_view(), name="search"),  # full-text (buzon/api/search.py)
    # Conversations, the unit of work (buzon/api/conversations.py; actions in buzon.workspace).
    path("conversations/", api_conversations.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/bulk/", api_conversations.ConversationBulkView.as_view(), name="conversation-bulk"),
    path("conversations/<int:pk>/", api_conversations.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<int:pk>/reply/", api_conversations.ConversationReplyView.as_view(),
         name="conversation-reply"),
    path("conversations/<int:pk>/status/", api_conversations.ConversationStatusView.as_view(),
         name="conversation-status"),
    path("conversations/<int:pk>/assign/", api_conversations.ConversationAssignView.as_view(),
         name="conversation-assign"),
    path("conversations/<int:pk>/forward/", api_conversations.ConversationForwardView.as_view(),
         name="conversation-forward"),
    path("conversations/<int:pk>/merge/", api_conversations.ConversationMergeView.as_view(),
         name="conversation-merge"),
    path("conversations/<int:pk>/move-out/", api_conversations.ConversationMoveOutView.as_view(),
         name="conversation-move-out"),
    # Internal notes (buzon/api/notes.py) and canned responses (buzon/api/canned.py).
    path("conversations/<int:pk>/notes/", api_notes.ConversationNotesView.as_view(), name="conversation-notes"),
    path("canned-responses/", api_canned.CannedResponseListView.as_view(), name="canned-response-list"),
    path("canned-responses/<int:pk>/", api_canned.CannedResponseDetailView.as_view(),
         name="canned-response-detail"),
]
urlpatterns += router.urls
