"""tools/check-deps: passes on the repository, and fails, naming the file, the module or command and
the package, on copies of it with one dependency no install step provides."""

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(REPO, "tools", "check-deps")


def load_check():
    loader = importlib.machinery.SourceFileLoader("check_deps", CHECK)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("check_deps", loader))
    loader.exec_module(module)
    return module


def run_check(root):
    return subprocess.run([sys.executable, CHECK, "--root", root], capture_output=True, text=True)


def copy_repository(dest):
    """The files the check reads (the Makefile, tools/, bench/, the Go sources), without build output."""
    shutil.copytree(REPO, dest, ignore=lambda d, names: [
        n for n in names if n.startswith(".") or n.startswith("build") or n in ("bin", "engines", "node_modules")
        or (os.path.basename(d) == "bench" and n == "out")])


class RepositoryTest(unittest.TestCase):
    def test_passes(self):
        run = run_check(REPO)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("each from an install step", run.stdout)


class BrokenCopyTest(unittest.TestCase):
    """Each case adds files to (or edits) a copy of the repository and names the lines the check must print."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "repo")
        copy_repository(self.root)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def edit(self, rel, old, new):
        path = os.path.join(self.root, rel)
        with open(path) as f:
            text = f.read()
        self.assertEqual(text.count(old), 1, f"{rel}: {old!r}")
        with open(path, "w") as f:
            f.write(text.replace(old, new))

    def test_the_copy_passes_unbroken(self):
        run = run_check(self.root)
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_failures_name_file_dependency_and_package(self):
        cases = [
            ("a module whose package no list names, imported inside a function",
             lambda: (self.write("tools/tests/test_yaml.py", "def load():\n    import yaml.constructor\n"),
                      self.edit("tools/deps.toml", "[modules]\n", '[modules]\nyaml = "python3-yaml"\n')),
             ["tools/tests/test_yaml.py imports module yaml, from package python3-yaml, "
              "which make deps (APT_PACKAGES) does not install"]),
            ("a module no mapping names, in an extension-less script",
             lambda: self.write("tools/fetch-weights", "#!/usr/bin/env python3\nfrom frobnicate import fetch\n"),
             ["tools/fetch-weights imports module frobnicate, which tools/deps.toml maps to no Debian package"]),
            ("a benchmark-only package imported by a tool test",
             lambda: self.write("tools/tests/test_vtk.py", "import vtkmodules.vtkCommonCore\n"),
             ["tools/tests/test_vtk.py imports module vtkmodules, from package python3-vtk9, "
              "which make deps (APT_PACKAGES) does not install"]),
            ("a wrong mapping that the lists hide",
             lambda: self.edit("tools/deps.toml", 'numpy = "python3-numpy"', 'numpy = "python3-scipy"'),
             ["tools/deps.toml says module numpy comes from python3-scipy, but dpkg -S says",
              "numpy/__init__.py belongs to python3-numpy"]),
            ("a mapping nothing uses",
             lambda: self.edit("tools/deps.toml", "[modules]\n", '[modules]\nlxml = "python3-lxml"\n'),
             ["tools/deps.toml: nothing uses the module lxml any more"]),
            ("a command a Go test runs, directly and under a wrapper",
             lambda: self.write("internal/fake/fake_test.go",
                                'package fake\n\nimport "os/exec"\n\nfunc run() {\n'
                                '\t_ = exec.Command("jq", ".").Run()\n'
                                '\t_ = exec.CommandContext(ctx(), "xvfb-run", "-a", "meshlabserver", "-i", in).Run()\n}\n'),
             ["internal/fake/fake_test.go calls command jq, which tools/deps.toml maps to no Debian package",
              "internal/fake/fake_test.go calls command meshlabserver, from package meshlab, "
              "which make deps (APT_PACKAGES) does not install",
              "internal/fake/fake_test.go calls command xvfb-run, from package xvfb, "
              "which make deps (APT_PACKAGES) does not install"]),
            ("a command a Go helper runs for its callers",
             lambda: self.write("bench/fake/main.go",
                                'package main\n\nimport "os/exec"\n\n'
                                'func timed(dir, name string, args ...string) error {\n'
                                '\treturn exec.Command(name, args...).Run()\n}\n\n'
                                'func main() { _ = timed(".", "blender", "-b") }\n'),
             ["bench/fake/main.go calls command blender, which tools/deps.toml maps to no Debian package"]),
            ("a command a Python test runs",
             lambda: self.write("tools/tests/test_tool.py",
                                'import os\nimport shutil\nimport subprocess\n\n'
                                'subprocess.run([os.environ.get("JQ", "jq"), "."])\nshutil.which("gzip")\n'),
             ["tools/tests/test_tool.py calls command jq, which tools/deps.toml maps to no Debian package",
              "tools/tests/test_tool.py calls command gzip, which tools/deps.toml maps to no Debian package"]),
            ("a command a recipe of make test runs",
             lambda: self.edit("Makefile", "\tGO=$(GO) PYTHONDONTWRITEBYTECODE=1",
                               "\tjq --version >/dev/null\n\tGO=$(GO) PYTHONDONTWRITEBYTECODE=1"),
             ["Makefile (the recipes of make test) calls command jq, which tools/deps.toml maps to no Debian package"]),
            ("a command a benchmark script runs through a variable",
             lambda: self.write("bench/fake/run.sh", '#!/usr/bin/env bash\nviewer=f3d  # a viewer\n"$viewer" out.glb\n'),
             ["bench/fake/run.sh calls command f3d, which tools/deps.toml maps to no Debian package"]),
        ]
        for name, breaks, want in cases:
            with self.subTest(name):
                self.tearDown()
                self.setUp()
                breaks()
                run = run_check(self.root)
                self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
                for line in want:
                    self.assertIn(line, run.stderr)


class ShellCommandsTest(unittest.TestCase):
    def test_commands_of_shell_text(self):
        check = load_check()
        cases = [
            ("cd build/npm && npm install x", {"npm"}),
            ('SUDO=$( [ "$(id -u)" = 0 ] || echo sudo ); $SUDO apt-get update -q && FOO=1 $SUDO apt-get install x',
             {"id", "apt-get"}),
            ("flock build/.lock sh -c 'cmake -S . -B build >/dev/null && cmake --build build -j$(nproc)'",
             {"flock", "sh", "cmake", "nproc"}),
            ('for p in a b; do dpkg -s $p >/dev/null 2>&1 || command -v $p >/dev/null 2>&1 || missing="$missing $p"; done',
             {"dpkg"}),
            ('python=/usr/bin/python3  # Debian\'s\n"$python" bench/fields.py "$out"', {"/usr/bin/python3"}),
            ('engines=()\n[[ -n "$E" ]] && engines=(--engines "$E")\nbin/hy3d serve "${engines[@]}" &', set()),
            ("go run -ldflags \"-X main.v=$(sha256sum build/lib.a | cut -c1-16)\" ./bench/x \\\n  -dir out",
             {"go", "sha256sum", "cut"}),
            ("xvfb-run -a meshlabserver -i in.ply", {"xvfb-run", "meshlabserver"}),
            ("bash -euo pipefail -c 'tools/make-tiny-engines --out x; rm -r x'", {"bash", "rm"}),
            ('go=${GO:-go}\ncache="$($go env GOCACHE)/fuzz"\n$go test ./x', {"go"}),
            ("count=$((count + 1))", set()),
        ]
        for text, want in cases:
            with self.subTest(text):
                self.assertEqual(set(check.shell_commands(text)), want)


if __name__ == "__main__":
    unittest.main()
