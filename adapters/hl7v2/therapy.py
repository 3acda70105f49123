"""Is an order group a therapy order? Its product decides, against what the site's profile knows.

A hospital's interface engine sends every order it has: lab tests, imaging, drugs. The gateway
takes the groups whose product is a cell therapy product the site knows, and nothing else:

    therapy   an ISBT 128 product description code for cellular therapy (coding system mapped
              to isbt128, code `S` + 4 digits, optionally + type of donation and division), or
              one of the site's own codes (`therapy_products`) under a local system or none
    unclear   an ISBT 128 cellular therapy shape sent without a coding system, or a known code
              under a coding system the profile does not know: refused (AE 103), not guessed
    other     anything else (a LOINC panel, a local lab code, an X-ray, a code with no system):
              not for this gateway
"""

from __future__ import annotations

import re
from typing import Literal

from adapters.hl7v2.common import Coded
from adapters.hl7v2.profile import ISBT128, SiteProfile
from gateway.sdk import MappingError, Product

Kind = Literal["therapy", "unclear", "other"]
# ISBT 128 product code (data structure 003): product description code `S` + 4 digits for
# cellular therapy, then optionally the type of donation (1 character) and the division (2).
_CELLULAR = re.compile(r"^S[0-9]{4}(?:[0-9A-Z][0-9A-Z]{2})?$")


def kind_of(found: Coded, profile: SiteProfile) -> Kind:
    rules = profile.orders
    code = found.code.upper()
    listed, cellular = code in rules.therapy_products, bool(_CELLULAR.match(code))
    if not found.system:  # no coding system: only the site's own listed codes are known
        return "therapy" if listed else "unclear" if cellular else "other"
    system = rules.product_systems.get(found.system)
    if system is None:  # a coding system the profile does not know
        return "unclear" if listed or cellular else "other"
    if system == ISBT128:
        return "therapy" if cellular else "other"
    return "therapy" if listed else "other"


def product(found: Coded, profile: SiteProfile) -> Product:
    """The canonical product of a group whose `kind_of` is "therapy" (raises on "unclear")."""
    rules = profile.orders
    kind = kind_of(found, profile)
    if kind == "unclear":
        sent = f"coding system {found.system[:20]!r}" if found.system else "no coding system"
        raise MappingError(
            f"{found.location}: {found.code[:20]!r} looks like an ISBT 128 cellular therapy code but "
            f"has {sent} the site profile knows (send ISBT128 in {found.location}.3)",
            location=found.location,
            code="103",
        )
    if kind == "other":
        raise MappingError(
            f"{found.location}: the product is not a therapy product this site knows",
            location=found.location,
            code="103",
        )
    system = rules.product_systems[found.system] if found.system else rules.local_product_system
    return Product(code=found.code[:50], system=system, name=found.text[:200] or None)
