"""The systolic engine: fast path vs cycle-stepped reference, and the physics of its memory model."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.systolic import (
    FoldGeometry,
    apportion,
    fold_edges,
    simulate_gemm,
    simulate_gemm_reference,
    simulate_graph,
)
from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape, Graph, Operand, OpKind, Tensor, TensorRole, conv2d, gemm
from workloads.examples import default_example


def accelerator(rows: int, cols: int, dataflow: str, *, ifmap: int = 1 << 20, filt: int = 1 << 20,
                ofmap: int = 1 << 20, bw: float = 1e9, word_bytes: int = 1) -> SystolicAccelerator:
    return SystolicAccelerator(
        name="test", clock_hz=1e9, word_bytes=word_bytes,
        array={"rows": rows, "cols": cols, "dataflow": dataflow},
        sram={"ifmap_bytes": ifmap, "filter_bytes": filt, "ofmap_bytes": ofmap},
        dram={"name": "dram", "bandwidth_bytes_per_cycle": bw},
    )


dims = st.integers(1, 24)
edges = st.integers(1, 7)
dataflows = st.sampled_from(["os", "ws", "is"])
sram = st.integers(2, 3000)
bandwidth = st.sampled_from([0.25, 0.5, 1.0, 3.0, 7.5, 16.0, 1e6])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(m=dims, k=dims, n=dims, rows=edges, cols=edges, df=dataflows, i=sram, f=sram, o=sram, bw=bandwidth,
       wb=st.sampled_from([1, 2]), footprint=st.floats(0.05, 1.0))
def test_fast_path_equals_cycle_stepped_reference(m, k, n, rows, cols, df, i, f, o, bw, wb, footprint):
    hw = accelerator(rows, cols, df, ifmap=i, filt=f, ofmap=o, bw=bw, word_bytes=wb)
    shape = GemmShape(m=m, k=k, n=n)
    words = max(1, int(m * k * footprint))
    assert simulate_gemm(shape, hw, ifmap_words=words) == simulate_gemm_reference(shape, hw, ifmap_words=words)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(m=dims, k=dims, n=dims, rows=edges, cols=edges, df=dataflows)
def test_sram_counts_follow_from_the_work(m, k, n, rows, cols, df):
    """Every MAC needs one ifmap and one filter operand delivered to some PE; outputs are conserved."""
    row = simulate_gemm(GemmShape(m=m, k=k, n=n), accelerator(rows, cols, df))
    reads, writes = row["sram_reads"], row["sram_writes"]
    assert reads["ifmap"] >= m * k and reads["filter"] >= k * n
    # each array-side ofmap write is either a final output or a partial sum that is read back later
    assert writes["ofmap"] == reads["ofmap"] + m * n
    assert row["busy_cycles"] * rows * cols >= row["macs"]  # a PE does at most one MAC per cycle
    # a physical lower bound, independent of the engine's fold formula: in each fold every used
    # PE does T MACs, one per cycle, and the T-th operand entering a lane must still hop across
    # the fold's max(used rows, used cols) - 1 further PEs before the last MAC
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[df]
    used_r = [min(rows, sr - i) for i in range(0, sr, rows)]
    used_c = [min(cols, sc - j) for j in range(0, sc, cols)]
    floor = sum(t + max(ur, uc) - 1 for ur in used_r for uc in used_c)
    assert row["compute_cycles"] + 1 >= floor
    assert 0 < row["mapping_efficiency"] <= 1 and 0 < row["overall_utilization"] <= 1


def test_stationary_operand_is_read_exactly_once():
    shape = GemmShape(m=50, k=70, n=30)
    assert simulate_gemm(shape, accelerator(8, 8, "ws"))["sram_reads"]["filter"] == 70 * 30
    assert simulate_gemm(shape, accelerator(8, 8, "is"))["sram_reads"]["ifmap"] == 50 * 70
    # output stationary: each output leaves the array once, no rows+cols padding per fold
    assert simulate_gemm(shape, accelerator(8, 8, "os"))["sram_writes"]["ofmap"] == 50 * 30


@settings(max_examples=120, deadline=None, derandomize=True)
@given(m=dims, k=dims, n=dims, rows=edges, cols=edges, df=dataflows, small=sram, extra=st.integers(0, 3000),
       bw=bandwidth, wb=st.sampled_from([1, 2]))
def test_dram_traffic_is_physical(m, k, n, rows, cols, df, small, extra, bw, wb):
    shape = GemmShape(m=m, k=k, n=n)
    tight = simulate_gemm(shape, accelerator(rows, cols, df, ifmap=small, filt=small, ofmap=small, bw=bw,
                                             word_bytes=wb))
    roomy = simulate_gemm(shape, accelerator(rows, cols, df, ifmap=small + extra, filt=small + extra,
                                             ofmap=small + extra, bw=bw, word_bytes=wb))
    for op in ("ifmap", "filter", "ofmap"):
        assert tight["dram_bytes"][op] >= tight["compulsory_dram_bytes"][op]  # never below compulsory
        assert tight["dram_bytes"][op] >= roomy["dram_bytes"][op]  # shrinking a buffer never helps
    ample = accelerator(rows, cols, df, ifmap=2 * m * k * wb, filt=2 * k * n * wb, ofmap=2 * m * n * wb, bw=bw,
                        word_bytes=wb)
    fits = simulate_gemm(shape, ample)
    assert fits["dram_bytes"] == fits["compulsory_dram_bytes"]  # every operand fits its buffer half
    assert fits["dram_read_bytes"] + fits["dram_write_bytes"] == sum(fits["dram_bytes"].values())


@settings(max_examples=120, deadline=None, derandomize=True)
@given(m=dims, k=dims, n=dims, rows=edges, cols=edges, df=dataflows, buf=sram,
       bws=st.lists(st.sampled_from([0.1, 0.3, 1.0, 2.0, 5.0, 13.0, 100.0]), min_size=2, max_size=2))
def test_stalls_vanish_with_ample_bandwidth_and_grow_as_it_shrinks(m, k, n, rows, cols, df, buf, bws):
    shape = GemmShape(m=m, k=k, n=n)
    slow_bw, fast_bw = sorted(bws)
    slow = simulate_gemm(shape, accelerator(rows, cols, df, ifmap=buf, filt=buf, ofmap=buf, bw=slow_bw))
    fast = simulate_gemm(shape, accelerator(rows, cols, df, ifmap=buf, filt=buf, ofmap=buf, bw=fast_bw))
    # 1e9 B/cycle: the widest per-cycle rate a spec accepts (accelsim.fieldchecks)
    ample = simulate_gemm(shape, accelerator(rows, cols, df, ifmap=buf, filt=buf, ofmap=buf, bw=1e9))
    assert ample["stall_cycles"] == 0
    assert slow["stall_cycles"] >= fast["stall_cycles"] >= 0
    assert slow["total_cycles"] == slow["compute_cycles"] + slow["stall_cycles"]
    assert slow["compute_cycles"] == fast["compute_cycles"] == ample["compute_cycles"]


def test_stalls_grow_when_bandwidth_starves_the_array():
    shape = GemmShape(m=256, k=1024, n=1024)
    stalls = [simulate_gemm(shape, accelerator(16, 16, "os", ifmap=65536, filt=65536, ofmap=65536, bw=bw))
              ["stall_cycles"] for bw in (64, 8, 1)]
    assert stalls[0] < stalls[1] < stalls[2]


@given(total=st.integers(0, 10_000), size=st.integers(1, 500), width=st.integers(1, 64))
def test_apportion_is_whole_and_exact(total, size, width):
    e = fold_edges(size, width)
    parts = apportion(total, e, size)
    assert parts.sum() == total and (parts >= 0).all() and len(parts) == math.ceil(size / width)


def test_fold_geometry_matches_the_dataflow_table():
    geo = FoldGeometry("ws", m=100, k=70, n=30, rows=32, cols=8)
    assert geo.spatial_temporal == (70, 30, 100)
    assert (geo.row_folds, geo.col_folds) == (3, 4)
    assert geo.cycles_per_fold == 2 * 32 + 8 + 100 - 2


def test_batch_runs_as_independent_layers():
    hw = accelerator(4, 4, "ws", ifmap=512, filt=512, ofmap=512, bw=2)
    one, three = simulate_gemm(GemmShape(9, 7, 5), hw), simulate_gemm(GemmShape(9, 7, 5, batch=3), hw)
    for key in ("compute_cycles", "stall_cycles", "total_cycles", "macs"):
        assert three[key] == 3 * one[key]
    assert three["sram_reads"] == {op: 3 * v for op, v in one["sram_reads"].items()}


def test_graph_simulates_mac_einsums_and_notes_the_rest():
    x = Tensor("x", ("m", "k"), (32, 16), 1, TensorRole.INPUT)
    y = Tensor("y", ("m", "n"), (32, 8), 1)
    z = Tensor("z", ("m", "n"), (32, 8), 1, TensorRole.OUTPUT)
    mm = gemm("mm", 32, 16, 8, dtype_bytes=1, a="x", out="y")
    act = __import__("accelsim.ir", fromlist=["Einsum"]).Einsum(
        "relu", Operand(z, ("m", "n")), (Operand(y, ("m", "n")),), {"m": 32, "n": 8}, OpKind.ACTIVATION)
    conv = conv2d("conv", ifmap_h=10, ifmap_w=10, channels=3, filters=4, filter_h=3, filter_w=3)
    report = simulate_graph(Graph("g", [mm, act, conv]), accelerator(8, 8, "os"))
    assert [r["layer"] for r in report.layers] == ["mm", "conv"]
    assert report.meta["not_mapped"][0]["einsum"] == "relu"
    conv_row = report.layers[1]
    assert (conv_row["m"], conv_row["k"], conv_row["n"]) == (64, 27, 4)
    assert conv_row["compulsory_dram_bytes"]["ifmap"] == 300  # the 3x10x10 input, not the 64x27 im2col
    assert report.totals["compute_cycles"] == sum(r["compute_cycles"] for r in report.layers)
    assert x.name == "x"


def test_default_example_on_tpu_is_fast_and_consistent():
    from accelsim.hardware import load_hardware

    report = simulate_graph(default_example(), load_hardware("tpu-v1"))
    table = report.table()
    assert len(table) == 4 and (table["compute_cycles"] > 0).all()
    assert report.totals["total_cycles"] == report.totals["compute_cycles"] + report.totals["stall_cycles"]


@pytest.mark.parametrize("bad", [GemmShape(0, 4, 4), GemmShape(4, -1, 4), GemmShape(4, 4, 4, batch=0)])
def test_non_positive_dimensions_are_rejected(bad):
    with pytest.raises(AccelsimError, match="positive"):
        simulate_gemm(bad, accelerator(4, 4, "os"))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(pattern=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400), st.integers(1, 60)), min_size=1,
                        max_size=6),
       cycles=st.integers(1, 50), bw=st.sampled_from([0.1, 0.3, 1.0, 3.0, 7.0, 10.0, 64.0]),
       rounds=st.integers(1, 12))
def test_run_compressed_schedule_equals_per_fold_loop(pattern, cycles, bw, rounds):
    """Long runs of identical folds (where the fast path skips whole periods) and repeated rounds of runs
    (where it looks runs up) against the plain per-fold loop."""
    import numpy as np

    from accelsim.engines.systolic.fast import _schedule_fast, _schedule_per_fold

    fold_in = np.array([x for a, _, n in pattern for x in [a] * n] * rounds, dtype=np.int64)
    fold_out = np.array([x for _, b, n in pattern for x in [b] * n] * rounds, dtype=np.int64)
    assert _schedule_fast(fold_in, fold_out, cycles, bw) == _schedule_per_fold(fold_in, fold_out, cycles, bw)


def _execute_demand(geo: FoldGeometry, a, b):
    """Run the reference path's demand on real numbers: operands meet in PEs as the dataflow says.

    Returns the product it computes and how many times each (i, k, j) multiply happened. An
    independent check that the demand the reference steps through is a correct systolic schedule.
    """
    import numpy as np

    from accelsim.engines.systolic.reference import _fold_demand

    m, k, n, rows, cols = geo.m, geo.k, geo.n, geo.rows, geo.cols
    product = np.zeros((m, n), dtype=np.int64)
    macs = np.zeros((m, k, n), dtype=np.int64)
    for fc in range(geo.col_folds):
        for fr in range(geo.row_folds):
            d = _fold_demand(geo, fr, fc)
            cycles = len(d["ofmap"])  # the fold length the demand itself schedules
            if geo.dataflow == "os":
                owner = {}
                acc = np.zeros((rows, cols), dtype=np.int64)
                for t in range(cycles):
                    for r in range(rows):
                        for c in range(cols):
                            ia = d["ifmap"][t - c, r] if 0 <= t - c < cycles else -1
                            fb = d["filter"][t - r, c] if 0 <= t - r < cycles else -1
                            if ia < 0 or fb < 0:
                                continue
                            i, kk, j = ia // k, ia % k, fb % n
                            assert fb // n == kk  # the two operands meeting in a PE share their k
                            assert owner.setdefault((r, c), (i, j)) == (i, j)  # one output per PE per fold
                            acc[r, c] += a[i, kk] * b[kk, j]
                            macs[i, kk, j] += 1
                by_output = {ij: rc for rc, ij in owner.items()}
                written = [int(x) for x in d["ofmap"].ravel() if x >= 0]
                assert sorted(written) == sorted(i * n + j for i, j in by_output)
                for oid in written:
                    product[oid // n, oid % n] += acc[by_output[(oid // n, oid % n)]]
                continue
            streamed, stationary = ("ifmap", "filter") if geo.dataflow == "ws" else ("filter", "ifmap")
            for tau in range(cycles):
                for c in range(cols):
                    oid = d["ofmap"][tau, c]
                    if oid < 0:
                        continue
                    i, j = oid // n, oid % n
                    for r in range(rows):
                        sid = d[stationary][rows - 1 - r, c]
                        t_in = tau - (rows - 1 - r) - c
                        lid = d[streamed][t_in, r] if 0 <= t_in < cycles else -1
                        if sid < 0 or lid < 0:
                            continue
                        fid, iid = (sid, lid) if geo.dataflow == "ws" else (lid, sid)
                        assert iid // k == i and fid % n == j and iid % k == fid // n
                        kk = iid % k
                        product[i, j] += a[i, kk] * b[kk, j]
                        macs[i, kk, j] += 1
    return product, macs


@settings(max_examples=40, deadline=None, derandomize=True)
@given(m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9), rows=st.integers(1, 5),
       cols=st.integers(1, 5), df=dataflows, seed=st.integers(0, 2**16))
def test_reference_demand_computes_the_gemm(m, k, n, rows, cols, df, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.integers(-5, 6, size=(m, k))
    b = rng.integers(-5, 6, size=(k, n))
    product, macs = _execute_demand(FoldGeometry(df, m, k, n, rows, cols), a, b)
    assert (macs == 1).all()  # every multiply happens exactly once
    assert (product == a @ b).all()


def test_dram_traffic_rises_as_buffers_shrink():
    shape = GemmShape(m=256, k=512, n=256)  # os: the ifmap (128 KiB) is re-walked once per column fold
    traffic = [simulate_gemm(shape, accelerator(32, 32, "os", ifmap=size, filt=1 << 20, ofmap=1 << 20))
               ["dram_bytes"]["ifmap"] for size in (1 << 18, 1 << 17, 1 << 16, 1 << 14)]
    assert traffic[0] == 256 * 512  # fits its half buffer: compulsory
    assert traffic[0] < traffic[1] < traffic[2] < traffic[3]
    assert traffic[3] <= 256 * 512 * 8  # never worse than re-reading it for each of the 8 column folds


def test_energy_is_linear_in_the_per_access_numbers():
    shape = GemmShape(m=40, k=30, n=20)
    base = accelerator(8, 8, "ws", ifmap=4096, filt=4096, ofmap=4096, bw=4)
    assert "energy_pj" not in simulate_gemm(shape, base)
    hw = base.model_copy(update={"mac_energy_pj": 0.5, "sram_read_energy_pj_per_byte": 2.0,
                                 "dram": base.dram.model_copy(update={"read_energy_pj_per_byte": 10.0})})
    row = simulate_gemm(shape, hw)
    expected = row["macs"] * 0.5 + sum(row["sram_reads"].values()) * 2.0 + row["dram_read_bytes"] * 10.0
    assert row["energy_pj"] == pytest.approx(expected)


def test_batched_einsum_runs_batch_gemms():
    from accelsim.ir import Einsum

    q = Tensor("q", ("h", "m", "e"), (4, 16, 8), 1, TensorRole.INPUT)
    kt = Tensor("k", ("h", "e", "n"), (4, 8, 16), 1, TensorRole.KV_CACHE)
    s = Tensor("s", ("h", "m", "n"), (4, 16, 16), 1)
    qk = Einsum("qk", Operand(s, ("h", "m", "n")), (Operand(q, ("h", "m", "e")), Operand(kt, ("h", "e", "n"))),
                {"h": 4, "m": 16, "e": 8, "n": 16}, OpKind.MAC)
    hw = accelerator(8, 8, "os")
    row = simulate_graph(Graph("attn", [qk]), hw).layers[0]
    single = simulate_gemm(GemmShape(m=16, k=8, n=16), hw)
    assert row["batch"] == 4 and row["compute_cycles"] == 4 * single["compute_cycles"]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_huge_shapes_count_exactly_past_int64(df):
    """Byte counts beyond 2**63 stay exact (no int64 wrap): never negative, never below compulsory."""
    hw = accelerator(256, 256, df, ifmap=4 << 20, filt=4 << 20, ofmap=4 << 20, bw=32.0)
    shapes = {"os": GemmShape(m=4_000_000, k=10**13, n=1), "ws": GemmShape(m=10**15, k=30_000, n=3),
              "is": GemmShape(m=300, k=30_000, n=10**15)}
    shape = shapes[df]
    row = simulate_gemm(shape, hw)
    compulsory = {"ifmap": shape.m * shape.k, "filter": shape.k * shape.n, "ofmap": shape.m * shape.n}
    assert max(compulsory.values()) > 2**63  # the counts themselves leave int64
    for op in ("ifmap", "filter", "ofmap"):
        assert isinstance(row["dram_bytes"][op], int)
        assert row["compulsory_dram_bytes"][op] == compulsory[op]
        assert row["dram_bytes"][op] >= compulsory[op] >= 0
    assert row["dram_read_bytes"] + row["dram_write_bytes"] == sum(row["dram_bytes"].values())
    assert row["stall_cycles"] >= 0 and row["macs"] == shape.m * shape.k * shape.n


def test_tpu_v1_shape_that_used_to_wrap_is_exact():
    from accelsim.hardware import load_hardware

    hw = load_hardware("tpu-v1", kind="systolic")
    shape = GemmShape(m=4_000_000, k=1_000_000, n=1)
    for df in ("os", "ws"):
        row = simulate_gemm(shape, hw.model_copy(update={"array": hw.array.model_copy(update={"dataflow": df})}))
        for op in ("ifmap", "filter", "ofmap"):
            assert row["dram_bytes"][op] >= row["compulsory_dram_bytes"][op] > 0


@given(total=st.integers(0, 10**30), size=st.integers(1, 10**12), parts=st.integers(1, 300))
@settings(max_examples=60, deadline=None, derandomize=True)
def test_apportion_is_exact_for_any_size(total, size, parts):
    from fractions import Fraction

    e = fold_edges(size, -(-size // parts))
    parts = apportion(total, e, size)
    assert sum(int(p) for p in parts) == total and all(int(p) >= 0 for p in parts)
    # each cumulative share is the floor of the exact rational share
    cum = 0
    for edge, part in zip(e[1:], parts):
        cum += int(part)
        assert cum == math.floor(Fraction(int(edge) * total, size))


def test_too_many_folds_or_too_large_dims_are_user_errors():
    hw = accelerator(4, 4, "is")
    with pytest.raises(AccelsimError, match="folds"):
        simulate_gemm(GemmShape(m=10**6, k=10**6, n=1), hw)  # 62.5e9 folds
    with pytest.raises(AccelsimError, match="gemm.k"):
        simulate_gemm(GemmShape(m=1, k=2**53 + 1, n=1), hw)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(m=dims, k=dims, n=dims, rows=edges, cols=edges, df=dataflows, i=st.integers(2, 400),
       f=st.integers(2, 400), o=st.integers(2, 400), wb=st.sampled_from([1, 2]))
def test_tile_exceeds_buffer_flags_oversized_fold_tiles(m, k, n, rows, cols, df, i, f, o, wb):
    """The flag is set exactly when one fold's tile (largest one: a full fold) exceeds a buffer half."""
    r, c = min(rows, {"os": m}.get(df, k)), min(cols, {"is": m}.get(df, n))  # used lanes of a full fold
    tile_words = {"os": (r * k, k * c, r * c), "ws": (m * r, r * c, m * c), "is": (c * r, r * n, c * n)}[df]
    halves = (i // 2, f // 2, o // 2)
    expected = any(words * wb > half for words, half in zip(tile_words, halves))
    hw = accelerator(rows, cols, df, ifmap=i, filt=f, ofmap=o, word_bytes=wb)
    shape = GemmShape(m=m, k=k, n=n)
    assert simulate_gemm(shape, hw)["tile_exceeds_buffer"] is expected
    assert simulate_gemm_reference(shape, hw)["tile_exceeds_buffer"] is expected


def test_report_notes_layers_whose_tile_exceeds_the_buffer():
    from accelsim.engines.systolic import GemmLayer, simulate_layers

    big, small = GemmShape(m=64, k=64, n=64), GemmShape(m=2, k=2, n=2)
    report = simulate_layers([GemmLayer("big", big), GemmLayer("small", small)],
                             accelerator(8, 8, "os", ifmap=64, filt=64, ofmap=64))
    assert report.meta["tile_exceeds_buffer"] == ["big"] and "approximate" in report.meta["note"]
    roomy = simulate_layers([GemmLayer("big", big)], accelerator(8, 8, "os"))
    assert "tile_exceeds_buffer" not in roomy.meta
