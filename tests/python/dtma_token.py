"""Signs a control-plane token for a toolbox's DTMA (tests only): EdDSA JWT, aud = toolbox id."""
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def sign(key_file: str, toolbox_id: str, ttl: int = 300) -> str:
    seed = bytes.fromhex(open(key_file).read().strip())
    key = Ed25519PrivateKey.from_private_bytes(seed)
    now = int(time.time())
    claims = {"iss": "toolbelt-control-plane", "aud": toolbox_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": "JWT"})


if __name__ == "__main__":
    print(sign(sys.argv[1], sys.argv[2]))
