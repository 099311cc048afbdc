"""CLI: accelsim attention and accelsim map fusemax."""
import json
from types import SimpleNamespace

import pytest

from accelsim.cli import main


@pytest.fixture
def run(capsys):
    """The CLI in-process (same code path as the console script, without interpreter start-up)."""
    def _run(*args):
        with pytest.raises(SystemExit) as done:
            main(list(args))
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=done.value.code, stdout=captured.out, stderr=captured.err)
    return _run


def test_attention_json_has_the_fields(run):
    r = run("attention", "--design", "fusemax", "--model", "trxl", "--seq", "2000", "--batch", "2", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for key in ("latency_s", "dram_bytes", "energy_pj", "util_2d", "util_1d", "buffer_bytes_needed"):
        assert doc[key] > 0
    # seq 2000 is not a multiple of 256: every tensor still moved at its real size once
    assert doc["dram_bytes"] == 2 * 16 * 2000 * 64 * 2 * 4


def test_bad_inputs_exit_2_with_one_line(run):
    for args in (("--design", "fast", "--model", "bert", "--seq", "1024"),
                 ("--design", "flat", "--model", "gpt9", "--seq", "1024"),
                 ("--design", "flat", "--model", "bert", "--seq", "0")):
        r = run("attention", *args)
        assert r.returncode == 2
        assert r.stderr.strip().count("\n") == 0 and "error" in r.stderr
    # flat-edge's 2D array is MAC-only, so FuseMax's binding is refused, naming the op
    r = run("attention", "--design", "fusemax", "--model", "bert", "--seq", "1024", "--hardware", "flat-edge")
    assert r.returncode == 2 and "max" in r.stderr


def test_map_fusemax_json(run):
    r = run("map", "fusemax", "--model", "bert", "--seq", "1024", "--batch", "1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "OPTIMAL"
    assert doc["optimized"]["latency_s"] <= doc["published"]["latency_s"] * (1 + 1e-5)


def _one_line_exit_2(r, *words):
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_map_fusemax_time_limit_must_be_positive(run, limit):
    r = run("map", "fusemax", "--model", "bert", "--seq", "1024", "--batch", "1", "--time-limit", limit)
    _one_line_exit_2(r, "time_limit")
    assert "buffer" not in r.stderr  # the limit is named, not the buffer


@pytest.mark.parametrize("design", ["flat", "unfused"])
def test_three_pass_designs_refuse_a_buffer_below_their_working_set(run, tmp_path, design):
    """A 1000-byte buffer cannot hold FLAT's double-buffered 256x256 output tile (262,144 bytes)
    plus a Q and a K/V tile: refused, naming the tile and the bytes, never a silent 99.9% spill."""
    import yaml
    from accelsim.hardware import load_hardware
    data = load_hardware("flat-cloud").model_dump(mode="json")
    data["global_buffer"]["capacity_bytes"] = 1000
    path = tmp_path / "tiny-buffer.yaml"
    path.write_text(yaml.safe_dump(data))
    r = run("attention", "--design", design, "--model", "bert", "--seq", "1024", "--hardware", str(path))
    need = 2 * 256 * 256 * 2 + 256 * 64 * 2 + 256 * 128 * 2
    _one_line_exit_2(r, "256x256", str(need), "1000")


def test_t5_is_ambiguous_and_t5_small_says_what_it_is(run):
    """The artifact's T5 is T5-small (PAPERS.md: 512, 8 heads, 64, 2048), the zoo's t5 is t5-base:
    the old name is refused with both explained; t5-small runs with the artifact's dimensions."""
    r = run("attention", "--design", "fusemax", "--model", "t5", "--seq", "1024", "--batch", "1")
    _one_line_exit_2(r, "ambiguous", "t5-small", "t5-base")
    r = run("attention", "--design", "fusemax", "--model", "t5-small", "--seq", "1024", "--batch", "1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "t5-small"
    from workloads.models import load_model
    from workloads.attention import attention_model
    zoo = load_model("t5")
    assert attention_model("t5-small").d_model != zoo.hidden_size  # two models, now two names
    for name in ("bert-base", "trxl", "xlm"):  # the others agree with their zoo files
        cfg, m = load_model(name), attention_model(name)
        assert (cfg.hidden_size, cfg.num_heads, cfg.ffn_size) == (m.d_model, m.heads, m.ffn)


def test_saved_mapping_replays_to_the_optimized_numbers(run, tmp_path):
    """map fusemax --save-mapping writes a Mapping (typed pipeline, no pickled plan); attention
    --mapping replays it to the numbers the mapper reported, and so does accelsim.simulate."""
    path = tmp_path / "opt.yaml"
    r = run("map", "fusemax", "--model", "bert", "--seq", "1024", "--batch", "1", "--save-mapping", str(path),
            "--json")
    assert r.returncode == 0, r.stderr
    opt = json.loads(r.stdout)["optimized"]
    r = run("attention", "--mapping", str(path), "--model", "bert", "--seq", "1024", "--batch", "1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["latency_s"] == opt["latency_s"] and doc["dram_bytes"] == opt["dram_bytes"]
    from accelsim.mapping import Mapping
    from accelsim.simulate import simulate
    from workloads.attention import attention_model, mapped_graph
    mapping = Mapping.load(path)
    assert "plan" not in mapping.meta and mapping.pipeline.stages
    s = attention_model("bert").shape(1024, batch=1)
    rep = simulate(mapped_graph(s, mapping), "fusemax-cloud", mapping)  # the registered spatial engine
    assert rep.core.total_s == opt["latency_s"] and rep.totals["latency_s"] == opt["latency_s"]
    # a mapping for another sequence length does not fit that Graph: one clear line, exit 2
    r = run("attention", "--mapping", str(path), "--model", "bert", "--seq", "100", "--batch", "1")
    _one_line_exit_2(r, "m0")


def test_map_fusemax_under_an_area_budget_optimizes_the_design_that_fits():
    import json

    from tests.cli_helper import cli_in_process

    done = cli_in_process("map", "fusemax", "--model", "bert", "--seq", "1024", "--batch", "1",
                          "--area-budget-um2", "4e8", "--time-limit", "2", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    best = doc["sizing"][0]
    assert best["fits_budget"] and best["area_um2"] <= 4e8
    assert doc["hardware"].endswith(f"-pe{best['pe_dim']}")  # the mapping is for the sized design
