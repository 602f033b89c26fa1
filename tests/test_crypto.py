import pytest
from cryptography.fernet import Fernet

from portal import crypto


def test_encrypt_decrypt_and_key_rotation(app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys = app.config["ENCRYPTION_KEYS"]
    try:
        with app.app_context():
            app.config["ENCRYPTION_KEYS"] = [old]
            token = crypto.encrypt("api-secret-123")
            assert "api-secret-123" not in token
            app.config["ENCRYPTION_KEYS"] = [new, old]  # new key first: encrypts; old one still decrypts
            assert crypto.decrypt(token) == "api-secret-123"
            rotated = crypto.rotate(token)
            app.config["ENCRYPTION_KEYS"] = [new]
            assert crypto.decrypt(rotated) == "api-secret-123"
            with pytest.raises(crypto.SecretUnreadable):
                crypto.decrypt(token)
    finally:
        app.config["ENCRYPTION_KEYS"] = keys


def test_encrypted_json_column_type(app):
    column = crypto.EncryptedJSON()
    with app.app_context():
        stored = column.process_bind_param({"token": "t0ps3cret"}, None)
        assert "t0ps3cret" not in stored
        assert column.process_result_value(stored, None) == {"token": "t0ps3cret"}
