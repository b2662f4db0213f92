import hashlib


def main(user: str, password: str, x_partner_key: str = ""):
    return {
        "user": user,
        "password_sha256": hashlib.sha256(password.encode()).hexdigest(),
        "key_length": len(x_partner_key),
    }
