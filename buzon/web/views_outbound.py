"""Outgoing mail pages: compose, a sent message's delivery log, email templates, sender confirmation,
and deliverability (DKIM, SPF, DMARC) per domain. The work happens in buzon.outbound; these only
parse forms and show results."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from buzon.crm import roles
from buzon.mailboxes.errors import MailServerError
from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.messages import targets
from buzon.messages.models import Direction, Message
from buzon.messages.outbox import MAX_ID, SendRefused, queue_outgoing
from buzon.outbound import confirm, deliverability, mail_templates, template_fields
from buzon.outbound.forms import ComposeForm, ConfirmCodeForm, EmailTemplateForm, PreviewForm, find_record
from buzon.outbound.models import DeliveryAttempt, DkimKey, EmailTemplate, OutgoingEmail
from buzon.outbound.smtp import SendFailed
from buzon.web.access import staff_required


def _initial(request: HttpRequest) -> dict[str, object]:
    """Prefill from ?to=<addresses> (a new mail from a customer's card), ?record=ticket:12 and
    ?reply=<message id> (a reply on a record or conversation).

    Only what the user may see is prefilled: another store's record or message gives the same empty
    form as one that does not exist. ``to`` is only text the user could type themselves."""
    initial: dict[str, object] = {}
    if request.GET.get("to", "").strip():
        initial["to"] = request.GET["to"].strip()[:2000]
    key, _colon, number = request.GET.get("record", "").partition(":")
    if find_record(request.user, key, number) is not None:
        initial.update(record_type=key, record_id=int(number))
    reply = request.GET.get("reply", "")
    parent = (roles.visible_messages(request.user).filter(pk=int(reply)).first()
              if reply.isdigit() and 0 < int(reply) <= MAX_ID else None)
    if parent is not None:
        initial["in_reply_to"] = parent.pk
        initial["to"] = ", ".join(parent.reply_to) or parent.from_address
        subject = parent.subject
        initial["subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        if parent.record_type_id and parent.record_id:
            model = parent.record_type.model_class() if parent.record_type else None
            target = targets.target_for(model) if model is not None else None
            if target is not None:
                initial.update(record_type=target.key, record_id=parent.record_id)
    return initial


def _unconfirmed(user: object) -> list[EmailAccount]:
    accounts = roles.visible_accounts(user).filter(outgoing_enabled=True)
    return [a for a in accounts if not confirm.is_confirmed(a)]


@login_required
def compose(request: HttpRequest) -> HttpResponse:
    """Every reference the form carries (account, record, message replied to) is resolved among what
    the user may see or send through: ComposeForm for the account and record, queue_outgoing for the
    reply; one that is not theirs is refused with the words used for one that does not exist."""
    form = ComposeForm(request.POST or None, request.FILES or None, initial=_initial(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            message = queue_outgoing(
                to=data["to"], cc=data["cc"], bcc=data["bcc"], subject=data["subject"], text=data["text"],
                account=data["account"], record=form.record(), user=request.user,
                in_reply_to=data.get("in_reply_to"), attachments=form.attachment_list())
        except SendRefused as refused:
            form.add_refusal(refused)
        else:
            messages.success(request, _("Your message is queued and will be sent in a moment."))
            return redirect("web:outgoing", pk=message.pk)
    record = form.record() if form.is_bound and form.is_valid() else None
    return render(request, "web/outbound/compose.html", {
        "form": form, "unconfirmed": _unconfirmed(request.user), "record": record,
        "breadcrumbs": [(_("Compose"), None)]})


@login_required
def compose_template(request: HttpRequest) -> HttpResponse:
    """htmx: the subject and message filled from the chosen template and the record being answered."""
    chosen = request.GET.get("template", "")
    template = EmailTemplate.objects.filter(pk=int(chosen)).first() if chosen.isdigit() and int(chosen) <= MAX_ID \
        else None
    # Another store's record renders exactly like one that does not exist: without it.
    record = find_record(request.user, request.GET.get("record_type", ""), request.GET.get("record_id", ""))
    form = ComposeForm(initial={"subject": request.GET.get("subject", ""), "text": request.GET.get("text", "")})
    if template is not None:
        try:
            rendered = mail_templates.render(template, mail_templates.context_for(record, request.user))
        except mail_templates.TemplateError as exc:  # saved before the allow-list: a tag it refuses
            form.errors["text"] = form.error_class([str(exc)])
        else:
            form = ComposeForm(initial={"subject": rendered.subject, "text": rendered.text})
    return render(request, "web/outbound/_compose_body.html", {"form": form})


@login_required
def outgoing_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(roles.visible(Message.objects.select_related("account"), request.user),
                                pk=pk, direction=Direction.OUTGOING)
    outgoing = OutgoingEmail.objects.filter(pk=pk).first()
    attempts = DeliveryAttempt.objects.filter(outgoing_id=pk)
    return render(request, "web/outbound/outgoing.html", {
        "message": message, "outgoing": outgoing, "attempts": attempts,
        "breadcrumbs": [(_("Sent mail"), None), (message.subject or _("(no subject)"), None)]})


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    templates = [(template, mail_templates.template_problems(template)) for template in EmailTemplate.objects.all()]
    return render(request, "web/outbound/templates.html", {
        "templates": templates, "breadcrumbs": [(_("Email templates"), None)]})


@staff_required
def template_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    template = get_object_or_404(EmailTemplate, pk=pk) if pk else EmailTemplate()
    form = EmailTemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Template %(name)s saved.") % {"name": form.instance.name})
        return redirect("web:template-edit", pk=form.instance.pk)
    title = template.name if pk else _("New email template")
    return render(request, "web/outbound/template_form.html", {
        "form": form, "template": template, "preview_form": PreviewForm(initial=_latest_record()),
        "field_groups": template_fields.GROUPS, "allowed_tags": template_fields.ALLOWED_TAGS,
        "allowed_filters": template_fields.ALLOWED_FILTERS, "title": title,
        "problems": mail_templates.template_problems(template) if pk and request.method != "POST" else {},
        "breadcrumbs": [(_("Email templates"), reverse("web:template-list")), (title, None)]})


def _latest_record() -> dict[str, object]:
    for key, _label in targets.targets():
        target = targets.get_target(key)
        latest = target.model._default_manager.order_by("-pk").first() if target else None
        if latest is not None:
            return {"record_type": key, "record_id": latest.pk}
    return {}


@staff_required
def template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the template rendered with a real record (the saved template, or the unsaved edits)."""
    template = get_object_or_404(EmailTemplate, pk=pk)
    preview = PreviewForm(request.POST)
    edited = EmailTemplateForm(request.POST, instance=copy.copy(template))  # never saved from here
    context: dict[str, object] = {"preview_form": preview}
    if preview.is_valid():
        target = targets.get_target(preview.cleaned_data["record_type"])
        record = target.get(preview.cleaned_data["record_id"]) if target else None
        if record is None:
            context["error"] = _("There is no such record.")
        else:
            source = edited.instance if edited.is_valid() else template
            try:
                context["rendered"] = mail_templates.render(source, mail_templates.context_for(record, request.user))
            except mail_templates.TemplateError as exc:
                context["error"] = str(exc)
    return render(request, "web/outbound/_template_preview.html", context)


@staff_required
def sender_confirmation(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(EmailAccount, pk=pk)
    code_form = ConfirmCodeForm(request.POST if request.POST.get("action") == "code" else None)
    if request.method == "POST" and request.POST.get("action") == "send":
        try:
            confirm.start(account)
        except MailServerError as exc:
            messages.error(request, exc.message())
        except SendFailed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("A link and a code were sent to %(address)s.")
                             % {"address": account.email_address})
        return redirect("web:sender-confirmation", pk=pk)
    if code_form.is_bound and code_form.is_valid():
        if confirm.confirm_code(account, code_form.cleaned_data["code"]):
            messages.success(request, _("%(address)s is confirmed as a sender.") % {"address": account.email_address})
            return redirect("web:sender-confirmation", pk=pk)
        code_form.add_error("code", _("That code is not right, or has been tried too often. Ask for a new one."))
    return render(request, "web/outbound/confirm_sender.html", {
        "account": account, "needed": confirm.needs_confirmation(account), "confirmed": confirm.is_confirmed(account),
        "code_form": code_form, "breadcrumbs": [(_("Sender confirmation"), None), (account.email_address, None)]})


@staff_required
def deliverability_list(request: HttpRequest) -> HttpResponse:
    keyed = set(DkimKey.objects.values_list("domain_id", flat=True))
    domains = [(d, d.pk in keyed) for d in EmailDomain.objects.all()]
    return render(request, "web/outbound/deliverability_list.html", {
        "domains": domains, "breadcrumbs": [(_("Deliverability"), None)]})


@staff_required
def deliverability_domain(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(EmailDomain, pk=pk)
    if request.method == "POST" and request.POST.get("action") == "generate":
        deliverability.generate_key(domain)
        messages.success(request, _("A new DKIM key was created. Publish the DKIM record below."))
        return redirect("web:deliverability-domain", pk=pk)
    records = deliverability.expected_records(domain)
    checked = request.method == "POST" and request.POST.get("action") == "check"
    if checked:
        records = deliverability.check(records)
    template = "web/outbound/_dns_records.html" if request.headers.get("HX-Request") else \
        "web/outbound/deliverability_domain.html"
    return render(request, template, {
        "domain": domain, "records": records, "checked": checked,
        "has_key": DkimKey.objects.filter(domain=domain).exists(),
        "breadcrumbs": [(_("Deliverability"), reverse("web:deliverability")), (domain.domain_name, None)]})
