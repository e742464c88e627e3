#!/usr/bin/env python3
"""The original Flask service's end-to-end client (its `main.py`), unchanged in substance.

Run it against `cargo run` (debug profile, port 5000): every assertion must hold.
`.ci/run` does exactly that. Usage: python3 tests/compat/original_client.py [base-url]
"""
import sys

import requests

EMAIL = "guillaume@holberton.io"
PASSWD = "b4l0u"
NEW_PASSWD = "t4rt1fl3tt3"
URL = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:5000"


def register_user(email: str, password: str) -> None:
    r = requests.post(f"{URL}/users", data={"email": email, "password": password})
    assert r.status_code == 200, r.text
    assert r.json() == {"email": email, "message": "user created"}
    r = requests.post(f"{URL}/users", data={"email": email, "password": password})
    assert r.status_code == 400
    assert r.json() == {"message": "email already registered"}


def log_in_wrong_password(email: str, password: str) -> None:
    r = requests.post(f"{URL}/sessions", data={"email": email, "password": password})
    assert r.status_code == 401


def profile_unlogged() -> None:
    r = requests.get(f"{URL}/profile")
    assert r.status_code == 403


def log_in(email: str, password: str) -> str:
    r = requests.post(f"{URL}/sessions", data={"email": email, "password": password})
    assert r.status_code == 200, r.text
    assert r.json() == {"email": email, "message": "logged in"}
    return r.cookies.get("session_id")


def profile_logged(session_id: str) -> None:
    r = requests.get(f"{URL}/profile", cookies={"session_id": session_id})
    assert r.status_code == 200
    # Issue 14 added "email_verified" to the profile (SPEC: an issue's newer words win); the
    # original compared the whole body, so the addition is named here rather than ignored.
    assert r.json() == {"email": EMAIL, "email_verified": False}


def log_out(session_id: str) -> None:
    r = requests.delete(f"{URL}/sessions", cookies={"session_id": session_id})
    assert r.history and r.history[0].status_code in (302, 303)
    assert r.status_code == 200
    assert r.json() == {"message": "Bienvenue"}


def reset_password_token(email: str) -> str:
    r = requests.post(f"{URL}/reset_password", data={"email": email})
    assert r.status_code == 200
    body = r.json()
    assert body == {"email": email, "reset_token": body["reset_token"]}
    return body["reset_token"]


def update_password(email: str, reset_token: str, new_password: str) -> None:
    data = {"email": email, "reset_token": reset_token, "new_password": new_password}
    r = requests.put(f"{URL}/reset_password", data=data)
    assert r.status_code == 200
    assert r.json() == {"email": email, "message": "Password updated"}


if __name__ == "__main__":
    register_user(EMAIL, PASSWD)
    log_in_wrong_password(EMAIL, NEW_PASSWD)
    profile_unlogged()
    session_id = log_in(EMAIL, PASSWD)
    profile_logged(session_id)
    log_out(session_id)
    reset_token = reset_password_token(EMAIL)
    update_password(EMAIL, reset_token, NEW_PASSWD)
    log_in(EMAIL, NEW_PASSWD)
    print("original client: all checks passed")
