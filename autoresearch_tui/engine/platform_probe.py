"""Run by the training command's own interpreter (so it sees the project's torch); prints JSON.

This file is executed as a script in a subprocess; it is never imported by the app.
"""

import json
import sys

# This file's folder (the app's engine package) must not shadow the standard library.
sys.path = [p for p in sys.path[1:]]


def main() -> None:
    info = {"python": sys.version.split()[0], "torch": None, "cuda": False, "mps": False}
    try:
        import torch
    except Exception as exc:  # no torch in that environment
        info["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(info))
        return
    info["torch"] = torch.__version__
    try:
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            props = torch.cuda.get_device_properties(0)
            info["device_name"] = props.name
            info["device_count"] = torch.cuda.device_count()
            info["memory_gb"] = round(props.total_memory / 2**30, 1)
            info["capability"] = list(torch.cuda.get_device_capability(0))
            info["bf16"] = bool(torch.cuda.is_bf16_supported())
    except Exception as exc:
        info["cuda_error"] = str(exc)
    try:
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = bool(mps is not None and mps.is_available())
    except Exception:
        pass
    try:
        import flash_attn  # noqa: F401

        info["flash_attn"] = True
    except Exception:
        info["flash_attn"] = False
    info["compile"] = hasattr(torch, "compile")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
