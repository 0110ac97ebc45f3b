"""tools/make-scheduler-goldens: its loader imports the three scheduler modules from a diffusers-shaped
source tree without running the package __init__ or the pip-metadata check, with stand-ins for the
modules Debian lacks that raise when called; and its tensors decode as the Go tests read them. The tree
here is a look-alike written by the test (the real checkout is not part of make test)."""

import base64
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "make-scheduler-goldens")

# A look-alike of diffusers' layout: the package __init__ and the version check fail if run, utils
# imports huggingface_hub and tqdm the way diffusers.utils does, and each scheduler module imports utils.
FILES = {
    "diffusers/__init__.py": '__version__ = "9.9.9"\nraise ImportError("the package __init__ ran")\n',
    "diffusers/dependency_versions_check.py": 'raise ImportError("the pip-metadata check ran")\n',
    "diffusers/utils/__init__.py": textwrap.dedent("""\
        from huggingface_hub.constants import HF_HOME
        from huggingface_hub.utils import validate_hf_hub_args, RevisionNotFoundError
        from huggingface_hub import hf_hub_download
        from tqdm import auto as tqdm_lib
        from ..dependency_versions_check import dep_version_check
        dep_version_check("filelock")

        @validate_hf_hub_args
        def decorated():
            return "decorated"

        def download():
            return hf_hub_download("x")
        """),
    "diffusers/schedulers/__init__.py": "from ..utils import HF_HOME\n",
}
for name in ("EulerAncestralDiscreteScheduler", "LCMScheduler", "UniPCMultistepScheduler"):
    module = {"EulerAncestralDiscreteScheduler": "scheduling_euler_ancestral_discrete",
              "LCMScheduler": "scheduling_lcm", "UniPCMultistepScheduler": "scheduling_unipc_multistep"}[name]
    FILES[f"diffusers/schedulers/{module}.py"] = f"from ..utils import decorated\nclass {name}:\n    pass\n"

PROBE = textwrap.dedent("""\
    import importlib.machinery, importlib.util, sys
    loader = importlib.machinery.SourceFileLoader("goldens", sys.argv[1])
    spec = importlib.util.spec_from_loader("goldens", loader)
    goldens = importlib.util.module_from_spec(spec)
    loader.exec_module(goldens)
    version, classes = goldens.load_schedulers(sys.argv[2])
    import diffusers.utils as utils
    try:
        utils.download()
        raised = False
    except RuntimeError:
        raised = True
    print(version, sorted(classes), utils.decorated(), isinstance(utils.HF_HOME, str), raised)
    """)


class LoaderTest(unittest.TestCase):
    def test_loads_schedulers_with_shims_only(self):
        with tempfile.TemporaryDirectory() as src:
            for rel, text in FILES.items():
                path = os.path.join(src, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
            probe = os.path.join(src, "probe.py")
            with open(probe, "w") as f:
                f.write(PROBE)
            out = subprocess.run([sys.executable, probe, SCRIPT, src], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), [
            "9.9.9", "['EulerAncestralDiscreteScheduler',", "'LCMScheduler',", "'UniPCMultistepScheduler']",
            "decorated", "True", "True"])


class EncodingTest(unittest.TestCase):
    def test_tensors_are_little_endian_float32(self):
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader("make_scheduler_goldens", SCRIPT)
        spec = importlib.util.spec_from_loader("make_scheduler_goldens", loader)
        goldens = importlib.util.module_from_spec(spec)
        loader.exec_module(goldens)
        t = torch.tensor([1.0, -2.5, 3.0e-8], dtype=torch.float32)
        raw = base64.b64decode(goldens.encode(t))
        np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4"), t.numpy())
        self.assertEqual(goldens.exact(np.float32(0.1)), float(np.float32(0.1)))


if __name__ == "__main__":
    unittest.main()
