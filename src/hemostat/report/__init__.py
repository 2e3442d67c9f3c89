"""Reports of a scoped breach: the pre-filled GDPR Art. 33 notification for the DPO, one page
for the crisis unit (what left, whose, how sure) and the evidence for investigators, as HTML,
PDF or Markdown in French or English; and the evidence bundle behind every number.

    write_bundle(store, scope, Path("INC-1.zip"))     -> Bundle (manifest SHA-256)
    render(scope, Path("notification.pdf"), "fr", bundle=bundle, dpo=Contact(...))
"""

from __future__ import annotations

from hemostat.report.bundle import Bundle, BundleFile, write_bundle
from hemostat.report.lang import language
from hemostat.report.notification import Contact, NotificationType
from hemostat.report.render import Format, render

__all__ = [
    "Bundle",
    "BundleFile",
    "Contact",
    "Format",
    "NotificationType",
    "language",
    "render",
    "write_bundle",
]
