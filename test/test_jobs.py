"""utils/run_local.sh (Kaldi run.pl semantics), utils/slurm.sh (through a stand-in sbatch) and
utils/split_scp.sh."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import stat
import textwrap

from conftest import REPO, pids_matching, run

RUN = str(REPO / "utils" / "run_local.sh")
SLURM = str(REPO / "utils" / "slurm.sh")


def test_jobs_run_with_their_index_and_one_log_each(tmp_path):
    run([RUN, "--max-jobs-run", "2", "JOB=1:4", f"{tmp_path}/log/j.JOB.log", "bash", "-c",
         f"echo job JOB > {tmp_path}/out.JOB"])
    for n in range(1, 5):
        assert (tmp_path / f"out.{n}").read_text() == f"job {n}\n"
        log = (tmp_path / "log" / f"j.{n}.log").read_text()
        assert log.splitlines()[0].startswith("# bash -c")
        assert "# Ended (code 0)" in log


def test_a_failing_job_fails_the_stage_and_shows_its_log(tmp_path):
    p = run([RUN, "JOB=1:3", f"{tmp_path}/j.JOB.log", "bash", "-c",
             "echo line-from-JOB; if [ JOB = 2 ]; then echo boom-JOB >&2; exit 3; fi"], check=False)
    assert p.returncode == 1
    assert "1 / 3 failed (jobs: 2)" in p.stderr
    assert "boom-2" in p.stderr  # the tail of the failed log
    assert "# Ended (code 3)" in (tmp_path / "j.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "j.3.log").read_text()  # the others still ran


def test_killed_launcher_stops_its_jobs(tmp_path):
    """kill -TERM of the launcher leaves no job running with PPID 1 (Kaldi's run.pl does the same)."""
    duration = f"{600 + os.getpid() % 1000}.25"        # a unique command line to look for
    marker = f"^sleep {duration}$"
    p = subprocess.Popen([RUN, "JOB=1:2", str(tmp_path / "log.JOB"), "sleep", duration],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and len(pids_matching(marker)) < 2:
        time.sleep(0.05)
    assert len(pids_matching(marker)) == 2
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 143 and "killed" in err
    deadline = time.time() + 10
    while time.time() < deadline and pids_matching(marker):
        time.sleep(0.05)
    assert pids_matching(marker) == []



def test_single_job_and_usage_errors(tmp_path):
    run([RUN, f"{tmp_path}/one.log", "echo", "hello world"])
    assert "hello world" in (tmp_path / "one.log").read_text()
    assert run([RUN, "JOB=1:2", f"{tmp_path}/nojob.log", "true"], check=False).returncode == 2
    assert run([RUN, "JOB=3:1", f"{tmp_path}/x.JOB.log", "true"], check=False).returncode == 2


def test_arguments_with_spaces_survive(tmp_path):
    run([RUN, "JOB=1:1", f"{tmp_path}/s.JOB.log", "python", "-c",
         f"import sys; open('{tmp_path}/args', 'w').write(repr(sys.argv[1:]))", "a b", "c'd"])
    assert (tmp_path / "args").read_text() == repr(["a b", "c'd"])


def fake_sbatch(bindir):
    """An sbatch that runs every array task locally, in order, as Slurm would."""
    bindir.mkdir()
    sb = bindir / "sbatch"
    sb.write_text(textwrap.dedent("""\
        #!/usr/bin/env bash
        array=""; script=""
        for a in "$@"; do
          case "$a" in --array=*) array=${a#--array=}; array=${array%%%*} ;; -*) ;; *) script=$a ;; esac
        done
        echo "$@" > "$(dirname "$0")/args"
        rc=0
        for n in $(seq ${array%-*} ${array#*-}); do SLURM_ARRAY_TASK_ID=$n bash "$script" || rc=1; done
        exit $rc
        """))
    sb.chmod(sb.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_slurm_launcher_submits_an_array_and_reports_failures(tmp_path):
    bindir = fake_sbatch(tmp_path / "bin")
    path = f"{bindir}:{os.environ['PATH']}"
    run([SLURM, "--mem", "2G", "--gpu", "1", "JOB=1:3", f"{tmp_path}/log/s.JOB.log", "bash", "-c",
         f"echo task JOB > {tmp_path}/t.JOB"], cwd=tmp_path, PATH=path)
    assert [(tmp_path / f"t.{n}").read_text() for n in (1, 2, 3)] == ["task 1\n", "task 2\n", "task 3\n"]
    args = (bindir / "args").read_text()
    assert "--array=1-3" in args and "--mem=2G" in args and "--gres=gpu:1" in args
    p = run([SLURM, "JOB=1:2", f"{tmp_path}/log/f.JOB.log", "bash", "-c", "[ JOB = 1 ] || { echo bad-JOB; exit 1; }"],
            cwd=tmp_path, PATH=path, check=False)
    assert p.returncode == 1 and "1 / 2 failed" in p.stderr and "bad-2" in p.stderr


def test_split_scp_keeps_order_and_balances(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i:02d} /x/{i}.wav\n" for i in range(10)))
    outs = [tmp_path / f"wav.{n}.scp" for n in (1, 2, 3)]
    run([str(REPO / "utils" / "split_scp.sh"), scp, *outs])
    parts = [o.read_text().splitlines() for o in outs]
    assert [len(p) for p in parts] == [3, 3, 4]
    assert sum(parts, []) == scp.read_text().splitlines()
    p = run([str(REPO / "utils" / "split_scp.sh"), scp, *[tmp_path / f"o{n}" for n in range(11)]], check=False)
    assert p.returncode == 1 and "cannot split" in p.stderr
