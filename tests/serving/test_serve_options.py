"""``rewardlab serve`` options and OS errors are one line with exit 2, before any model loads."""

from __future__ import annotations

import socket

import pytest

from rewardlab.cli import main


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--port", "70000", "--port must be a number in [0, 65535], got 70000"),
        ("--batch-window-ms", "nan", "--batch-window-ms must be a finite number, got nan"),
        ("--batch-window-ms", "1e12", "--batch-window-ms must be a number in [0, 10000]"),
        ("--uwo-lambda", "nan", "--uwo-lambda must be a finite number, got nan"),
        ("--uwo-lambda", "2e6", "--uwo-lambda must be a number in [0, 1e+06], got 2000000.0"),
        ("--body-timeout-s", "inf", "--body-timeout-s must be a finite number, got inf"),
        ("--header-timeout-s", "7200", "--header-timeout-s must be a number in [0.001, 3600], got 7200.0"),
    ],
)
def test_numbers_are_checked_in_one_line(capsys, option, value, words):
    assert main(["serve", "--model", "builtin:demo-gold", option, value]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_port_in_use_is_one_line_with_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "builtin:demo-gold", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err and err.count("\n") == 1
