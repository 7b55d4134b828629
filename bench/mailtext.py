"""The words of the benchmarks' mail: what customers and a shop write to each other, in Spanish and
English, and the HTML that Outlook- and Gmail-style clients wrap it in (styles, signature, logo).

Only text here; bench/mailgen.py puts it into MIME. Every choice comes from the caller's seeded
random.Random, so the same seed gives the same mail.
"""

from __future__ import annotations

import random
from html import escape

FIRST = {
    "es": "Lucía María José Javier Carmen Álvaro Begoña Íñigo Nuria Sofía Andrés Mónica Raúl Pilar Jesús Ana "
          "Martín Inés Óscar Rocío".split(),
    "en": "Emma Oliver Sarah James Chloe Daniel Grace Thomas Lucy Jack Hannah George Amelia Harry Megan".split(),
}
LAST = {
    "es": "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz Hernández "
          "Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil Ramírez "
          "Serrano Blanco Suárez Molina Castro Ortiz Rubio Marín Sanz Núñez Iglesias Medina Garrido".split(),
    "en": "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White "
          "Roberts Green Hall Wood Jackson Clarke".split(),
}
DOMAINS = ("gmail.com hotmail.es yahoo.es outlook.com telefonica.net movistar.es orange.es icloud.com "
           "empresa-cliente.es construcciones-norte.es talleres-garcia.com btinternet.com").split()
SUBJECTS = {
    "es": ["Consulta sobre el pedido {n}", "Factura {n} – duda con el importe", "Devolución del pedido {n}",
           "¿Cuándo llega mi envío?", "Presupuesto para {k} unidades", "Cambio de dirección de entrega",
           "Problema con el pago de la factura {n}", "Solicitud de información – catálogo {y}",
           "Candidatura: puesto de atención al cliente", "Reclamación pedido nº {n}", "Pedido urgente",
           "Confirmación de recepción", "Garantía del artículo {n}", "Alta como distribuidor",
           "Descuento por volumen ({k} uds.)", "Error en el albarán {n}"],
    "en": ["Question about order {n}", "Invoice {n} – amount looks wrong", "Return request for order {n}",
           "Where is my parcel?", "Quote for {k} units", "Change of delivery address", "Payment failed for {n}",
           "Catalogue {y} – information request", "Application: customer service role", "Complaint, order #{n}",
           "Urgent order", "Warranty claim, item {n}", "Becoming a reseller", "Volume discount ({k} pcs)"],
}
SENTENCES = {
    "es": [
        "Les escribo en relación con el pedido {n} que realicé el pasado {d}.",
        "Todavía no he recibido el paquete y el seguimiento no se actualiza desde hace tres días.",
        "¿Podrían confirmarme si el importe de {a} € incluye el IVA y los gastos de envío?",
        "Adjunto la factura y el justificante de la transferencia para que puedan comprobarlo.",
        "El artículo llegó dañado: la caja estaba abierta y faltaba una de las piezas pequeñas.",
        "Necesitaríamos {k} unidades más antes de final de mes, si es posible con el mismo descuento.",
        "Por favor, cambien la dirección de entrega a Calle de Alcalá {k}, 3.º izquierda, 28014 Madrid.",
        "Quedo a la espera de su respuesta; pueden llamarme al 6{k}2 45 67 89 por la mañana.",
        "Muchas gracias por la rapidez, el último envío llegó perfectamente y a tiempo.",
        "¿Sería posible recoger la devolución en nuestra oficina de Logroño el jueves?",
        "Según el albarán {n} nos cobraron {a} € de más; les ruego que revisen el cargo.",
        "Les envío mi currículum para el puesto publicado; tengo experiencia en atención al cliente.",
        "Hemos revisado el presupuesto y nos parece correcto, salvo el plazo de entrega de {k} días.",
        "El año pasado ya tuvimos un problema parecido con otro pedido y se resolvió enseguida.",
        "Un saludo cordial y gracias de antemano por su atención.",
        "Disculpen la insistencia, pero es la tercera vez que escribo sobre este asunto.",
    ],
    "en": [
        "I am writing about order {n}, which I placed on {d}.",
        "The parcel has not arrived yet and the tracking page has not changed for three days.",
        "Could you confirm whether the amount of £{a} includes VAT and delivery?",
        "Please find attached the invoice and the proof of payment so you can check it.",
        "The item arrived damaged: the box was open and one of the small parts was missing.",
        "We would need {k} more units before the end of the month, ideally at the same discount.",
        "Please change the delivery address to {k} High Street, Flat 3, Bristol BS1 4DJ.",
        "I look forward to hearing from you; you can call me on 07{k} 456 789 in the morning.",
        "Many thanks for the quick reply, the last delivery arrived on time and in perfect condition.",
        "Would it be possible to collect the return from our office in Leeds on Thursday?",
        "According to delivery note {n} we were charged £{a} too much; please check the charge.",
        "I attach my CV for the advertised position; I have worked in customer service for years.",
        "We have reviewed the quote and it looks right, except for the lead time of {k} days.",
        "We had a similar problem with another order last year and it was solved straight away.",
        "Kind regards, and thank you in advance for your help.",
        "Sorry to insist, but this is the third time I have written about this.",
    ],
}
ANSWERS = {
    "es": ["Gracias por escribirnos. Hemos revisado el pedido {n} y el envío salió ayer de nuestro almacén.",
           "Le confirmamos que el importe incluye el IVA; le adjuntamos la factura rectificativa.",
           "Sentimos las molestias. Hemos dado orden de recoger el artículo y enviarle uno nuevo sin coste.",
           "Hemos actualizado la dirección de entrega; el transportista la tendrá en cuenta en {k} horas."],
    "en": ["Thank you for writing to us. We have checked order {n} and it left our warehouse yesterday.",
           "We confirm that the amount includes VAT; please find the corrected invoice attached.",
           "We are sorry for the trouble. A courier will collect the item and we will send a new one free.",
           "We have updated the delivery address; the courier will have it within {k} hours."],
}
GREETING = {"es": ["Buenos días:", "Hola,", "Estimados señores:", "Buenas tardes,"],
            "en": ["Hello,", "Dear team,", "Hi there,", "Good morning,"]}
WROTE = {"es": "El {d}, {who} escribió:", "en": "On {d}, {who} wrote:"}
HEADER_WORDS = {"es": ("De", "Enviado", "Para", "Asunto"), "en": ("From", "Sent", "To", "Subject")}
COMPANIES = ["Tienda Norte", "Suministros Levante", "Ferretería Ruiz", "Óptica Castellana", "Muebles Ibéricos",
             "Northwind Supplies", "Harbour Tools", "Café Aroma", "Papelería Sol", "Electro Galicia"]
MAILERS = ["Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 128.3", "iPhone Mail (21G93)",
           "Gmail", "Roundcube Webmail/1.6.9"]
OUTLOOK_STYLE = """<style><!--
/* Font Definitions */
@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face {font-family:Aptos; panose-1:2 11 0 4 2 2 2 2 2 4;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt; font-family:"Calibri",sans-serif;
  mso-ligatures:standardcontextual; mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink {mso-style-priority:99; color:#0563C1; text-decoration:underline;}
span.EstiloCorreo17 {mso-style-type:personal-compose; font-family:"Calibri",sans-serif; color:windowtext;}
.MsoChpDefault {mso-style-type:export-only; font-size:10.0pt; mso-ligatures:none;}
@page WordSection1 {size:612.0pt 792.0pt; margin:70.85pt 3.0cm 70.85pt 3.0cm;}
div.WordSection1 {page:WordSection1;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="1" /></o:shapelayout></xml><![endif]-->"""


def name(rng: random.Random, lang: str) -> str:
    return f"{rng.choice(FIRST[lang])} {rng.choice(LAST[lang])}"


def fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(10_000, 99_999), k=rng.randint(2, 480), y=rng.randint(2024, 2026),
                           a=f"{rng.randint(12, 4_999)},{rng.randint(0, 99):02d}",
                           d=f"{rng.randint(1, 28)}/0{rng.randint(1, 9)}")


def paragraphs(rng: random.Random, lang: str, count: int, bank: dict[str, list[str]] = SENTENCES) -> list[str]:
    return [" ".join(fill(rng.choice(bank[lang]), rng) for _ in range(rng.randint(1, 4))) for _ in range(count)]


def signature(lang: str, who: str, company: str, phone: int) -> list[str]:
    role = "Atención al cliente" if lang == "es" else "Customer service"
    return ["-- ", who, f"{role} · {company}", f"Tel. +34 91 {phone:03d} 22 10", f"www.{_slug(company)}.example"]


def legal(lang: str, company: str) -> str:
    if lang == "es":
        return (f"AVISO LEGAL: Este mensaje y sus anexos son confidenciales y se dirigen exclusivamente a su "
                f"destinatario. Si lo ha recibido por error, comuníquelo a {company} y elimínelo. Sus datos se "
                "tratan conforme al Reglamento (UE) 2016/679; puede ejercer sus derechos de acceso, rectificación, "
                "supresión y oposición escribiendo a nuestra dirección postal.")
    return (f"DISCLAIMER: This message and any attachments are confidential and intended solely for the "
            f"addressee. If you received it in error, please notify {company} and delete it. Personal data is "
            "processed under the UK GDPR; you may exercise your rights by writing to our registered office.")


def _slug(text: str) -> str:
    table = str.maketrans("áéíóúñÁÉÍÓÚÑü ", "aeiounAEIOUNu-")
    return text.translate(table).lower()


def outlook_html(charset: str, body: list[str], sig: list[str], logo_cids: list[str], quoted_html: str,
                 legal_text: str) -> str:
    """The HTML part as Outlook writes it: a Word stylesheet, a span per paragraph, a table signature."""
    span = "<span style='font-size:11.0pt;font-family:\"Calibri\",sans-serif;color:#1F3864'>"
    paras = "".join(f"<p class=MsoNormal>{span}{escape(p)}<o:p></o:p></span></p>\n"
                    f"<p class=MsoNormal>{span}<o:p>&nbsp;</o:p></span></p>\n" for p in body)
    logos = "".join(f"<img width=120 height=40 style='width:1.25in;height:.41in' id=\"Imagen_{i}\" "
                    f"src=\"cid:{cid}\" alt=\"logo\">" for i, cid in enumerate(logo_cids))
    sig_rows = "".join(f"<tr><td style='padding:0cm 5.4pt 0cm 5.4pt'><p class=MsoNormal>{span}{escape(line)}"
                       "</span></p></td></tr>\n" for line in sig[1:])
    return (f"<html xmlns:v=\"urn:schemas-microsoft-com:vml\" xmlns:o=\"urn:schemas-microsoft-com:office:office\">"
            f"<head><meta http-equiv=\"Content-Type\" content=\"text/html; charset={charset}\">"
            f"<meta name=Generator content=\"Microsoft Word 15 (filtered medium)\">{OUTLOOK_STYLE}</head>\n"
            f"<body lang=ES link=\"#0563C1\" vlink=\"#954F72\" style='word-wrap:break-word'>"
            f"<div class=WordSection1>\n{paras}"
            f"<table class=MsoNormalTable border=0 cellspacing=0 cellpadding=0>\n{sig_rows}"
            f"<tr><td>{logos}</td></tr></table>\n"
            f"<p class=MsoNormal><span style='font-size:7.5pt;color:gray'>{escape(legal_text)}</span></p>\n"
            f"{quoted_html}</div></body></html>")


def gmail_html(body: list[str], sig: list[str], logo_cids: list[str], quoted_html: str) -> str:
    """The HTML part as Gmail and Apple Mail write it: divs, a blockquote per quoted level."""
    paras = "".join(f"<div dir=\"ltr\">{escape(p)}</div><div><br></div>\n" for p in body)
    logos = "".join(f"<img src=\"cid:{cid}\" width=\"120\" height=\"40\" alt=\"logo\"><br>" for cid in logo_cids)
    sig_html = "<br>".join(escape(line) for line in sig)
    return (f"<div dir=\"ltr\">{paras}<div><br clear=\"all\"></div><div dir=\"ltr\" class=\"gmail_signature\">"
            f"<div style=\"color:rgb(34,34,34);font-family:Arial,Helvetica,sans-serif\">{sig_html}<br>{logos}"
            f"</div></div></div>\n{quoted_html}")


def quote_html(lang: str, outlook: bool, who: str, when: str, subject: str, inner_html: str) -> str:
    if outlook:
        words = HEADER_WORDS[lang]
        return ("<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
                f"<p class=MsoNormal><b><span lang=ES>{words[0]}:</span></b> {escape(who)}<br><b>{words[1]}:</b> "
                f"{escape(when)}<br><b>{words[3]}:</b> {escape(subject)}<o:p></o:p></p></div>\n{inner_html}")
    return (f"<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">"
            f"{escape(WROTE[lang].format(d=when, who=who))}<br></div><blockquote class=\"gmail_quote\" "
            "style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">"
            f"{inner_html}</blockquote></div>")


def html_of_text(lines: list[str]) -> str:
    return "".join(f"<p>{escape(line)}</p>\n" for line in lines if line)
