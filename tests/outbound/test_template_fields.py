"""Email templates reach only an allow-list of plain fields: never a mailbox password, a password hash
or any other attribute of the objects behind them.

Saving a template that names anything else is refused, with the name, in the editor and the API; a
template saved before the rules existed renders the allowed values only and is reported; the
admin-written texts that are not templates (signature, auto-reply) go out as written, never rendered.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Customer, CustomerEmail, Ticket
from buzon.outbound.models import EmailTemplate
from buzon.outbound.sender import deliver_due
from tests.outbound.conftest import SMTP_PASSWORD
from tests.support.browser import screenshot, sign_in

pytestmark = pytest.mark.django_db
FORBIDDEN = "{{ account.get_password }}"


@pytest.fixture
def admin(db: Any) -> Any:
    return get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True,
                                                first_name="Ada", last_name="Admin")


@pytest.fixture
def api(admin: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin)
    return client


def _received(server: Any) -> EmailMessage:
    message = message_from_bytes(server.messages[-1].data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text_of(message: EmailMessage) -> str:
    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return str(message["Subject"]) + "\n" + "\n".join(parts)


@pytest.mark.parametrize(("part", "source", "named"), [
    ("body", "Your password: " + FORBIDDEN, "account.get_password"),
    ("subject", "Hi {{ user.password }}", "user.password"),
    ("body_html", "<p>{{ account.password_encrypted }}</p>", "account.password_encrypted"),
    ("body", "{% if user.password %}x{% endif %}", "user.password"),
    ("body", "{{ record.subject|default:account.get_password }}", "account.get_password"),
    ("body", "{% debug %}", "{% debug %}"),
    ("body", "{% with p=account.get_password %}{{ p }}{% endwith %}", "{% with %}"),
    ("body", "{{ record.subject|safe }}", "|safe"),
    ("body", "{{ customer.emails.all }}", "customer.emails.all"),
])
def test_the_api_refuses_a_template_naming_anything_outside_the_allow_list(api: APIClient, part: str, source: str,
                                                                          named: str) -> None:
    fields = {"key": "k", "language": "en", "name": "n", "subject": "s", "body": "b", **{part: source}}
    response = api.post("/api/v1/email-templates/", fields, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [part]
    assert named in response.json()[part][0]
    assert not EmailTemplate.objects.exists()


def test_the_api_refuses_the_change_too_and_speaks_spanish(api: APIClient) -> None:
    template = EmailTemplate.objects.create(key="k", language="es", name="n", subject="s", body="Hola")
    response = api.patch(f"/api/v1/email-templates/{template.pk}/", {"body": "Clave: " + FORBIDDEN}, format="json",
                         HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 400
    assert response.json()["body"] == ["account.get_password no es un campo que las plantillas de correo puedan usar."]
    template.refresh_from_db()
    assert template.body == "Hola"


def test_allowed_fields_save_and_preview(api: APIClient) -> None:
    ticket = Ticket.objects.create(subject="Pedido 77")
    body = ("{{ customer.name|default:'cliente' }}, {{ record.subject|upper }} (#{{ record.pk }}) "
            "{% if user.first_name %}{{ user.get_full_name }}{% endif %} {{ account.email_address }}")
    created = api.post("/api/v1/email-templates/", {"key": "k", "language": "en", "name": "n",
                                                    "subject": "Re {{ record }}", "body": body}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["problems"] == {}
    preview = api.post(f"/api/v1/email-templates/{created.json()['id']}/preview/", {"type": "ticket", "id": ticket.pk},
                       format="json")
    assert preview.json()["text"] == f"cliente, PEDIDO 77 (#{ticket.pk}) Ada Admin "


def test_the_editor_refuses_it_naming_the_field(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    form = {"name": "Clave", "key": "clave", "language": "es", "subject": "Hola", "body": "Clave: " + FORBIDDEN}
    page = client.post("/settings/email/templates/new/", form, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "account.get_password no es un campo que las plantillas de correo puedan usar." in page
    assert not EmailTemplate.objects.exists()
    # The editor lists what may be used, in the reader's language.
    editor = client.get("/settings/email/templates/new/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "{{ customer.name }}" in editor and "El nombre del cliente" in editor
    assert "get_password" not in editor


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_editor_refuses_it_in_the_browser(browser_page: Any, admin: Any) -> None:
    page = browser_page
    sign_in(page, "admin", "admin-pass")
    page.goto("/settings/email/templates/new/")
    assert "{{ account.email_address }}" in page.inner_text("#template-fields")
    page.fill("#id_name", "Clave")
    page.fill("#id_key", "clave")
    page.select_option("#id_language", "en")
    page.fill("#id_subject", "Hola")
    page.fill("#id_body", "Your mailbox password is " + FORBIDDEN)
    page.click("#save")
    page.wait_for_load_state()
    feedback = page.inner_text("#id_body ~ .invalid-feedback, #id_body + .invalid-feedback")
    assert "account.get_password is not a field email templates can use." in feedback
    screenshot(page, "outbound-template-refused-field")
    assert not EmailTemplate.objects.exists()


def test_mail_from_a_template_carries_the_allowed_values_and_never_a_secret(
        api: APIClient, admin: Any, smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    """A template saved before the allow-list (straight into the database) still leaks nothing."""
    account = make_account(smtp_starttls)
    customer = Customer.objects.create(name="Lucía Pérez")
    CustomerEmail.objects.create(customer=customer, address="lucia@example.org")
    ticket = Ticket.objects.create(subject="Factura 2024-17", customer=customer)
    EmailTemplate.objects.create(
        key="leaky", language="en", name="Leaky", subject="{{ record.subject }} {{ user.password }}",
        body=("Hello {{ customer.name }} <{{ customer.primary_email }}>, {{ user.first_name }} from "
              "{{ account.email_address }} here. pw=[" + FORBIDDEN + "] hash=[{{ user.password }}] "
              "enc=[{{ account.password_encrypted }}] call=[{{ account.set_password }}]"),
        body_html="<p>{{ customer.name }} {{ account.get_password }}</p>")
    response = api.post("/api/v1/messages/send/", {"to": ["lucia@example.org"], "template": "leaky", "language": "en",
                                                   "account": account.pk,
                                                   "record": {"type": "ticket", "id": ticket.pk}}, format="json")
    assert response.status_code == 202, response.content
    deliver_due(pool=pool)
    message = _received(smtp_starttls)
    seen = _text_of(message)
    assert "Hello Lucía Pérez <lucia@example.org>, Ada from sender@example.test here." in seen
    assert "pw=[] hash=[] enc=[] call=[]" in seen
    assert str(message["Subject"]).startswith("Factura 2024-17")
    admin.refresh_from_db()
    account.refresh_from_db()
    raw = smtp_starttls.messages[-1].data
    for secret in (SMTP_PASSWORD, admin.password, admin.password.split("$")[-1], account.password_encrypted):
        assert secret.encode() not in raw and secret not in seen
    # ...and it is reported: in the API and on the template list.
    listed = api.get("/api/v1/email-templates/").json()
    problems = (listed["results"] if isinstance(listed, dict) else listed)[0]["problems"]
    assert "account.get_password is not a field email templates can use." in problems["body"]
    assert "user.password is not a field email templates can use." in problems["subject"]
    client = Client()
    client.force_login(admin)
    assert "Names fields templates may not use" in client.get("/settings/email/templates/").content.decode()


def test_a_signature_is_sent_as_written(api: APIClient, smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, add_signature=True, signature="Soporte " + FORBIDDEN)
    response = api.post("/api/v1/messages/send/", {"to": ["c@example.org"], "subject": "Hola", "text": "Cuerpo",
                                                   "account": account.pk}, format="json")
    assert response.status_code == 202, response.content
    deliver_due(pool=pool)
    seen = _text_of(_received(smtp_starttls))
    assert "Soporte " + FORBIDDEN in seen and SMTP_PASSWORD not in seen


def test_an_auto_reply_is_sent_as_written() -> None:
    from buzon.inbound import pipeline
    from buzon.messages.models import Direction, Message
    from tests.inbound.helpers import mail, store_raw, support_account

    account = support_account(auto_reply_enabled=True, auto_reply_message="Gracias. " + FORBIDDEN,
                              outgoing_enabled=True, default_outgoing=True, smtp_host="localhost")
    account.set_password("mailbox-secret")
    account.save()
    pipeline.run_pipeline(store_raw(mail(subject="Consulta"), account).pk)
    reply = Message.objects.get(direction=Direction.OUTGOING)
    assert reply.text == "Gracias. " + FORBIDDEN
