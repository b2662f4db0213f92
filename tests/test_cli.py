from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.cli.main import main

REPO = Path(__file__).parent.parent


def test_check_config_accepts_the_example(capsys) -> None:
    assert main(["check-config", str(REPO / "config" / "gateway.toml")]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_config_prints_every_problem_and_exits_1(tmp_path: Path, capsys) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "real.py").write_text("def main(): pass\n")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[routes]]\npath = "/a"\nscript = "real"\nmode = "fast"\n[[routes]]\npath = "/b"\nscript = "ghost"\n'
    )
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'routes[0].mode: expected "async", "sync", "both" or "stream", got "fast"' in err
    bad.write_text('[[routes]]\npath = "/b"\nscript = "ghost"\n')
    assert main(["check-config", str(bad)]) == 1
    assert 'routes[0].script: no engine has a script "ghost"' in capsys.readouterr().err


def test_python_dash_m_is_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in result.stdout and "check-config" in result.stdout and "jobs" in result.stdout


def test_jobs_list_and_show_read_the_store(tmp_path: Path, capsys) -> None:
    import asyncio

    from gateway.models import Job
    from gateway.store import SQLiteStore

    config = tmp_path / "g.toml"
    (tmp_path / "scripts").mkdir()
    config.write_text('[server]\ndata_dir = "data"\n')

    async def seed() -> None:
        store = SQLiteStore(tmp_path / "data" / "hookgate.db")
        await store.open()
        await store.create_jobs([Job(id="job-1", engine="local", script="u/x", created_at=1, run_after=1)])
        await store.close()

    asyncio.run(seed())
    assert main(["jobs", "--config", str(config), "list"]) == 0
    assert "job-1" in capsys.readouterr().out
    assert main(["jobs", "--config", str(config), "show", "job-1"]) == 0
    assert '"script": "u/x"' in capsys.readouterr().out
    assert main(["jobs", "--config", str(config), "show", "nope"]) == 1


def test_token_hash_prints_a_token_and_its_hash(capsys) -> None:
    import hashlib

    assert main(["token", "hash"]) == 0
    out = capsys.readouterr().out
    token = out.split("token: ")[1].split()[0]
    digest = out.split("hash:  ")[1].split()[0]
    assert token.startswith("hg_") and hashlib.sha256(token.encode()).hexdigest() == digest


def test_token_issue_refuses_an_unknown_route_and_rotate_key_rotates(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    (tmp_path / "scripts").mkdir()
    config = tmp_path / "g.toml"
    config.write_text('[server]\ndata_dir = "data"\n')
    assert main(["token", "--config", str(config), "issue", "--route", "/nope"]) == 1
    assert (
        main(["token", "--config", str(config), "issue", "--script", "u/x", "--ttl", "1h", "--label", "x"])
        == 0
    )
    capsys.readouterr()
    before = json.loads((tmp_path / "data" / "jwt-keys.json").read_text())["keys"]
    assert main(["token", "--config", str(config), "rotate-key"]) == 0
    after = json.loads((tmp_path / "data" / "jwt-keys.json").read_text())["keys"]
    assert len(after) == 2 and after[1] == before[0]
    assert main(["token", "--config", str(config), "list"]) == 0
    assert "script:u/x" in capsys.readouterr().out


def test_deliveries_lists_attempts(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from gateway.models import Attempt, Delivery
    from gateway.store import SQLiteStore

    (tmp_path / "scripts").mkdir()
    config = tmp_path / "g.toml"
    config.write_text('[server]\ndata_dir = "data"\n')

    async def seed() -> None:
        store = SQLiteStore(tmp_path / "data" / "hookgate.db")
        await store.open()
        delivery = Delivery(
            id="msg_1",
            subscription="ops",
            event_id="e",
            event_type="WorkflowFailed",
            url="https://x",
            body=b"{}",
            content_type="application/json",
            created_at=1.0,
            next_attempt_at=1.0,
        )
        await store.enqueue_deliveries([delivery])
        await store.settle_delivery(
            Attempt("msg_1", 1, 2.0, 5.0, status=503), state="pending", next_attempt_at=9.0
        )
        await store.close()

    asyncio.run(seed())
    assert main(["deliveries", "--config", str(config), "--state", "pending"]) == 0
    out = capsys.readouterr().out
    assert "msg_1" in out and "ops" in out and "#1" in out and "503" in out


def test_check_config_names_every_flow_problem_at_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    scripts, flows = tmp_path / "scripts", tmp_path / "flows" / "f"
    (scripts / "u").mkdir(parents=True)
    flows.mkdir(parents=True)
    (scripts / "u" / "real.py").write_text("def main(**kw):\n    return kw\n")
    (scripts / "f").mkdir()
    (scripts / "f" / "twin.py").write_text("def main(): pass\n")  # the path f/twin is also a flow
    files = {
        "needs": '[[steps]]\nid = "a"\nscript = "u/real"\nneeds = ["ghost"]\n',
        "cycle": '[[steps]]\nid = "a"\nscript = "u/real"\nneeds = ["b"]\n'
        '[[steps]]\nid = "b"\nscript = "u/real"\nneeds = ["a"]\n',
        "script": '[[steps]]\nid = "a"\nscript = "u/nowhere"\n[[steps]]\nid = "b"\nscript = "u/real"\nengine = "gpu"\n',
        "expr": '[[steps]]\nid = "a"\nscript = "u/real"\ninput = { x = "${flow_input.}" }\n'
        f'[[steps]]\nid = "b"\nscript = "u/real"\nwhen = "${{{"1 + " * 1200}1}}"\n',
        "early": 'early_return = "later"\n[[steps]]\nid = "a"\nscript = "u/real"\n',
        "twin": '[[steps]]\nid = "a"\nscript = "u/real"\n',
    }
    for name, text in files.items():
        (flows / f"{name}.flow.toml").write_text(text)
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[flows]\ndir = "flows"\n[[routes]]\npath = "/r"\nflow = "f/missing"\n'
        '[[routes]]\npath = "/s"\nscript = "u/real"\n'
    )
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert 'flow f/needs: steps[0].needs: no step "ghost" (steps: a)' in err
    assert "flow f/cycle: steps: a cycle: a → b → a" in err
    assert 'flow f/script: steps[0].script: no engine has a script "u/nowhere"' in err
    assert 'flow f/script: steps[1].engine: no engine "gpu" (engines: local)' in err
    assert "flow f/expr: steps[0].input: " in err and "flow f/expr: steps[1].when: " in err
    assert "characters long, more than 2000" in err  # the 1200-term when exceeds a bound
    assert "syntax error at 1:12" in err
    assert 'flow f/early: early_return: no step "later" (steps: a)' in err
    assert 'flow f/twin: a script and a flow are both named "f/twin"; rename one' in err
    assert 'routes[0].flow: no flow "f/missing"' in err
    (tmp_path / "flows").rename(tmp_path / "elsewhere")  # every flow file gone: only the route is wrong
    assert main(["check-config", str(config)]) == 1
    assert 'routes[0].flow: no flow "f/missing" (flows: none: is [flows] dir set?)' in capsys.readouterr().err
