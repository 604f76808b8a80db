#!/usr/bin/python3
"""An independent SSF push receiver (RFC 8935) written for ssf-bridge's tests in another stack:
Python's standard library HTTP server and Debian's PyJWT.

It verifies every SET it is pushed against the transmitter's JWKS (signature, RS256, typ,
iss, aud, iat, jti, sub_id, exactly one event, no sub, no exp), checks the Authorization header
the stream was created with, checks the state of verification events against the state it was
told to expect, and answers 202, or 400 with an RFC 8935 error body.

    POST /ssf/push      a SET (Content-Type: application/secevent+jwt)
    POST /_expect       {"stream_id": ..., "state": ...}: the verification it expects next
    GET  /_received     every SET received, in arrival order, with the verdict

Prints "READY <port>" once listening on 127.0.0.1.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"

parser = argparse.ArgumentParser()
parser.add_argument("--issuer", required=True)
parser.add_argument("--jwks-uri", required=True)
parser.add_argument("--audience", required=True)
parser.add_argument("--authorization", default=None)
args = parser.parse_args()

jwks = jwt.PyJWKClient(args.jwks_uri, cache_keys=True)
lock = threading.Lock()
received = []
expected = {"stream_id": None, "state": None}


class Refused(Exception):
    def __init__(self, err, description):
        super().__init__(description)
        self.err = err
        self.description = description


def verify(token):
    """The claims of a valid SET, or Refused with the RFC 8935 error code."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise Refused("invalid_request", "not a compact JWS: %s" % e)
    if header.get("typ") != "secevent+jwt":
        raise Refused("invalid_request", "typ is %r, not secevent+jwt" % header.get("typ"))
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise Refused("invalid_key", "expected RS256 with a kid")
    try:
        key = jwks.get_signing_key_from_jwt(token)
    except jwt.PyJWTError as e:
        raise Refused("invalid_key", "no key for kid %s: %s" % (header.get("kid"), e))
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=args.audience,
            issuer=args.issuer,
            options={"require": ["iss", "aud", "iat", "jti"]},
        )
    except jwt.InvalidAudienceError as e:
        raise Refused("invalid_audience", str(e))
    except jwt.InvalidIssuerError as e:
        raise Refused("invalid_issuer", str(e))
    except jwt.InvalidSignatureError as e:
        raise Refused("invalid_key", str(e))
    except jwt.PyJWTError as e:
        raise Refused("invalid_request", str(e))
    if "sub" in claims or "exp" in claims:
        raise Refused("invalid_request", "SSF SETs carry neither sub nor exp")
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise Refused("invalid_request", "events must hold exactly one event")
    sub_id = claims.get("sub_id")
    if not isinstance(sub_id, dict) or not isinstance(sub_id.get("format"), str):
        raise Refused("invalid_request", "sub_id is missing or has no format")
    return claims


def check_verification(claims):
    event = claims["events"].get(VERIFICATION)
    if event is None:
        return
    with lock:
        stream_id, state = expected["stream_id"], expected["state"]
    if stream_id is not None and claims["sub_id"] != {"format": "opaque", "id": stream_id}:
        raise Refused("invalid_request", "verification sub_id is not this stream")
    if "state" in event and event["state"] != state:
        raise Refused("invalid_state", "state %r was not requested" % event["state"])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status, body=None, language=False):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        if language:
            self.send_header("Content-Language", "en")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_GET(self):
        if self.path != "/_received":
            return self.reply(404)
        with lock:
            return self.reply(200, list(received))

    def do_POST(self):
        raw = self.body()
        if self.path == "/_expect":
            with lock:
                expected.update(json.loads(raw))
            return self.reply(204)
        if self.path != "/ssf/push":
            return self.reply(404)
        record = {"authorization": self.headers.get("Authorization"), "content_type": self.headers.get("Content-Type")}
        if args.authorization is not None and record["authorization"] != args.authorization:
            record.update(ok=False, err="unauthorized")
            with lock:
                received.append(record)
            return self.reply(401)
        try:
            if record["content_type"] != "application/secevent+jwt":
                raise Refused("invalid_request", "Content-Type must be application/secevent+jwt")
            claims = verify(raw.decode("ascii"))
            event_type = next(iter(claims["events"]))
            record.update(jti=claims["jti"], type=event_type, event=claims["events"][event_type], sub_id=claims["sub_id"])
            check_verification(claims)
        except Refused as e:
            record.update(ok=False, err=e.err, description=e.description)
            with lock:
                received.append(record)
            return self.reply(400, {"err": e.err, "description": e.description}, language=True)
        record["ok"] = True
        with lock:
            received.append(record)
        return self.reply(202)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("READY %d" % server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
