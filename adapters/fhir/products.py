"""Which codes name a therapy product this site orders: the test that tells a CAR-T order from
every other order an EHR sends (a lipid panel, a colonoscopy, a prescription).

A coding names a therapy product when its system is one of the site's product tables and either
the table lists the code (the site's own codes) or the table passes ISBT 128 product codes through
and the code has the shape of a cellular therapy product code (`S` and four digits, optionally the
type of donation and division). A coding without a system names nothing: no default system.
"""

from __future__ import annotations

from adapters.fhir.profile import ISBT128_CELLULAR, SiteProfile
from adapters.fhir.resources import Json, codings
from gateway.sdk import Product


def is_isbt128_cellular(code: str) -> bool:
    return ISBT128_CELLULAR.fullmatch(code) is not None


def product_of(coding: Json, profile: SiteProfile) -> Product | None:
    """The canonical product a coding names at this site, or None when it names none."""
    code, system = coding.get("code"), coding.get("system")
    if not code or not system:
        return None
    for table in profile.products:
        if system != table.system:
            continue
        if table.pass_through:
            if is_isbt128_cellular(str(code)):
                return Product(code=str(code), system=table.canonical_system, name=coding.get("display"))
            continue
        entry = table.codes.get(str(code))
        if entry is not None:
            return Product(code=entry.code, system=table.canonical_system, name=entry.name)
    return None


def first_product(concepts: list[Json | None], profile: SiteProfile) -> Product | None:
    """The first therapy product any of the concepts' codings names."""
    for concept in concepts:
        for coding in codings(concept):
            product = product_of(coding, profile)
            if product is not None:
                return product
    return None
