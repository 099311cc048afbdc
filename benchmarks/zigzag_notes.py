"""Differences in modelling between accelsim's loop nest and ZigZag, written under
``results/tiling_vs_zigzag.md`` by ``tiling_vs_zigzag.py`` (kept apart so the script stays short)."""

NOTES = """\
Every difference between the two models of the same accelerator that we could identify, and which
column it shows up in:

1. **Memory hierarchy per operand vs one nest for all.** tpu_like gives each operand its own chain:
   weights DRAM -> `rf_128B` (one 128-byte register per MAC) -> MAC; inputs DRAM -> `sram_2MB` -> MAC
   (no register); outputs `rf_2B` (one 16-bit partial sum per MAC) -> `sram_2MB` -> DRAM. accelsim's
   loop nest keeps one tile of every operand at every level (a per-MAC latch of one word each, the
   on-chip level, DRAM). So in `benchmarks/data/tpu_like.yaml` the on-chip level holds inputs and
   outputs in the SRAM and the weights in the 1024 `rf_128B` registers taken together (128 KiB,
   per-operand energies `energy_pj_per_byte_by_tensor`). To keep that pool equal to private
   registers, the array may only unroll the ranks that index the weights (k, n): a weight then sits
   in exactly one MAC, as in tpu_like. The pool's capacity is per array, not per MAC: a nest may
   give one MAC more than 128 weights if others hold fewer (ZigZag's registers are 128 B each).
2. **Shared SRAM.** Both share the 2 MiB between inputs and outputs (accelsim: `capacity_by_tensor`
   key `A+C`). With a fixed 1 MiB + 1 MiB split instead, accelsim could not keep bert-ffn2's whole
   1.5 MiB input on chip and spent 8% more energy than ZigZag there (an earlier run of this script).
   Neither double-buffers (ZigZag does not halve capacities; accelsim's latency still assumes overlap).
3. **Spatial unrolling.** tpu_like's mapping file fixes D1 = K (output channels, the GEMM's N) and
   D2 = C (the reduction): weight stationary, partial sums reduced along D2. accelsim's mapper chooses
   the rank of each array edge among k and n (note 1; for a convolution among k and c), which
   includes ZigZag's choice. It may also
   unroll one rank on both edges (the energy rows' `rows:k24 cols:k32`: a reduction over the whole
   array, whose partial sums accelsim adds on the way up, costing each MAC's `rf_2B` read, as ZigZag
   charges a spatial reduction; a systolic array reduces along one edge only, so tpu_like would need
   an adder tree for it, and its mapping file does not allow it). `--zigzag-spatial free` lets ZigZag's own spatial-mapping generator choose
   (for bert-qkv it tried three unrollings and kept the file's K x C).
4. **Mapping spaces and search.** ZigZag's LOMA enumerates orderings of the loops' prime factors
   (limited by `lpf_limit`, default 6) and allocates them to each operand's memories separately
   ('uneven' mapping: operands may change level at different loops); it is a heuristic search
   over that space, not a proof. accelsim's search uses divisor tiles common to all operands at a level,
   every distinct loop order, and proves its optimum by branch and bound (status `optimal`).
5. **Latency.** ZigZag's cycles = data onloading (the first tiles brought in before compute starts,
   not overlapped) + computation (with stalls when a memory port cannot keep up) + offloading; its
   `compute cycles` column is the middle term. accelsim's cycles = max(compute, bytes / bandwidth of
   every level), a double-buffered roofline with no onloading; `accelsim first-fill cycles` (in the
   CSV) estimates the onload ZigZag adds (the first on-chip tile of each input at DRAM's bandwidth).
6. **Energy conventions.** ZigZag charges `rf_128B` (one weight read) and `rf_2B` (a partial-sum read
   and write) on every MAC; accelsim's innermost level is touched only when its tile changes. So
   accelsim's `mac_pj` is 0.04 + 0.095 + 2 x 0.021 = 0.177 pJ (the MAC plus those per-MAC accesses),
   and the weights' fills of the register pool cost `rf_128B`'s 0.095 pJ/B. `accelsim energy` is
   what accelsim's search minimises; `accelsim @zigzag energy` re-costs the same nest with every
   (level, operand) at the per-byte energy of the ZigZag memory in that role (`zigzag_pj_per_byte`):
   the two differ only by the partial sums the MACs' `rf_2B` exchange with the SRAM (0.0105 pJ/B,
   which accelsim's search does not see). The second is the comparable number. ZigZag rounds every
   transfer up to whole `bandwidth_min` words (64 bits at the SRAM and DRAM) and costs accesses of
   `bandwidth_max` bits; accelsim counts bytes.
7. **Convolutions.** Both map a convolution through its own ranks (`LoopProblem.conv`: batch,
   output and input channels, output rows and columns, filter rows and columns), with the input
   tile the sliding window's ((P_t - 1) * stride + (R_t - 1) * dilation + 1 rows, as ZigZag's
   IX = OX + FX - 1) and the same 'same' padding (padding zeros are neither stored nor moved, so
   both count 56 x 56 x 64 input bytes for conv2). accelsim fetches a whole window tile again
   whenever a loop above it that indexes the input advances: the overlap of consecutive windows is
   kept only inside a tile (ZigZag's basic model does the same). On the array accelsim unrolls k
   and c, the two ranks tpu_like's mapping file unrolls (`conv_allowed_ranks`). (Before this,
   accelsim lowered convolutions through im2col, a 9x larger input on the 3x3 layers: 2.24 MB of
   DRAM traffic against ZigZag's 0.64 MB on conv2.) conv5 is DRAM-bound in accelsim (2434560 bytes
   over the 8 B/cycle port = 304320 cycles); ZigZag moves the same bytes but reports 303119 cycles,
   fewer than its bytes over its port's width, so its latency model lets some DRAM transfers
   overlap beyond that port.
8. **Precision.** 8-bit inputs and weights, 16-bit partial sums in both; ZigZag's `O_final` is also
   set to 16 bits because accelsim's loop problem has one output element size (ZigZag's ONNX
   default would write 8-bit final outputs, halving the output's DRAM bytes).
9. **Bandwidths.** DRAM: one 64-bit port shared by reads and writes in both (8 B/cycle). On chip,
   ZigZag has a 2048-bit read and a 2048-bit write port at the SRAM and an 8-bit read and write port
   per weight register; accelsim has one bandwidth per level, so its on-chip level pools them
   (2 x 256 + 2 x 1024 = 2560 B/cycle). A nest that hammers the SRAM while leaving the registers
   idle is therefore allowed more SRAM bandwidth than tpu_like has. ZigZag also counts stalls when a
   port cannot keep up within its loop structure; accelsim takes the maximum of the per-level times.
10. **Divisors.** accelsim's tiles are divisors of the extents (no partial tiles; `M = 196` leaves 4 of
   32 rows idle); ZigZag's loops are prime factors too, and its spatial unrolling is fixed at 32 x 32.
11. **What the CPU seconds include.** accelsim: `time.process_time()` around the search, in process.
   ZigZag: CPU seconds of the driver process and its children around one
   `get_hardware_performance_zigzag` call, which also parses its inputs and writes its result files
   (JSON and pickle), not only LOMA's search. Both measured on a shared 2-core machine under load.
"""
