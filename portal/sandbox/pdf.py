"""A real, minimal PDF 1.4 of a sandbox document: one A4 page with a few lines of Helvetica text.

The sandboxes answer the vendors' "invoice as PDF" endpoints with it, so what Bogbro mails in development
and tests is a document any PDF reader opens (a correct cross-reference table, WinAnsi text for æøå), at a
few hundred bytes and without a PDF library.
"""

from decimal import Decimal


def _literal(text: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (Latin-1 covers the Danish letters; others become ?)."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def document_pdf(title: str, lines: list[str]) -> bytes:
    """title as the first (larger) line and the document's /Title; then `lines`."""
    text = [b"BT", b"/F1 16 Tf", b"72 770 Td", _literal(title) + b" Tj", b"/F1 11 Tf"]
    for line in lines:
        text += [b"0 -18 Td", _literal(line) + b" Tj"]
    text.append(b"ET")
    stream = b"\n".join(text)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Title " + _literal(title) + b" /Producer (Bogbro sandbox) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, len(objects))
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def amount_text(value, currency: str) -> str:
    """`1.234,50 DKK`: Danish digits, no locale machinery (the sandboxes stay Flask-Babel free)."""
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    whole, _, cents = f"{abs(amount):,.2f}".partition(".")
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole.replace(',', '.')},{cents} {currency}"


def invoice_pdf(system: str, kind: str, number, total, currency: str, customer: str = "") -> bytes:
    """The sandbox invoice (kind "Faktura") or credit note ("Kreditnota") as a PDF."""
    lines = [f"{kind} nr. {number}", f"Total: {amount_text(total, currency)}"]
    if customer:
        lines.append(f"Kunde: {customer}")
    lines.append(f"{system} sandbox")
    return document_pdf(f"{kind} {number}", lines)
