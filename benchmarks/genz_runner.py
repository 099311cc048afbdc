"""Run GenZ (genz-llm) cases given as JSON on stdin; print JSON results. Executed with the
interpreter of a separate venv that has genz-llm installed (see roofline_vs_peers.py)."""
import json
import sys
import warnings

warnings.filterwarnings("ignore")
from GenZ import decode_moddeling, prefill_moddeling  # noqa: E402

out = []
for case in json.load(sys.stdin):
    system = {"Flops": case["tflops"], "Memory_size": 80, "Memory_BW": case["mem_gbps"], "ICN": case["icn_gbps"],
              "real_values": True}
    try:
        if case["phase"] == "prefill":
            r = prefill_moddeling(model=case["model"], batch_size=case["batch"], input_tokens=case["seq"],
                                  system_name=system, bits="bf16", tensor_parallel=case["tp"])
        else:
            r = decode_moddeling(model=case["model"], batch_size=case["batch"], input_tokens=case["context"], Bb=1,
                                 system_name=system, bits="bf16", tensor_parallel=case["tp"])
        bd = r["Runtime_breakdown"]
        out.append(dict(case, latency_ms=float(r["Latency"]),
                        breakdown={k: float(getattr(bd, k)) for k in ("Embedding", "MHA", "FFN", "Collective")}))
    except Exception as err:  # report, never hide
        out.append(dict(case, error=f"{type(err).__name__}: {err}"))
print(json.dumps(out))
