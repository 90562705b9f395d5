"""utils/parse_options.sh follows Kaldi's rules (our own implementation)."""

from __future__ import annotations

import textwrap

from conftest import REPO, run


def script(tmp_path, body_after: str = 'echo "nj=$nj foo_bar=$foo_bar flag=$flag rest=$*"'):
    s = tmp_path / "s.sh"
    s.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        nj=4            # jobs
        foo_bar=x       # a name with an underscore
        flag=false      # a boolean
        empty=          # declared but empty
        help_message="Usage: s.sh [options] <args>"
        . {REPO}/utils/parse_options.sh
        set -euo pipefail
        {body_after}
        """))
    return s


def test_defaults_and_overrides(tmp_path):
    s = script(tmp_path)
    assert run(["bash", s]).stdout.strip() == "nj=4 foo_bar=x flag=false rest="
    out = run(["bash", s, "--nj", "8", "--foo-bar", "y", "--flag", "true", "a", "b"]).stdout.strip()
    assert out == "nj=8 foo_bar=y flag=true rest=a b"
    # underscores work as well as dashes; a declared empty variable is settable
    assert run(["bash", s, "--foo_bar", "z", "--empty", "v"]).stdout.strip().startswith("nj=4 foo_bar=z")


def test_value_with_spaces_and_later_option_wins(tmp_path):
    s = script(tmp_path)
    out = run(["bash", s, "--foo-bar", "a b  c", "--nj", "1", "--nj", "2"]).stdout.strip()
    assert out == "nj=2 foo_bar=a b  c flag=false rest="


def test_unknown_option_is_an_error(tmp_path):
    p = run(["bash", script(tmp_path), "--no-such-option", "1"], check=False)
    assert p.returncode == 2
    assert "unknown option '--no-such-option'" in p.stderr
    assert p.stdout == ""


def test_boolean_accepts_only_true_false(tmp_path):
    p = run(["bash", script(tmp_path), "--flag", "yes"], check=False)
    assert p.returncode == 2 and "takes 'true' or 'false'" in p.stderr


def test_missing_value_and_equals_form(tmp_path):
    p = run(["bash", script(tmp_path), "--nj"], check=False)
    assert p.returncode == 2 and "needs a value" in p.stderr
    p = run(["bash", script(tmp_path), "--nj=3"], check=False)
    assert p.returncode == 2 and "--name value" in p.stderr


def test_config_is_read_first_and_command_line_wins(tmp_path):
    cfg = tmp_path / "my.conf"
    cfg.write_text("nj=16\nfoo_bar=from_config\n")
    s = script(tmp_path)
    assert run(["bash", s, "--nj", "2", "--config", cfg]).stdout.strip() == "nj=2 foo_bar=from_config flag=false rest="
    p = run(["bash", s, "--config", tmp_path / "missing.conf"], check=False)
    assert p.returncode == 2 and "missing.conf" in p.stderr


def test_help_prints_message_and_exits_0(tmp_path):
    p = run(["bash", script(tmp_path, body_after="echo SHOULD_NOT_RUN"), "--help"])
    assert p.stdout.strip() == "Usage: s.sh [options] <args>"


def test_double_dash_stops_parsing(tmp_path):
    out = run(["bash", script(tmp_path), "--nj", "3", "--", "--flag", "x"]).stdout.strip()
    assert out == "nj=3 foo_bar=x flag=false rest=--flag x"
