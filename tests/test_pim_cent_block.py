"""CENT's transformer block on one AiM device: attention GEMV streams, instruction counts, the terms."""
from pathlib import Path

import pytest

from accelsim.engines.pim.cent_block import (
    CentBlock,
    block_terms,
    context_requests,
    instruction_counts,
    score_requests,
)
from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.engines.pim.checker import check_trace
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.dram_sets import standard

AIM = standard("GDDR6-AiM")
# row switches (almost) free, refresh off: the buffer rules alone set the time (as tests/test_pim_buffer.py)
FREE_ROWS = AIM.cycles() | {"tRP": 1, "tRCDMAC": 1, "tRTPL": 1, "tRAS": 1, "tRC": 2}
LLAMA_13B = {"dim": 5120, "n_heads": 40, "n_kv_heads": 40, "ffn_dim": 13824}
TINY = [CentBlock(dim=256, n_heads=2, n_kv_heads=2, ffn_dim=512, seqlen=16, tp=1, head_dim=32, row_words=64,
                  channels=2),
        CentBlock(dim=256, n_heads=8, n_kv_heads=4, ffn_dim=512, seqlen=40, tp=2, head_dim=32, row_words=64,
                  channels=2)]


def fills_closed_form(fills: int, fill_bursts: int, groups: int, macs: int) -> int:
    """Cycles of ``fills`` x (a WRGB fill of F bursts, then ``groups`` x (m MACs, RDMAC)) from the rules:
    WRGBs at tBL = 2; first MAC nCWLGB + nBL = 3 after the last WRGB; MACs at tCCDAB = 2; RDMAC tCCDL = 2 after
    the last MAC and at least nCWLGB + nBL + nWTRS = 12 after the last WRGB; the next MAC tCCDL after RDMAC;
    the next fill tRTW = 5 after the last RDMAC."""
    f, m = fill_bursts, macs
    first_read = max(2 * f + 2 * m + 1, 2 * f + 10)
    per_fill = first_read + (groups - 1) * (2 * m + 2)
    return fills * per_fill + (fills - 1) * 5 + 1


@pytest.mark.parametrize("b", TINY, ids=["mha", "gqa"])
def test_attention_streams_match_the_closed_form(b):
    rows_per_vector = b.n_kv_heads * b.head_dim // b.row_words
    seq_iterations = -(-b.seqlen // b.fc_banks)
    score = simulate_channel(score_requests(b), FREE_ROWS, AIM.organization, refresh=False)
    fills = rows_per_vector * seq_iterations * b.n_repeat
    assert score.cycles == fills_closed_form(fills, b.row_words // 16, b.row_words // b.head_dim, b.head_dim // 16)
    assert score.requests == {"WRGB": fills * b.row_words // 16,
                              "MACAB": fills * b.row_words // b.head_dim * b.head_dim // 16,
                              "RDMAC": fills * b.row_words // b.head_dim}
    heads = -(-b.n_kv_heads // b.channels) * b.n_repeat
    cols = -(-b.seqlen // 16)
    ctx = simulate_channel(context_requests(b), FREE_ROWS, AIM.organization, refresh=False)
    assert ctx.cycles == fills_closed_form(heads, cols, b.head_dim // b.banks, cols)
    assert ctx.requests == {"WRGB": heads * cols, "MACAB": heads * b.head_dim // b.banks * cols,
                            "RDMAC": heads * b.head_dim // b.banks}


@pytest.mark.parametrize("b", TINY + [CentBlock(seqlen=128, tp=10, **LLAMA_13B)], ids=["mha", "gqa", "13b"])
def test_attention_streams_pass_the_checker(b):
    for reqs in (score_requests(b), context_requests(b)):
        res = simulate_channel(reqs, AIM.cycles(), AIM.organization, record=True)
        assert check_trace(res.trace, AIM.cycles(), AIM.organization) is None


def test_instruction_counts_of_the_13b_block():
    """Counted by hand from CENT's trace loops (dim 5120 over 256 / 128 banks: 20 / 40 words per bank):
    RMSNorm 2 x 512 + 2 x 384 + 384 lines, RoPE 2 x (640 + 640), new key 5 rows x 64, softmax 6 x 8 bursts x
    40 heads, SiLU 4 x 7 bursts x 128 banks; WR_ABK one per (kv head, 16-dim slice)."""
    c = instruction_counts(CentBlock(seqlen=128, tp=20, **LLAMA_13B))
    norm = 2 * 512 + 2 * 384 + 384
    assert len(c["MEM"]) == 2 * norm + 2 * (640 + 640) + 6 * 8 * 40 + 4 * 7 * 128
    assert len(c["KEY"]) == 5 * 64
    assert len(c["WR_ABK"]) == 40 * 128 // 16
    assert len(c["SYNC"]) == 5 and len(c["EWADD"]) == 2
    # only the softmax lines depend on the context: 6 passes x bursts x heads
    c256 = instruction_counts(CentBlock(seqlen=256, tp=20, **LLAMA_13B))
    assert len(c256["MEM"]) - len(c["MEM"]) == 6 * (16 - 8) * 40


def test_dma_issue_is_one_line_per_cycle_and_attention_does_not_depend_on_tp():
    hw = load_hardware("gddr6-aim")
    b = CentBlock(seqlen=128, tp=5, **LLAMA_13B)
    c = instruction_counts(b)
    terms = block_terms(b, hw)
    lines = sum(len(c[k]) for k in ("MEM", "SYNC", "EWADD"))
    assert terms["dma_issue_s"] == pytest.approx(lines * AIM.tck_s)
    # K: 5 rows x 64 writes into one bank at tCCDL = 2 (> tRC 89 per row); V: channel 0 holds 2 of the 40 heads,
    # 8 slices each, one new row per WR_ABK, tRC apart (> the DMA's 320 lines)
    assert terms["kv_store_s"] == pytest.approx((5 * max(89, 64 * 2) + max(320, 2 * 8 * 89)) * AIM.tck_s)
    other = block_terms(CentBlock(seqlen=128, tp=20, **LLAMA_13B), hw)
    assert other["attention_s"] == terms["attention_s"] > 0
    assert other["gemv_s"] < terms["gemv_s"]  # the FC share shrinks with tp, the attention device's does not


def test_bad_block_and_preset_fields_error_clearly(tmp_path: Path, monkeypatch):
    with pytest.raises(AccelsimError) as err:
        CentBlock(seqlen=0, tp=1, **LLAMA_13B)
    assert err.value.field == "seqlen"
    with pytest.raises(AccelsimError) as err:
        CentBlock(dim=5120, n_heads=40, n_kv_heads=3, ffn_dim=13824, seqlen=128, tp=1)
    assert err.value.field == "n_kv_heads"
    with pytest.raises(AccelsimError) as err:
        CentBlock(seqlen=2048, tp=1, **LLAMA_13B)
    assert err.value.field == "seqlen"
    text = (Path(__file__).parents[1] / "accelsim/hardware/presets/gddr6-aim.yaml").read_text()
    bad = tmp_path / "aim-bad.yaml"
    bad.write_text(text.replace("dma_requests_per_cycle: 1.0", "dma_requests_per_cycle: 0"))
    with pytest.raises(AccelsimError) as err:
        load_hardware(bad)
    assert "dma_requests_per_cycle" in str(err.value)
    unset = tmp_path / "aim-unset.yaml"
    unset.write_text(text.replace("dma_requests_per_cycle: 1.0", ""))
    with pytest.raises(AccelsimError) as err:
        block_terms(CentBlock(seqlen=128, tp=1, **LLAMA_13B), load_hardware(unset))
    assert err.value.field == "dma_requests_per_cycle"
    hw = load_hardware("gddr6-aim")
    no_ewmul = {k: v for k, v in hw.timings().items() if k != "tRCDEWMUL"}
    monkeypatch.setattr(type(hw), "timings", lambda self: no_ewmul)
    with pytest.raises(AccelsimError) as err:
        block_terms(CentBlock(seqlen=128, tp=20, **LLAMA_13B), hw)
    assert err.value.field == "timings.tRCDEWMUL"
