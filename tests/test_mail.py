"""Mails printed in development (no MAIL_SERVER) are readable: decoded headers, the text as text."""

from portal.mail import send_mail


def test_a_printed_mail_is_decoded(app, monkeypatch, capsys):
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    body = "Hej Åse,\n\nDu er inviteret til Bøgebro ApS på Bogbro: " + "ø" * 80 + "\n"
    with app.app_context():
        send_mail("åse@kunde.dk", "Invitation til Bøgebro ApS", body, html="<p>Hej Åse</p>")
    printed = capsys.readouterr().out
    assert "Subject: Invitation til Bøgebro ApS" in printed and "To: åse@kunde.dk" in printed
    assert "Hej Åse,\n\nDu er inviteret til Bøgebro ApS" in printed and "ø" * 80 in printed
    assert "=?utf-8?" not in printed and "Content-Transfer-Encoding" not in printed
    assert "(with an HTML version)" in printed and "<p>" not in printed
