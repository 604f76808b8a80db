"""A second, independent JWS implementation for the cross-implementation tests: PyJWT with
the cryptography package (Debian python3-jwt, python3-cryptography).

Reads {"ops": [...]} as JSON on standard input and writes {"results": [...]}, one result per
operation, so one interpreter start serves a whole test file. Operations:

  keygen  {alg}                         -> {private_pem, public_jwk}
  sign    {alg, private_pem, claims, headers}  -> {token}     (alg "none" needs no key)
  hmac    {secret, claims, headers}      -> {token}           (HS256 keyed with any text)
  verify  {token, jwk, alg, audience, issuer}  -> {ok, header, claims} or {ok: false, error}
"""

import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def keygen(op):
    alg = op["alg"]
    if alg in ("RS256", "PS256"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        public_jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    elif alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
        public_jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    else:
        raise ValueError("unsupported alg " + alg)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return {"private_pem": pem, "public_jwk": public_jwk}


def sign(op):
    headers = op.get("headers") or {}
    if op["alg"] == "none":
        return {"token": jwt.encode(op["claims"], None, algorithm="none", headers=headers)}
    key = serialization.load_pem_private_key(op["private_pem"].encode("ascii"), password=None)
    return {"token": jwt.encode(op["claims"], key, algorithm=op["alg"], headers=headers)}


def hmac_sign(op):
    # Built by hand: PyJWT rightly refuses PEM public keys as HMAC secrets, which is the attack.
    header = dict(op.get("headers") or {}, alg="HS256")
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(op["claims"]).encode())
    digest = hmac.new(op["secret"].encode(), signing_input.encode(), hashlib.sha256).digest()
    return {"token": signing_input + "." + b64url(digest)}


def verify(op):
    try:
        header = jwt.get_unverified_header(op["token"])
        if header.get("typ") != "secevent+jwt":
            return {"ok": False, "error": "typ is %r, not secevent+jwt" % header.get("typ")}
        key = jwt.PyJWK(op["jwk"]).key
        claims = jwt.decode(
            op["token"],
            key=key,
            algorithms=[op["alg"]],
            audience=op["audience"],
            issuer=op["issuer"],
            options={"require": ["iss", "iat", "jti", "aud"]},
        )
        for forbidden in ("sub", "exp"):
            if forbidden in claims:
                return {"ok": False, "error": forbidden + " present in a SET"}
        if not isinstance(claims.get("events"), dict) or len(claims["events"]) != 1:
            return {"ok": False, "error": "events must hold exactly one event"}
        return {"ok": True, "header": header, "claims": claims}
    except jwt.PyJWTError as error:
        return {"ok": False, "error": "%s: %s" % (type(error).__name__, error)}


OPERATIONS = {"keygen": keygen, "sign": sign, "hmac": hmac_sign, "verify": verify}


def main():
    request = json.load(sys.stdin)
    results = [OPERATIONS[op["op"]](op) for op in request["ops"]]
    json.dump({"results": results, "pyjwt": jwt.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
