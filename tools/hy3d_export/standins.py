"""Stand-ins for Python packages that Tencent's paint modules or diffusers
import but that the export check does not use, for machines where they are
not installed (Debian 12 packages none of them). Installed only by
`tools/check-hunyuan3d-export --stand-ins` and only for modules that cannot
be imported; a real install always wins.

* einops: `rearrange`, the one function Tencent's paint code calls, for the
  patterns it uses (named axes, parenthesised groups, sizes as keywords).
* huggingface_hub, safetensors, tqdm: diffusers imports them at start-up for
  downloading, loading and progress bars; the check builds models from
  configs and never reaches them. Their names resolve to placeholders that
  fail when called (a decorator applied at import returns its function).
* transformers: 2.1's modules.py imports AutoModel and AutoImageProcessor for
  DINOv2, which the UNet check does not build.
* diffusers' start-up version check of installed distributions (it wants
  metadata for filelock), which would refuse to import.
"""

import importlib.machinery
import importlib.util
import math
import re
import sys
import types


class Placeholder:
    """A name from a package that is not installed."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        raise RuntimeError(f"{self.name} is a stand-in (tools/hy3d_export/standins.py): install the real package")

    def __mro_entries__(self, bases):
        return (object,)


def _module(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__path__ = []
    m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def getattr_(attr, _name=name):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Placeholder(f"{_name}.{attr}")

    m.__getattr__ = getattr_
    sys.modules[name] = m
    return m


def _missing(name: str) -> bool:
    if name in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


# ---------------------------------------------------------------------------
# einops.rearrange


def _parse(side: str):
    """'b (n l) c' → [['b'], ['n', 'l'], ['c']]."""
    groups, tokens = [], re.findall(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*", side)
    cur = None
    for t in tokens:
        if t == "(":
            cur = []
        elif t == ")":
            groups.append(cur)
            cur = None
        elif cur is not None:
            cur.append(t)
        else:
            groups.append([t])
    return groups


def rearrange(x, pattern: str, **sizes):
    """einops.rearrange for reshapes and permutations without ellipsis or
    anonymous axes. Sizes come from the input's shape (traced under
    torch.onnx.export, so a dynamic batch stays dynamic) and the keywords."""
    left, right = (_parse(s) for s in pattern.split("->"))
    if len(left) != x.dim():
        raise ValueError(f"rearrange {pattern!r}: input has {x.dim()} dims")
    known = dict(sizes)
    for group, dim in zip(left, x.shape):
        unknown = [a for a in group if a not in known]
        if len(unknown) > 1:
            raise ValueError(f"rearrange {pattern!r}: cannot infer {unknown}")
        if unknown:
            rest = math.prod(known[a] for a in group if a != unknown[0]) if len(group) > 1 else 1
            known[unknown[0]] = dim // rest if len(group) > 1 else dim
    flat = [a for g in left for a in g]
    x = x.reshape([known[a] for a in flat])
    order = [a for g in right for a in g]
    x = x.permute([flat.index(a) for a in order])
    out = []
    for g in right:
        size = known[g[0]]
        for a in g[1:]:
            size = size * known[a]
        out.append(size)
    return x.reshape(out)


def install() -> list:
    """Install the stand-ins for every missing module; returns their names."""
    done = []
    if _missing("einops"):
        _module("einops", rearrange=rearrange)
        done.append("einops")
    if _missing("huggingface_hub"):
        _module("huggingface_hub", __version__="0.30.2")
        for sub in ("constants", "file_download", "utils", "utils.tqdm", "errors", "hf_api"):
            _module("huggingface_hub." + sub)
        c = sys.modules["huggingface_hub.constants"]
        c.HF_HOME, c.HF_HUB_CACHE = "/nonexistent", "/nonexistent/hub"
        c.HUGGINGFACE_CO_RESOLVE_ENDPOINT, c.HF_HUB_OFFLINE, c.HF_HUB_DISABLE_TELEMETRY = "https://invalid", True, True
        sys.modules["huggingface_hub.utils"].is_jinja_available = lambda: False
        done.append("huggingface_hub")
    for name in ("safetensors", "tqdm", "transformers"):
        if _missing(name):
            _module(name)
            done.append(name)
    if "safetensors" in done:
        _module("safetensors.torch")
    if "tqdm" in done:
        _module("tqdm.auto")
    if "diffusers" not in sys.modules and _missing("filelock"):
        _module("diffusers.dependency_versions_check", dep_version_check=lambda *a, **k: None)
        done.append("diffusers.dependency_versions_check")
    return done
