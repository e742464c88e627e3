#!/usr/bin/env python3
"""Run every command of README.md against the debug binary and compare its output.

Usage: python3 tests/readme_commands.py [README.md]   (after `cargo build`; .ci/run runs it)

The script starts target/debug/auth_service (what `cargo run` runs) on a temporary database, a
free port, a temporary admin socket and mail outbox, then reads README.md's fenced `sh` (also
`bash`, `shell`, `console`) blocks in order:

- A line starting with `$ ` is a command, continued by the lines that end in a backslash. The
  lines after it, up to the next command or the end of the block, are its expected standard
  output: compared line by line after trailing white space is dropped, `…` matching any text
  within a line; a line that is JSON on both sides is compared as JSON (the order of an object's
  keys aside, `…` matching any text within a string). Every such command must exit with status 0. Commands run in one temporary
  working directory, in README order, so files such as `cookies.txt` carry over.
- Before a command runs, `localhost:5000` becomes the free port (in the expected output too),
  `cargo run -q --` becomes the debug binary, and `<token>` becomes the last value of a
  `…_token` field that an earlier command printed as JSON.
- Any other line of such a block is a command this script does not run; it must be listed in
  NOT_RUN below with the reason, and every entry of NOT_RUN must still be in the README, so a
  new or changed command cannot slip by unchecked.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "debug", "auth_service")

# Commands shown without `$ `: not run here, each with the reason.
NOT_RUN = {
    "cargo run": "this script runs its binary, target/debug/auth_service, itself "
    "(after .ci/run's `cargo build`), on a temporary database and a free port",
    "cargo test": "the whole suite is .ci/run's own `cargo test` step",
}

SHELL_BLOCKS = {"sh", "bash", "shell", "console"}


def fail(message):
    sys.exit(f"readme_commands: {message}")


def parse(readme):
    """The `$ ` commands with their expected output, and the other command lines."""
    commands, others = [], []
    lines = readme.split("\n")
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        i += 1
        if not fence:
            continue
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append((i, lines[i]))
            i += 1
        i += 1  # the closing fence
        if fence.group(1) not in SHELL_BLOCKS:
            continue
        if any(text.startswith("$ ") for _, text in body):
            j = 0
            while j < len(body):
                number, text = body[j]
                if not text.startswith("$ "):
                    fail(f"README.md:{number + 1}: output before any command: {text!r}")
                command = [text[2:]]
                j += 1
                while command[-1].rstrip().endswith("\\") and j < len(body):
                    command.append(body[j][1])
                    j += 1
                expected = []
                while j < len(body) and not body[j][1].startswith("$ "):
                    expected.append(body[j][1])
                    j += 1
                commands.append((number + 1, "\n".join(command), expected))
        else:
            for number, text in body:
                code = re.sub(r"\s+#.*$", "", text).strip()
                if code and not code.startswith("#"):
                    others.append((number + 1, code))
    return commands, others


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def matches(expected, actual):
    """One line: JSON compared as JSON (key order aside; `…` in a string matches any text),
    anything else as text with `…` matching any text."""
    try:
        return same_json(json.loads(expected), json.loads(actual))
    except ValueError:
        pass
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual) is not None


def same_json(expected, actual):
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(same_json(expected[k], actual[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(same_json(e, a) for e, a in zip(expected, actual))
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return matches(expected, actual) if "…" in expected else expected == actual
    return type(expected) is type(actual) and expected == actual


def main():
    readme_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "README.md")
    readme = open(readme_path, encoding="utf-8").read()
    commands, others = parse(readme)
    if not commands:
        fail("no `$ ` command found in the README's sh blocks")
    for number, code in others:
        if code not in NOT_RUN:
            fail(
                f"README.md:{number}: `{code}` is neither run (write it as `$ {code}` with its "
                "output) nor listed in NOT_RUN with a reason"
            )
    for code in NOT_RUN:
        if code not in [c for _, c in others]:
            fail(f"NOT_RUN lists `{code}`, which the README no longer shows")
    if not os.access(BINARY, os.X_OK):
        fail(f"{BINARY} is missing: run `cargo build` first")

    work = tempfile.mkdtemp(prefix="readme-commands-")
    port = free_port()
    env = dict(os.environ)
    for name in [n for n in env if n.startswith("ROCKET_")]:
        del env[name]
    env.update(
        ROCKET_CONFIG=os.path.join(ROOT, "Rocket.toml"),
        ROCKET_PORT=str(port),
        ROCKET_DATABASE_URL=os.path.join(work, "auth.db"),
        ROCKET_ADMIN_SOCKET=os.path.join(work, "admin.sock"),
        ROCKET_MAIL_OUTBOX_DIR=os.path.join(work, "mail"),
    )
    server_log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([BINARY], cwd=ROOT, env=env, stdout=server_log, stderr=server_log)
    passed = 0
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    print(open(os.path.join(work, "server.log")).read())
                    fail("the server did not start within 60 s")
                time.sleep(0.2)
        # The admin socket may come up just after the port (issue 19 §5): wait for it too.
        while not os.path.exists(env["ROCKET_ADMIN_SOCKET"]) and time.time() < deadline:
            time.sleep(0.2)

        token = None
        for number, command, expected in commands:
            shown = command
            if "<token>" in command:
                if token is None:
                    fail(f"README.md:{number}: `<token>` before any command printed a token")
                command = command.replace("<token>", token)
            command = command.replace("localhost:5000", f"localhost:{port}")
            command = command.replace("cargo run -q --", BINARY)
            run = subprocess.run(
                ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                timeout=120,
            )
            actual = [line.rstrip() for line in run.stdout.rstrip("\n").split("\n")]
            want = [line.rstrip().replace("localhost:5000", f"localhost:{port}") for line in expected]
            while want and not want[-1]:
                want.pop()
            if run.returncode != 0 or len(actual) != len(want) or not all(
                matches(w, a) for w, a in zip(want, actual)
            ):
                print(f"README.md:{number}: $ {shown}")
                print(f"exit status {run.returncode}; expected:")
                print("\n".join(want))
                print("got:")
                print(run.stdout)
                print("stderr:")
                print(run.stderr, end="")
                fail(f"README.md:{number}: the command's output differs from the README")
            for line in actual:
                try:
                    answer = json.loads(line)
                except ValueError:
                    continue
                if isinstance(answer, dict):
                    for key, value in answer.items():
                        if key.endswith("_token") and isinstance(value, str):
                            token = value
            passed += 1
            print(f"ok   README.md:{number}: $ {shown.splitlines()[0]}")
        for number, code in others:
            print(f"skip README.md:{number}: {code} ({NOT_RUN[code]})")
        print(f"readme_commands: {passed} commands as the README shows them, "
              f"{len(others)} listed as not run")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
