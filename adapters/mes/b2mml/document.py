"""Reading a B2MML document: defusedxml (no entities, no external references), tolerant of what
real MES exports carry (a UTF-8 byte-order mark, CRLF, ids with trailing spaces), strict about
what makes a document unreadable (not well-formed, an undeclared namespace prefix) and about which
B2MML it is (V0600 or V07; V0401 and foreign documents are refused, named).

Elements are found by local name within the document's one B2MML namespace: `Doc.all(el, "ID")`.
Every value read is stripped (`text`), so `ORD-1   ` and `ORD-1` are one id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from gateway.sdk import MalformedMessage, UnsupportedMessage

BOM = b"\xef\xbb\xbf"
KNOWN_ELSEWHERE = {"http://www.wbf.org/xml/B2MML-V0401": "V0401"}


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class Doc:
    root: Element
    namespace: str
    version: str  # V0600, V07

    @property
    def verb(self) -> str:
        """The root's local name: SyncOperationsPerformance, NotifyOperationsEvent, ..."""
        return local(self.root.tag)

    def q(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"

    def all(self, parent: Element, name: str) -> Iterator[Element]:
        """Descendants named `name`, in document order."""
        return parent.iter(self.q(name))

    def children(self, parent: Element, name: str) -> list[Element]:
        return parent.findall(self.q(name))

    def text(self, parent: Element, *path: str) -> str | None:
        """The stripped text at `path` below `parent` (None: absent or empty)."""
        found: Element | None = parent
        for name in path:
            found = found.find(self.q(name)) if found is not None else None
        value = (found.text or "").strip() if found is not None else ""
        return value or None


def parse(raw: bytes, namespaces: Mapping[str, str]) -> Doc:
    """The document, or MalformedMessage (unreadable) / UnsupportedMessage (not B2MML we take)."""
    body = raw.removeprefix(BOM)
    try:
        root = fromstring(body)
    except DefusedXmlException as exc:
        raise MalformedMessage(
            "the XML uses entities or external references, refused", detail=repr(exc)
        ) from None
    except ParseError as exc:
        if "unbound prefix" in str(exc):
            line, column = exc.position
            raise MalformedMessage(
                f"undeclared namespace prefix (line {line}, column {column})",
                detail=str(exc),
                location=f"line {line}",
            ) from None
        raise MalformedMessage("the body is not well-formed XML", detail=str(exc)) from None
    namespace = _namespace(root.tag)
    version = namespaces.get(namespace)
    if version is None:
        known = KNOWN_ELSEWHERE.get(namespace)
        what = f"B2MML {known}" if known else f"namespace {namespace or '(none)'}"
        taken = " or ".join(sorted(namespaces.values()))
        raise UnsupportedMessage(f"{what} is not taken: send B2MML {taken}", location=f"/{local(root.tag)}")
    return Doc(root, namespace, version)
