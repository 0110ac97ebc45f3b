"""tools/fuzz: a run fails on a failing input or any unexplained error, and lets pass only Go 1.26's
bare fuzztime-deadline race (go.dev/issue/75804), after one retry. The Go command is a stand-in ($GO)
that answers as `go test -fuzz` does in each case."""

import os
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "fuzz")

# The stand-in go: `env GOCACHE` and `list -m` as the real one; `test` answers per $FAKE_MODE and
# counts its calls in $FAKE_CALLS. "flake-once" flakes on the first call only.
FAKE_GO = r"""#!/usr/bin/env bash
case "$1" in
  env) echo "$FAKE_CACHE"; exit 0 ;;
  list) echo github.com/hy3d/hy3d; exit 0 ;;
esac
echo call >> "$FAKE_CALLS"
calls=$(wc -l < "$FAKE_CALLS")
mode=$FAKE_MODE
[ "$mode" = flake-once ] && { [ "$calls" = 1 ] && mode=flake || mode=pass; }
case "$mode" in
  pass) echo ok; exit 0 ;;
  flake) printf -- '--- FAIL: FuzzX (3.03s)\n    context deadline exceeded\nFAIL\n'; exit 1 ;;
  crash) printf -- '--- FAIL: FuzzX (0.10s)\n    context deadline exceeded\n    Failing input written to testdata/fuzz/FuzzX/0123\n'; exit 1 ;;
  panic) printf -- 'panic: index out of range\n'; exit 2 ;;
esac
"""


class FuzzScriptTest(unittest.TestCase):
    def run_script(self, mode):
        with tempfile.TemporaryDirectory() as tmp:
            go = os.path.join(tmp, "go")
            with open(go, "w") as f:
                f.write(FAKE_GO)
            os.chmod(go, 0o755)
            calls = os.path.join(tmp, "calls")
            open(calls, "w").close()
            env = dict(os.environ, GO=go, FUZZTIME="1s", KEEP="0", FAKE_MODE=mode, FAKE_CALLS=calls,
                       FAKE_CACHE=os.path.join(tmp, "cache"))
            run = subprocess.run([SCRIPT], env=env, capture_output=True, text=True, timeout=120)
            with open(calls) as f:
                return run, len(f.readlines())

    def test_outcomes(self):
        files = subprocess.run(["git", "ls-files", "*_test.go"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.split()
        targets = 0
        for name in files:
            with open(os.path.join(REPO, name)) as f:
                targets += sum(line.startswith("func Fuzz") for line in f)
        cases = [
            # mode, exit code, go test calls, what stderr says
            ("pass", 0, targets, "no failure"),
            ("flake-once", 0, targets + 1, "deadline race"),
            ("flake", 0, 2 * targets, "deadline race"),
            ("crash", 1, 1, "failed"),
            ("panic", 1, 1, "failed"),
        ]
        for mode, code, calls, says in cases:
            with self.subTest(mode):
                run, got = self.run_script(mode)
                self.assertEqual(run.returncode, code, run.stderr)
                self.assertEqual(got, calls)
                self.assertIn(says, run.stderr)


if __name__ == "__main__":
    unittest.main()
