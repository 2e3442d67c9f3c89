"""The sentences of the notification, composed from the scope and the notice in the report's
language: the same list of sentences feeds the HTML and the Markdown templates.
"""

from __future__ import annotations

from typing import Any

from hemostat.report.lang import Lang
from hemostat.report.notification import (
    HEALTH,
    HIGH_RISK,
    Contact,
    Notice,
    action_time,
    sorted_actions,
)
from hemostat.schema import Category
from hemostat.scope.model import CategoryScope, Scope, Status


def circumstances(scope: Scope, n: Notice, lang: Lang) -> str:
    kind = lang.word("kind", scope.incident.kind)
    e = scope.egress
    if not e.bytes or e.first is None or e.last is None:
        return lang.t(
            "nature.no_egress", kind=kind, start=lang.when(scope.window[0]),
            end=lang.when(scope.window[1]),
        )  # fmt: skip
    return lang.t(
        "nature.circumstances",
        kind=kind,
        size=lang.size(e.bytes),
        start=lang.when(n.start or e.first),
        end=lang.when(e.last),
        hosts=", ".join(_host(h.name, h.ip) for h in e.hosts) or "?",
        destinations=", ".join(d.address for d in e.destinations) or "?",
    )


def sources(scope: Scope, lang: Lang) -> list[str]:
    """The data stores reached, as ``the "dpi" database (Patients) on dpi-db-01``."""
    names = {h.src: h.src_name for h in scope.lineage}
    return [
        lang.t(
            "nature.source_item",
            name=r.name,
            category=lang.word("category", r.category),
            host=_host(names.get(r.host or ""), r.host or "?"),
        )
        for r in scope.datastores
        if r.status is not Status.NONE
    ]


def reached(c: CategoryScope, lang: Lang) -> str:
    return lang.t(
        "people.reached", category=lang.word("category", c.category),
        subjects=lang.bounds(c.subjects), records=lang.bounds(c.records),
        status=lang.word("status", c.status),
    )  # fmt: skip


def consequences(n: Notice, scope: Scope, lang: Lang) -> list[str]:
    out = [lang.t(f"consequences.{c.category}") for c in n.reached]
    if n.high_risk:
        out.append(lang.t("consequences.high"))
    elif n.reached:
        out.append(lang.t("consequences.assess"))
    else:
        out.append(lang.t("consequences.nothing"))
    if any(str(a.get("kind")) == "site" for a in scope.actions):
        out.append(lang.t("consequences.site_cut"))
    return out


def taken(scope: Scope, lang: Lang) -> list[str]:
    """One sentence per containment action, in time order."""
    out = []
    for a in sorted_actions(scope.actions):
        ts = action_time(a)
        out.append(
            lang.t(
                "taken.action",
                when=lang.when(ts) if ts else "?",
                kind=lang.word("action_kind", a.get("kind", "?")),
                target=a.get("target", "?"),
                step=lang.word("action_step", a.get("step", "?")),
                result=a.get("result", "?"),
                actor=a.get("actor", "?"),
                reason=a.get("reason") or "?",
            )
        )
    return out


def planned(scope: Scope, n: Notice, lang: Lang) -> list[str]:
    """A sensible pre-filled list of measures to propose, for the DPO to edit."""
    out = []
    if n.accounts:
        out.append(lang.t("planned.accounts", accounts=", ".join(n.accounts)))
    if n.supplier:
        out.append(lang.t("planned.supplier"))
    if scope.egress.destinations:
        dests = ", ".join(d.address for d in scope.egress.destinations)
        out.append(lang.t("planned.blocks", destinations=dests))
    hosts = dict.fromkeys([*(h.ip for h in scope.egress.hosts), *(h.src for h in scope.lineage)])
    out.append(lang.t("planned.forensics", hosts=", ".join(hosts) or "?"))
    out.append(lang.t("planned.watch"))
    if n.high_risk:
        out.append(lang.t("planned.people"))
    out += [lang.t("planned.egress"), lang.t("planned.register")]
    return out


def declarations(n: Notice, lang: Lang) -> list[str]:
    """The other declarations a French health establishment makes, as a checklist."""
    out = [
        lang.t("other.cnil", deadline=lang.when(n.deadline)),
        lang.t("other.ars"),
        lang.t("other.complaint"),
        lang.t("other.anssi"),
        lang.t("other.register"),
        lang.t("other.people"),
    ]
    if n.supplier:
        out.append(lang.t("other.supplier"))
    out.append(lang.t("other.insurer"))
    return out


def art34(n: Notice, lang: Lang) -> str:
    if not n.reached:
        return lang.t("art34.nothing")
    if not n.high_risk:
        return lang.t("art34.not_needed")
    cats = [lang.word("category", c.category) for c in n.reached if c.category in HIGH_RISK]
    return lang.t("art34.needed", categories=", ".join(cats))


def letter(scope: Scope, n: Notice, contact: Contact, lang: Lang) -> list[str]:
    """The paragraphs of a plain-language letter to the people (Art. 34), when high risk."""
    if not n.high_risk:
        return []
    cats = [c.category for c in n.reached]
    data = lang.t("list_sep").join(lang.word("category_data", c) for c in cats)
    day = lang.stamp(n.start, seconds=False).split(" ")[0] if n.start else lang.t("doc.fill")
    moment = action_time(n.containment) if n.containment else None
    measures = (
        lang.t("art34.done_contained", date=lang.when(moment))
        if moment
        else lang.t("art34.done_default")
    )
    risks = [lang.t("art34.risk_patient")] if set(cats) & HEALTH else []
    if {Category.STAFF, Category.FINANCE} & set(cats):
        risks.append(lang.t("art34.risk_staff"))
    risks.append(lang.t("art34.risk_other"))
    out = [
        lang.t("art34.subject"),
        lang.t("art34.greeting"),
        lang.t("art34.what", site=contact.organisation or scope.site, date=day, data=data),
        lang.t("art34.done", measures=measures),
        lang.t("art34.risk", risks=lang.t("list_sep").join(risks)),
        lang.t("art34.advice"),
    ]
    if {Category.STAFF, Category.FINANCE} & set(cats):
        out.append(lang.t("art34.advice_bank"))
    out += [
        lang.t("art34.contact", dpo=dpo_line(contact, lang)),
        lang.t("art34.closing"),
        lang.t("art34.signature"),
    ]
    return out


def dpo_line(contact: Contact, lang: Lang) -> str:
    fill = lang.t("doc.fill")
    parts = [contact.name or fill, contact.email or fill, contact.phone or fill]
    return ", ".join(parts)


def contact_rows(scope: Scope, contact: Contact, lang: Lang) -> list[tuple[str, str]]:
    """(label, value) rows of the organisation and DPO, placeholders where missing."""
    fill = lang.t("doc.fill")
    return [
        (lang.t("org.organisation"), contact.organisation or scope.site),
        (lang.t("org.siren"), contact.siren or fill),
        (lang.t("org.address"), contact.address or fill),
        (lang.t("org.contact"), contact.name or fill),
        (lang.t("org.role"), contact.role or lang.t("org.default_role")),
        (lang.t("org.email"), contact.email or fill),
        (lang.t("org.phone"), contact.phone or fill),
    ]


def setting(value: Any) -> str:
    """A scoping setting's value as one short line."""
    if isinstance(value, (list, tuple)):
        return ", ".join(setting(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {setting(v)}" for k, v in value.items())
    return str(value)


def _host(name: str | None, ip: str) -> str:
    return f"{name} ({ip})" if name and name != ip else ip
